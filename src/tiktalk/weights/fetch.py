"""Fetch and verify pretrained weights (the localrules ``fetch_weight``, ``verify_weight`` and
``fetch_weights``; they run where the network is, e.g. a cluster's login node).

* :func:`fetch_file`: one file of an artifact into ``<root>/<name>/<file>``. Hub artifacts go
  through ``huggingface_hub.hf_hub_download`` at the pinned revision (resumable; the hub's own
  sha256 of an LFS file is checked too); ``base_url`` artifacts through the project's
  downloader (:func:`tiktalk.media.download.download`: timeouts, retries, HTTP Range resume
  into ``.part``, atomic rename); ``manual`` artifacts cannot be fetched, the error says how to
  get them. A file that is already there is never downloaded again (Snakemake does not even
  start the job).
* :func:`verify_artifact`: hash every file of an artifact, compare with the pinned sha256 (and
  the prefix in torch.hub-style names), and return its record; a null sha256 is trusted on
  first use and recorded. The record notes whether each file was fetched (and from where, at
  which resolved hub commit) or provided by the user.
* :func:`write_manifest`: ``weights/manifest.json`` from the records (name, source, revision,
  files with their sha256).

No conversion step is needed for the paper's artifacts: torchvision's ResNet-101 and the
published torchvggish checkpoint (``vggish-10086976.pth``, ``vggish_pca_params-970ea276.pth``,
converted from the TF AudioSet release by its authors) are state dicts in exactly the layout
:mod:`tiktalk.media.visual` / :mod:`tiktalk.media.vggish` load.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Mapping

from tiktalk.io import read_json, sha256_file, write_json
from tiktalk.weights.spec import Artifact, hash_prefix

log = logging.getLogger(__name__)

OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
SIDECAR_DIR = ".fetched"


class WeightsError(RuntimeError):
    """A weight could not be fetched or does not match its checksum."""


def allow_network() -> None:
    """Undo the offline switches the workflow sets for compute jobs (call before importing
    huggingface_hub: it reads them at import time). Only the fetch rules call this."""
    for var in OFFLINE_VARS:
        os.environ.pop(var, None)


def check_file(path: str | os.PathLike, expected: str | None, where: str) -> str:
    """sha256 of ``path``; WeightsError (naming ``where``) when it contradicts ``expected`` or
    the hash prefix in the file's name."""
    digest = sha256_file(path)
    if expected and digest != expected:
        raise WeightsError(f"{where}: sha256 {digest} but the config pins {expected}; "
                           f"replace the file or fix the config")
    prefix = hash_prefix(Path(path).name)
    if prefix and not digest.startswith(prefix):
        raise WeightsError(f"{where}: sha256 {digest} does not start with {prefix}, the prefix "
                           f"its file name carries (corrupt or wrong file)")
    return digest


def _sidecar(root: Path, name: str, file: str) -> Path:
    return root / SIDECAR_DIR / name / f"{file}.json"


def _quarantine(path: Path) -> Path:
    bad = path.with_name(path.name + ".sha256-mismatch")
    os.replace(path, bad)
    return bad


