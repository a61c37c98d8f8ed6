"""Which hosts a fetch may reach: a guard against server-side request forgery.

A release or an ``id,url`` CSV is data from outside, and so is every redirect a server sends.
Without a check, a URL (or a redirect) to ``http://127.0.0.1:8080/``, to the cloud metadata
service ``http://169.254.169.254/`` or to a machine of the cluster's private network would be
fetched from inside it. So every hop's host is resolved, and the request is refused when any of
its addresses is loopback, link-local, private or otherwise not public, unless the config allows
it: a list of allowed networks in ``media.download.private_allowlist`` (the way to reach an
institutional mirror on ``10.1.2.0/24`` or a test server on ``127.0.0.1/32``), or the blanket
switch ``media.download.allow_private_hosts``.

Link-local addresses (``169.254.0.0/16``, ``fe80::/10``) and the cloud metadata services
(:data:`ALWAYS_REFUSED`: AWS's ``fd00:ec2::254``, Alibaba's ``100.100.100.200``) are refused
whatever the switch or the allowlist says: no video is ever served from there, and a redirect
to one is an attempt to read the machine's cloud credentials.

:func:`vet_host` returns the addresses it checked; :func:`vetted_connection` (the downloader's
and the resolvers' one way to open a connection) connects to one of exactly those addresses
(it does not resolve the name a second time), so a DNS answer that changes between the check
and the connection cannot send it elsewhere.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import urllib.parse
from dataclasses import dataclass
from typing import Callable, Sequence

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolve = Callable[[str, int], Sequence[str]]

ALLOWLIST = "media.download.private_allowlist"

#: networks no configuration opens: link-local (the metadata service 169.254.169.254 among
#: them) and the cloud metadata addresses outside link-local
ALWAYS_REFUSED: tuple[Network, ...] = tuple(ipaddress.ip_network(n) for n in (
    "169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "100.100.100.200/32"))


class HostRefused(ValueError):
    """A host that resolves to an address the policy does not allow; ``str(exc)`` says why."""


class HostUnresolved(OSError):
    """The host name could not be resolved (may be transient)."""


def system_resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (IPv4 and IPv6), in the resolver's order."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise HostUnresolved(f"cannot resolve host {host!r}: {exc}") from None
    out: list[str] = []
    for info in infos:
        addr = info[4][0]
        if addr not in out:
            out.append(addr)
    return out


def address_kind(ip: Address) -> str | None:
    """Why ``ip`` is not a public address ("loopback", "link-local", ...), None if it is."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private:
        return "private"
    if ip.is_reserved or not ip.is_global:
        return "non-public"
    return None


def parse_networks(values: Sequence[str], where: str = "private_allowlist") -> tuple[Network, ...]:
    """``["10.1.2.0/24", "127.0.0.1"]`` -> networks; a bad entry is a ValueError naming it."""
    nets = []
    for value in values:
        try:
            nets.append(ipaddress.ip_network(str(value), strict=False))
        except ValueError as exc:
            raise ValueError(f"{where}: {value!r} is not an IP address or network ({exc})") from None
    return tuple(nets)


def _plain(ip: Address) -> Address:
    """``::ffff:a.b.c.d`` -> ``a.b.c.d``; any other address as it is."""
    return ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else ip


def always_refused(ip: Address) -> str | None:
    """Why ``ip`` is refused whatever the config says (link-local, cloud metadata), or None."""
    plain = _plain(ip)
    for net in ALWAYS_REFUSED:
        if plain.version == net.version and plain in net:
            kind = "link-local" if plain.is_link_local else "cloud metadata"
            return f"{kind} address {ip} (always refused: never a video host, the cloud metadata service)"
    return None


@dataclass(frozen=True)
class HostPolicy:
    """Public addresses, and the networks of ``allowlist``; ``allow_private``: any address.
    Never an address of :data:`ALWAYS_REFUSED`."""

    allow_private: bool = False
    allowlist: tuple[Network, ...] = ()

    def refusal(self, ip: Address) -> str | None:
        """Why a connection to ``ip`` is refused, None when it is allowed."""
        fixed = always_refused(ip)
        if fixed:
            return fixed
        if self.allow_private:
            return None
        kind = address_kind(ip)
        if kind is None:
            return None
        plain = _plain(ip)
        if any(plain.version == net.version and plain in net for net in self.allowlist):
            return None
        return f"{kind} address {ip}"


def vet_host(host: str | None, port: int, policy: HostPolicy,
             resolve: Resolve = system_resolve) -> list[str]:
    """Resolve ``host`` and return its addresses if the policy allows every one of them.

    Raises :class:`HostRefused` naming the host, the address and how to allow it, or
    :class:`HostUnresolved`. A host whose addresses are mixed (public and private) is refused:
    that is what a DNS rebinding attack looks like.
    """
    if not host:
        raise HostRefused("URL without a host")
    name = host.strip("[]")
    addresses = list(resolve(name, port))
    if not addresses:
        raise HostUnresolved(f"host {host!r} resolves to no address")
    for addr in addresses:
        try:
            ip = ipaddress.ip_address(addr.split("%", 1)[0])
        except ValueError:
            raise HostRefused(f"host {host!r} resolves to {addr!r}, not an IP address") from None
        why = policy.refusal(ip)
        if why:
            shown = host if host == str(ip) else f"{host} ({ip})"
            if always_refused(ip):
                raise HostRefused(f"refused host {shown}: {why}")
            raise HostRefused(f"refused host {shown}: {why}; list its network in {ALLOWLIST} "
                              f"(e.g. {_plain(ip)}/32) to allow it")
    return addresses


def vetted_connection(url: str, policy: HostPolicy, timeout: float,
                      resolve: Resolve = system_resolve) -> tuple[http.client.HTTPConnection, str]:
    """An unopened HTTP(S) connection for ``url`` that can only reach an address of its host
    the policy allowed (:func:`vet_host`), and the request target (path and query).

    The Host header and the TLS server name stay the URL's host. Raises :class:`HostRefused`,
    :class:`HostUnresolved`, or ValueError for a URL without a host or with a bad port.
    """
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname
    if not host:
        raise ValueError(f"URL without a host: {url[:200]}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ValueError(f"URL with a bad port: {url[:200]}") from None
    addresses = vet_host(host, port, policy, resolve)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, port, timeout=timeout, context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)

    def pinned(address, timeout=socket.getdefaulttimeout(), source_address=None):
        # connect to a vetted address (the Host header and TLS name stay the URL's host)
        last: OSError | None = None
        for addr in addresses:
            try:
                return socket.create_connection((addr, address[1]), timeout, source_address)
            except OSError as exc:
                last = exc
        raise last if last is not None else OSError(f"no address for {host}")

    conn._create_connection = pinned  # used by HTTP(S)Connection.connect
    return conn, path
