"""Reading /proc directly: process trees, CPU time, memory, context switches.

Everything here is a plain read of a /proc file, so the harness needs nothing beyond
Python and a Linux kernel. A process that vanishes between two reads is treated as gone.
"""
import os

CLK_TCK = os.sysconf("SC_CLK_TCK")


def read(path):
    """The file's bytes, or None when it (or its process) is gone."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        chunks = []
        while True:
            b = os.read(fd, 65536)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def children(pid):
    """Children of `pid`'s main thread (every supervisor here forks from its main thread),
    zombies included until they are reaped."""
    data = read(f"/proc/{pid}/task/{pid}/children")
    if not data:
        return []
    return [int(x) for x in data.split()]


def comm(pid):
    data = read(f"/proc/{pid}/comm")
    return data.rstrip(b"\n").decode(errors="replace") if data else None


def stat_fields(pid):
    """/proc/PID/stat split after the command name: index 0 is `state` (field 3)."""
    data = read(f"/proc/{pid}/stat")
    if not data:
        return None
    return data[data.rindex(b")") + 2:].split()


def is_live(pid):
    """True while the process exists and has not exited (a zombie counts as exited)."""
    f = stat_fields(pid)
    return f is not None and f[0] not in (b"Z", b"X")


def cpu_seconds(pid):
    """utime + stime of the whole process (all its threads), children excluded."""
    f = stat_fields(pid)
    if f is None:
        return 0.0
    # fields 14 and 15 of stat(5): indexes 11 and 12 here
    return (int(f[11]) + int(f[12])) / CLK_TCK


def run_seconds(pid):
    """Time on CPU of every thread of `pid` (children excluded), from the scheduler's own
    nanosecond count (/proc/PID/task/TID/schedstat). utime+stime in /proc/PID/stat are
    scaled from the same count but printed in 10 ms ticks, so a process that ran for less
    than a tick (every s6-supervise) shows 0 there."""
    total = 0
    for tid in threads(pid):
        data = read(f"/proc/{pid}/task/{tid}/schedstat")
        if data:
            total += int(data.split()[0])
    return total / 1e9


def status_kb(pid, key):
    data = read(f"/proc/{pid}/status")
    if not data:
        return 0
    for line in data.splitlines():
        if line.startswith(key.encode() + b":"):
            return int(line.split()[1])
    return 0


def rss_bytes(pid):
    return status_kb(pid, "VmRSS") * 1024


def pss_bytes(pid):
    data = read(f"/proc/{pid}/smaps_rollup")
    if not data:
        return 0
    for line in data.splitlines():
        if line.startswith(b"Pss:"):
            return int(line.split()[1]) * 1024
    return 0


def threads(pid):
    try:
        return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


def context_switches(pid):
    """Voluntary + involuntary context switches summed over every thread of `pid`."""
    total = 0
    for tid in threads(pid):
        data = read(f"/proc/{pid}/task/{tid}/status")
        if not data:
            continue
        for line in data.splitlines():
            if line.startswith(b"voluntary_ctxt_switches:") or line.startswith(
                    b"nonvoluntary_ctxt_switches:"):
                total += int(line.split()[1])
    return total


def pids_with_env(marker):
    """Every process whose environment contains the bytes `marker` (NAME=value)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        env = read(f"/proc/{name}/environ")
        if env and marker in env.split(b"\0"):
            found.append(int(name))
    return found
