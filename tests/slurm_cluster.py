"""A throw-away one-node SLURM cluster on this machine, for tests/test_slurm.py (docs/slurm.md).

    cluster = LocalSlurm.create()      # munged + slurmctld + slurmd, node idle
    ...                                # sbatch / squeue / snakemake --executor slurm
    cluster.stop()                     # cancels our jobs, stops the daemons by their pid files

Also a command line, for poking at the cluster by hand (as root):

    python tests/slurm_cluster.py install
    python tests/slurm_cluster.py start [DIR]     # prints DIR (state, spool, logs, pid files)
    python tests/slurm_cluster.py stop DIR

State, spool, logs, pid files and the munge socket live in one temporary directory. The
configuration goes where the SLURM client tools look for it, /etc/slurm/slurm.conf and
/etc/slurm/gres.conf (fake GPUs, one per CPU up to four: ``Name=gpu File=/dev/null``,
``/dev/zero``, ...; a GPU job gets one the way it would get a real one, and as many GPU jobs run at
once as the node has CPUs for); both carry a marker line, are
never written over a slurm.conf this module did not write, and are removed by ``stop()``.
Daemons are only ever stopped through their own pid files, never by name.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PACKAGES = ("slurm-wlm", "munge")
BINARIES = ("/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/sbin/munged", "sbatch", "squeue",
            "sinfo", "scancel", "srun")
SLURM_CONF = Path("/etc/slurm/slurm.conf")
GRES_CONF = Path("/etc/slurm/gres.conf")
MUNGE_KEY = Path("/etc/munge/munge.key")
MARKER = "# written by tiktalk tests/slurm_cluster.py; removed when the test cluster stops"
PARTITION = "tiktalk"
# device files that stand in for GPUs (slurmd only checks that they exist)
FAKE_GPU_FILES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/urandom")


def _missing() -> list[str]:
    return [b for b in BINARIES if not (Path(b).exists() if b.startswith("/") else shutil.which(b))]


def ensure_installed() -> str | None:
    """Install slurm-wlm and munge if missing (root + apt-get). None when ready, else why not."""
    if not _missing():
        return None
    if os.geteuid() != 0:
        return f"not root and SLURM/munge not installed (missing: {', '.join(_missing())})"
    if not shutil.which("apt-get"):
        return f"SLURM/munge not installed and no apt-get (missing: {', '.join(_missing())})"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", *PACKAGES]
    res = subprocess.run(install, env=env, capture_output=True, text=True)
    if res.returncode != 0:  # typically "Unable to locate package": no package lists yet
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, text=True)
        res = subprocess.run(install, env=env, capture_output=True, text=True)
    if res.returncode != 0 or _missing():
        raise RuntimeError(f"apt-get install {' '.join(PACKAGES)} failed (rc {res.returncode}):\n"
                           f"{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is as good as gone
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def stop_pidfile(pidfile: Path, timeout: float = 15.0) -> None:
    """SIGTERM the process named in ``pidfile``, wait, SIGKILL if it lingers."""
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    if pid <= 1 or not _pid_alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)


def _tail(path: Path, n: int = 3000) -> str:
    try:
        return f"--- {path} ---\n{path.read_text(errors='replace')[-n:]}"
    except OSError:
        return f"--- {path}: absent ---"


class LocalSlurm:
    """munged + slurmctld + slurmd for one node (this host), all state under ``base``."""

    def __init__(self, base: Path, partition: str = PARTITION):
        self.base = Path(base)
        self.partition = partition
        self.node = socket.gethostname().split(".")[0]
        self.cpus = os.cpu_count() or 1
        mem_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
        self.real_memory = min(20000, int(mem_mb * 0.9))  # more than there is drains the node
        self.gpus = max(1, min(self.cpus, len(FAKE_GPU_FILES)))
        self.munge_dir = self.base / "munge"
        self.socket = self.munge_dir / "munge.socket.2"
        self.pidfiles = {  # in stop order
            "slurmd": self.base / "slurmd.pid",
            "slurmctld": self.base / "slurmctld.pid",
            "munged": self.munge_dir / "munged.pid",
        }
        self.logs = [self.base / "slurmctld.log", self.base / "slurmd.log",
                     self.munge_dir / "munged.log"]

    # -- set-up ------------------------------------------------------------------------------
    @classmethod
    def create(cls, base: Path | None = None, timeout: float = 60) -> "LocalSlurm":
        if base is None:
            base = Path(tempfile.mkdtemp(prefix="tiktalk-slurm-"))
        cluster = cls(base)
        try:
            cluster.start(timeout)
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def slurm_conf(self) -> str:
        b = self.base
        return "\n".join([
            MARKER,
            f"# state, spool, logs and pid files: {b}",
            "ClusterName=tiktalk",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.socket}",
            f"StateSaveLocation={b}/state",
            f"SlurmdSpoolDir={b}/spool",
            f"SlurmctldPidFile={self.pidfiles['slurmctld']}",
            f"SlurmdPidFile={self.pidfiles['slurmd']}",
            f"SlurmctldLogFile={b}/slurmctld.log",
            f"SlurmdLogFile={b}/slurmd.log",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "JobCompType=jobcomp/none",
            "MpiDefault=none",
            "ReturnToService=2",
            "MinJobAge=300",
            "SchedulerParameters=sched_interval=2",
            "GresTypes=gpu",
            f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} "
            f"RealMemory={self.real_memory} Gres=gpu:{self.gpus} State=UNKNOWN",
            f"PartitionName={self.partition} Nodes={self.node} Default=YES MaxTime=INFINITE "
            "State=UP",
            "",
        ])

    def _write_conf(self) -> None:
        for path in (SLURM_CONF, GRES_CONF):
            if path.exists() and MARKER not in path.read_text(errors="replace"):
                raise RuntimeError(f"{path} exists and was not written by this helper: a SLURM "
                                   "installation is configured here; not touching it")
        SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
        SLURM_CONF.write_text(self.slurm_conf())
        GRES_CONF.write_text(MARKER + "\n" + "".join(f"Name=gpu File={f}\n" for f in FAKE_GPU_FILES[:self.gpus]))

    def _munge_key(self) -> None:
        import pwd
        pw = pwd.getpwnam("munge")
        MUNGE_KEY.parent.mkdir(parents=True, exist_ok=True)
        os.chown(MUNGE_KEY.parent, pw.pw_uid, pw.pw_gid)
        os.chmod(MUNGE_KEY.parent, 0o700)
        if not MUNGE_KEY.exists() or MUNGE_KEY.stat().st_size < 32:
            MUNGE_KEY.write_bytes(os.urandom(1024))
        os.chown(MUNGE_KEY, pw.pw_uid, pw.pw_gid)
        os.chmod(MUNGE_KEY, 0o400)
        os.chown(self.munge_dir, pw.pw_uid, pw.pw_gid)

    def _daemon(self, name: str, argv: list[str], **kw) -> None:
        """Start a self-daemonizing program; wait for its launcher to exit and its pid file."""
        res = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                             start_new_session=True, **kw)
        pidfile = self.pidfiles[name]
        deadline = time.monotonic() + 20
        while res.returncode == 0 and not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if res.returncode != 0 or not pidfile.exists():
            raise RuntimeError(f"{name} did not start (rc {res.returncode}): {res.stdout}"
                               f"{res.stderr}\n" + "\n".join(_tail(p) for p in self.logs))

    def start(self, timeout: float = 60) -> None:
        if os.geteuid() != 0:
            raise RuntimeError("the local SLURM cluster needs root")
        self.base.mkdir(parents=True, exist_ok=True)
        os.chmod(self.base, 0o755)  # munged runs as user munge and must reach its socket
        for d in (self.munge_dir, self.base / "state", self.base / "spool"):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.munge_dir, 0o755)
        self._munge_key()
        self._write_conf()
        self._daemon("munged", ["/usr/sbin/munged", f"--socket={self.socket}",
                                f"--pid-file={self.pidfiles['munged']}",
                                f"--log-file={self.munge_dir / 'munged.log'}",
                                f"--seed-file={self.munge_dir / 'munged.seed'}",
                                f"--key-file={MUNGE_KEY}"],
                     user="munge", group="munge", extra_groups=[])
        self._daemon("slurmctld", ["/usr/sbin/slurmctld", "-f", str(SLURM_CONF)])
        self._daemon("slurmd", ["/usr/sbin/slurmd", "-f", str(SLURM_CONF)])
        self.wait_idle(timeout)

    def wait_idle(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        out = ""
        while time.monotonic() < deadline:
            res = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %t"], capture_output=True,
                                 text=True)
            out = res.stdout + res.stderr
            if res.returncode == 0 and f"{self.node} idle" in res.stdout:
                return
            time.sleep(0.5)
        raise RuntimeError(f"node {self.node} not idle after {timeout}s: {out}\n"
                           + "\n".join(_tail(p) for p in self.logs))

    # -- use -----------------------------------------------------------------------------------
    def jobs(self) -> list[str]:
        """Our cluster's jobs still queued or running (``squeue`` lines: id state name)."""
        res = subprocess.run(["squeue", "-h", "-o", "%i %T %j"], capture_output=True, text=True)
        return res.stdout.split("\n")[:-1] if res.returncode == 0 else []

    def diagnostics(self) -> str:
        return "\n".join(_tail(p) for p in self.logs)

    # -- tear-down -----------------------------------------------------------------------------
    def stop(self) -> None:
        """Cancel the jobs, stop slurmd, slurmctld, munged by pid file, remove conf and state."""
        try:
            if self.pidfiles["slurmctld"].exists() and self.jobs():
                # every job on this throw-away cluster is ours
                subprocess.run(["scancel", f"--partition={self.partition}"],
                               capture_output=True, timeout=30)
                deadline = time.monotonic() + 30
                while self.jobs() and time.monotonic() < deadline:
                    time.sleep(0.5)
        except (OSError, subprocess.SubprocessError):
            pass
        for pidfile in self.pidfiles.values():
            stop_pidfile(pidfile)
        for path in (SLURM_CONF, GRES_CONF):
            try:
                if MARKER in path.read_text(errors="replace"):
                    path.unlink()
            except OSError:
                pass
        shutil.rmtree(self.base, ignore_errors=True)

    def running_daemons(self) -> list[str]:
        out = []
        for name, pidfile in self.pidfiles.items():
            try:
                if _pid_alive(int(pidfile.read_text().split()[0])):
                    out.append(name)
            except (OSError, ValueError, IndexError):
                pass
        return out


def main(argv: list[str]) -> int:
    if argv[:1] == ["install"]:
        why = ensure_installed()
        print(why or "slurm-wlm and munge are installed")
        return 1 if why else 0
    if argv[:1] == ["start"]:
        cluster = LocalSlurm.create(Path(argv[1]) if len(argv) > 1 else None)
        print(cluster.base)
        return 0
    if argv[:1] == ["stop"] and len(argv) == 2:
        LocalSlurm(Path(argv[1])).stop()
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
