"""`tiktalk media retry`: only the failed videos' shards are forced to run again, their failed
downloads are removed, and a video whose source works again is recovered by the shard's next
fetch. (The Snakemake run itself: tests/test_media_dag.py, slow.)"""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from media_utils import loopback_server, serve_bytes, serve_status, write_video
from tiktalk.cli import main
from tiktalk.media.retry import apply_retry, media_run, plan_retry
from tiktalk.media.shard import fetch_shard
from tiktalk.media.tables import read_fetch, status_row, write_fetch, write_status

DL = {"retries": 0, "backoff_base_s": 0.01, "read_timeout_s": 2, "allow_private_hosts": True}


@pytest.fixture
def results(tmp_path):
    """Two finished shards: s00000 has a fetch failure, an invalid id and a decode failure
    (its download on disk); s00001 is all ok."""
    media = tmp_path / "results" / "media"
    (media / "s00000" / "videos").mkdir(parents=True)
    (media / "s00001").mkdir()
    (media / "s00000" / "videos" / "2.mp4").write_bytes(b"cut")
    (media / "s00000" / "videos" / "3.mp4.part").write_bytes(b"stale")     # a download cut short
    (media / "s00000" / "videos" / "3.mp4.part.validator").write_text('"v1"\n')
    (media / "s00000" / "videos" / "1.mp4").write_bytes(b"fine")
    write_fetch(media / "s00000" / "fetch.tsv", [
        {"video_id": "1", "status": "ok", "path": str(media / "s00000" / "videos" / "1.mp4")},
        {"video_id": "2", "status": "ok", "path": str(media / "s00000" / "videos" / "2.mp4")},
        {"video_id": "3", "status": "failed", "reason": "download: HTTP 503 (gave up after 1 attempts)"},
        {"video_id": "-x", "status": "failed", "reason": "invalid id: video id '-x' starts with '-'"}])
    write_status(media / "s00000.status.tsv", [
        status_row("1", ""), status_row("2", "decode: truncated: decoded 1.0 s of 9.0 s"),
        status_row("3", "fetch: download: HTTP 503 (gave up after 1 attempts)"),
        status_row("-x", "fetch: invalid id: video id '-x' starts with '-'")])
    write_fetch(media / "s00001" / "fetch.tsv", [{"video_id": "4", "status": "ok", "path": "/x/4.mp4"}])
    write_status(media / "s00001.status.tsv", [status_row("4", "")])
    return tmp_path / "results"


class Recorder:
    def __init__(self):
        self.commands = []

    def __call__(self, cmd):
        self.commands.append(cmd)
        return SimpleNamespace(returncode=0)


def args(results, *extra, dry_run=False, reason=None):
    return SimpleNamespace(results=str(results), reason=reason, dry_run=dry_run, snakemake_args=list(extra))


def test_dry_run_changes_nothing_and_forces_only_the_failed_shard(results, capsys):
    media = results / "media"
    before = sorted(p for p in media.rglob("*") if p.is_file())
    run = Recorder()
    assert media_run(args(results, dry_run=True), run) == 0
    out = capsys.readouterr().out
    assert sorted(p for p in media.rglob("*") if p.is_file()) == before
    assert "s00000: 2 failed video(s)" in out and "s00001" not in out
    assert f"would remove {media / 's00000' / 'videos' / '2.mp4'}" in out
    assert "\n  -x\t" not in out                 # an invalid id is not retried
    assert run.commands == [[sys.executable, "-m", "snakemake", "--cores", "all", "-n",
                             "--forcerun", "results/media/s00000/fetch.tsv"]]
    plan = plan_retry(results, reason="HTTP 5")
    assert [(s.shard, sorted(s.failed)) for s in plan.shards] == [("s00000", ["3"])]


def test_retry_removes_the_failed_downloads_and_passes_the_users_arguments(results, capsys):
    media = results / "media"
    run = Recorder()
    assert media_run(args(results, "--profile", "slurm"), run) == 0
    out = capsys.readouterr().out
    for name in ("2.mp4", "3.mp4.part", "3.mp4.part.validator"):    # never resumed after a retry
        assert "removed " + str(media / "s00000" / "videos" / name) in out
        assert not (media / "s00000" / "videos" / name).exists()
    assert (media / "s00000" / "videos" / "1.mp4").read_bytes() == b"fine"   # ok video kept
    assert (media / "s00000" / "fetch.tsv").exists() and (media / "s00001" / "fetch.tsv").exists()
    assert run.commands == [[sys.executable, "-m", "snakemake", "--profile", "slurm",
                             "--forcerun", "results/media/s00000/fetch.tsv"]]


def test_nothing_to_retry_runs_nothing(tmp_path, capsys):
    (tmp_path / "results" / "media" / "s00000").mkdir(parents=True)
    write_fetch(tmp_path / "results" / "media" / "s00000" / "fetch.tsv",
                [{"video_id": "1", "status": "ok", "path": "/x/1.mp4"}])
    run = Recorder()
    assert media_run(args(tmp_path / "results"), run) == 0 and run.commands == []
    assert "no failed videos to retry" in capsys.readouterr().out


def test_command_line_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["media", "retry", "--results", str(tmp_path / "nope")])
    assert exc.value.code == 2
    assert "no media stage results here" in capsys.readouterr().err


def test_a_video_whose_source_works_again_is_recovered(tmp_path):
    """The shard's next fetch (the job Snakemake is forced to re-run) downloads only the failed
    video again and reuses the good one."""
    good = write_video(tmp_path / "good.mp4", duration=1.0).read_bytes()
    media = tmp_path / "results" / "media"
    vids, fetch_tsv = media / "s00000" / "videos", media / "s00000" / "fetch.tsv"
    with loopback_server() as srv:
        srv.routes["/1"] = serve_bytes(good)
        srv.routes["/2"] = serve_status(503)
        csv = tmp_path / "urls.csv"
        csv.write_text(f"id,url\n1,{srv.base}/1\n2,{srv.base}/2\n")
        source = {"kind": "csv", "csv": str(csv)}
        rows = fetch_shard(["1", "2"], source, DL, vids, fetch_tsv)
        assert [r["status"] for r in rows] == ["ok", "failed"]
        write_status(media / "s00000.status.tsv",
                     [status_row("1", ""), status_row("2", "fetch: " + rows[1]["reason"])])
        srv.routes["/2"] = serve_bytes(good)             # the source works again
        plan = plan_retry(tmp_path / "results")
        assert [sorted(s.failed) for s in plan.shards] == [["2"]]
        apply_retry(plan)
        fetch_shard(["1", "2"], source, DL, vids, fetch_tsv)
        assert [r["status"] for r in read_fetch(fetch_tsv)] == ["ok", "ok"]
        assert srv.counts == {"/1": 1, "/2": 2}         # video 1 was not downloaded again
