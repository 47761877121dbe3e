"""Facts about the machine and the software under test, for the report."""
import os
import platform
import subprocess
from pathlib import Path


def _run(argv, cwd=None):
    try:
        return subprocess.run(argv, capture_output=True, text=True, cwd=cwd).stdout.strip()
    except OSError:
        return ""


def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def mem_total():
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def filesystem_of(path):
    """(fstype, mount point, device) of the mount that holds `path`."""
    path = os.path.realpath(path)
    best = ("?", "/", "?")
    for line in Path("/proc/mounts").read_text().splitlines():
        dev, mnt, fstype = line.split()[:3]
        mnt = mnt.replace("\\040", " ")
        if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best[1]):
            best = (fstype, mnt, dev)
    return best


def cpu_busy(seconds=2.0):
    """Share of the machine's CPU time used by others over `seconds` (before a run): a
    shared machine makes every figure here noisier."""
    import time

    def snap():
        f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return sum(f[:8]), f[3] + f[4], f[7]
    t0, i0, s0 = snap()
    time.sleep(seconds)
    t1, i1, s1 = snap()
    total = max(1, t1 - t0)
    return {"busy": 1 - (i1 - i0) / total, "steal": (s1 - s0) / total}


def loadavg():
    return Path("/proc/loadavg").read_text().split()[:3]


def facts(tmp, repo, peers_versions):
    fstype, mnt, dev = filesystem_of(tmp)
    commit = _run(["git", "rev-parse", "--short", "HEAD"], cwd=repo)
    # diff-index does not write the index (unlike status or describe).
    dirty = subprocess.run(["git", "diff-index", "--quiet", "HEAD", "--"], cwd=repo,
                           capture_output=True).returncode != 0
    debian = Path("/etc/debian_version").read_text().strip() if Path(
        "/etc/debian_version").exists() else "?"
    return {
        "nproc": os.cpu_count(),
        "model": cpu_model(),
        "kernel": platform.release(),
        "memory": mem_total(),
        "os": f"Debian {debian}",
        "tmp": tmp,
        "tmp_fs": f"{fstype} ({dev} on {mnt})",
        "python": platform.python_version(),
        "versions": peers_versions,
        "vigil_commit": commit + (" + uncommitted changes" if dirty else ""),
        "load_before": loadavg(),
        "cpu_busy_before": cpu_busy(),
    }