def fetch_file(artifact: Artifact, file: str, root: str | os.PathLike,
               download_cfg: Mapping | None = None) -> dict:
    """Download ``file`` of ``artifact`` into ``root/<name>/<file>`` and check it.

    Returns the fetch record (also written as a sidecar the verification reads). A file whose
    hash is wrong is moved aside (``<file>.sha256-mismatch``) and WeightsError raised.
    """
    root = Path(root)
    dest = root / artifact.name / file
    where = f"weights.artifacts.{artifact.name}.files.{file}"
    if file not in artifact.files:
        raise WeightsError(f"{where}: not listed in the config")
    record: dict = {"name": artifact.name, "file": file, "source": artifact.source(),
                    "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if artifact.kind == "hub":
        record.update(_fetch_hub(artifact, file, root / artifact.name))
    elif artifact.kind == "base_url":
        record.update(_fetch_url(artifact.url_of(file), dest, download_cfg))
    elif artifact.kind == "manual":
        raise WeightsError(f"{dest}: missing, and weights.artifacts.{artifact.name} cannot be "
                           f"downloaded: {artifact.manual}. Put the file at {dest}.")
    else:
        raise WeightsError(f"weights.artifacts.{artifact.name}: no single source (hub, base_url or manual)")
    if not dest.is_file():
        raise WeightsError(f"{where}: the download finished but {dest} is not a file")
    expected = artifact.files.get(file) or record.get("hub_sha256")
    try:
        record["sha256"] = check_file(dest, expected, where)
    except WeightsError:
        bad = _quarantine(dest)
        log.error("moved %s aside to %s", dest, bad)
        raise
    record["bytes"] = dest.stat().st_size
    write_json(_sidecar(root, artifact.name, file), record)
    log.info("%s: %s (%d bytes, sha256 %s)", where, record.get("url", record["source"]),
             record["bytes"], record["sha256"])
    return record


def _fetch_hub(artifact: Artifact, file: str, local_dir: Path) -> dict:
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

    url = hf_hub_url(artifact.hub, file, revision=artifact.revision)
    meta = get_hf_file_metadata(url)
    path = hf_hub_download(artifact.hub, file, revision=artifact.revision, local_dir=str(local_dir))
    out = {"url": url, "revision": artifact.revision, "resolved_revision": meta.commit_hash,
           "path": str(path)}
    etag = (meta.etag or "").strip('"')
    if len(etag) == 64 and all(c in "0123456789abcdef" for c in etag):
        out["hub_sha256"] = etag            # LFS files: the hub's etag is the file's sha256
    return out


def _fetch_url(url: str, dest: Path, download_cfg: Mapping | None) -> dict:
    from tiktalk.media.download import DownloadConfig, download

    settings = {"max_bytes": 64 * 2**30, "total_timeout_s": 6 * 3600.0, "read_timeout_s": 120.0,
                "retries": 8}
    settings.update(download_cfg or {})
    res = download(url, dest, DownloadConfig.from_dict(settings), validate=False)
    return {"url": url, "attempts": res["attempts"], "resumed": res["resumed"]}


def verify_artifact(artifact: Artifact, root: str | os.PathLike, strict: bool = False,
                    previous: Mapping | None = None) -> dict:
    """The verification record of one artifact (every file hashed and checked).

    ``previous``: the artifact's last record; a file whose size and mtime are unchanged keeps
    its hash without being read again; a trusted-on-first-use hash that changed is logged.
    """
    root = Path(root)
    prev_files = (previous or {}).get("files", {})
    files = {}
    for file in sorted(artifact.files):
        path = root / artifact.name / file
        where = f"weights.artifacts.{artifact.name}.files.{file}"
        if not path.is_file():
            raise WeightsError(f"{where}: {path} is missing")
        pinned = artifact.files[file]
        if pinned is None and strict:
            raise WeightsError(f"{where}: no sha256 in the config and weights.strict is true")
        st = path.stat()
        old = prev_files.get(file) or {}
        if old.get("bytes") == st.st_size and old.get("mtime_ns") == st.st_mtime_ns and old.get("sha256"):
            digest = old["sha256"]
            if pinned and digest != pinned:
                digest = check_file(path, pinned, where)
        else:
            digest = check_file(path, pinned, where)
        if pinned is None and old.get("sha256") and old["sha256"] != digest:
            log.warning("%s: file replaced (sha256 %s -> %s); its consumers re-run", where,
                        old["sha256"], digest)
        entry = {"sha256": digest, "bytes": st.st_size, "mtime_ns": st.st_mtime_ns,
                 "pinned": pinned is not None}
        side = _sidecar(root, artifact.name, file)
        if side.is_file():
            fetched = read_json(side)
            if fetched.get("sha256") == digest:
                entry["fetched"] = {k: fetched[k] for k in ("url", "resolved_revision", "fetched_at")
                                    if k in fetched}
        entry.setdefault("fetched", None)   # None: provided by the user, nothing downloaded
        files[file] = entry
    record = artifact.to_dict()
    record["files"] = files
    return record


def read_record(path: str | os.PathLike) -> dict | None:
    try:
        return read_json(path)
    except (OSError, json.JSONDecodeError):
        return None


def write_manifest(records: list[Mapping], out: str | os.PathLike) -> dict:
    """``weights/manifest.json``: one entry per artifact (name, source, revision, files)."""
    manifest = {"artifacts": {r["name"]: dict(r) for r in sorted(records, key=lambda r: r["name"])}}
    write_json(out, manifest)
    return manifest
