"""``tiktalk media ACTION``: the media stage's command line (``retry``, ``probe``).

An entry point just below :mod:`tiktalk.cli`, which registers it; nothing else in the package
imports it. Light to import (no torch): each action imports what it runs.
"""

from __future__ import annotations

from tiktalk.media import probe, retry


def media_arguments(parser) -> None:
    subs = parser.add_subparsers(dest="media_command", metavar="ACTION", required=True)
    retry.retry_arguments(subs)
    probe.probe_arguments(subs)


def media_run(args) -> int:
    if args.media_command == "probe":
        return probe.probe_run(args)
    return retry.media_run(args)
