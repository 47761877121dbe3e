"""What survives what: vigild killed with SIGKILL, vigild as PID 1, the orphan guard."""

import os
import pathlib
import shutil
import signal
import subprocess
import time

import pytest

from conftest import VIGILD, helper_cmd, pid_alive, sleeper, wait_until


def group_members(pgid):
    """Live processes in a process group, from /proc."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(int(entry))
    return out


def test_kill_9_of_vigild_leaves_no_job_behind_and_a_new_vigild_takes_over(vigil, tmp_path):
    vigil.write_config({
        "a": sleeper(),
        "b": sleeper(),
        "tree": {"command": helper_cmd("grandchild", tmp_path / "tree.pids"), "start_seconds": "0.2s"},
    })
    vigil.start()
    for n in ("a", "b", "tree"):
        vigil.wait_state(n, "running")
    wait_until((tmp_path / "tree.pids").exists, what="the tree's pids")
    leaders = [s["pid"] for s in vigil.status().values()]
    tree = [int(p) for p in (tmp_path / "tree.pids").read_text().split()]
    daemon = vigil.pid()
    os.kill(daemon, signal.SIGKILL)
    t0 = time.monotonic()
    wait_until(lambda: not any(pid_alive(p) for p in leaders + tree), timeout=5,
               what="every job process to be gone")
    assert time.monotonic() - t0 < 2.0
    for pgid in leaders:
        assert group_members(pgid) == []
    # The stale pidfile and socket are taken over, and every job comes back.
    assert os.path.exists(vigil.pidfile) and os.path.exists(vigil.socket)
    vigil.start()
    assert vigil.pid() != daemon
    for n in ("a", "b", "tree"):
        s = vigil.wait_state(n, "running")
        assert s["pid"] not in leaders


def test_the_orphan_guard_is_restarted_if_it_dies(vigil):
    vigil.write_config({"a": sleeper()})
    vigil.start()
    vigil.wait_state("a", "running")
    daemon = vigil.pid()

    def guard():
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if pathlib.Path(f"/proc/{entry}/comm").read_text().strip() == "vigild-guard":
                        with open(f"/proc/{entry}/stat") as f:
                            if int(f.read().rsplit(")", 1)[1].split()[1]) == daemon:
                                return int(entry)
                except (FileNotFoundError, ProcessLookupError):
                    pass
        return None

    first = wait_until(guard, what="the guard")
    os.kill(first, signal.SIGKILL)
    second = wait_until(lambda: (g := guard()) and g != first and g, what="a new guard")
    assert "the orphan guard exited" in vigil.daemon_log()
    # The new guard knows the running job: kill -9 of vigild still takes the job along.
    job = vigil.status("a")["pid"]
    os.kill(daemon, signal.SIGKILL)
    wait_until(lambda: not pid_alive(job), timeout=5, what="the job to be gone")
    wait_until(lambda: not pid_alive(second), timeout=5, what="the guard to exit")


def test_a_clean_shutdown_leaves_no_guard(vigil):
    vigil.write_config({"a": sleeper()})
    vigil.start()
    daemon = vigil.pid()
    guards = lambda: [e for e in os.listdir("/proc") if e.isdigit() and
                      _comm(e) == "vigild-guard" and _ppid(e) == daemon]
    wait_until(guards, what="the guard")
    [g] = guards()
    vigil.stop()
    wait_until(lambda: not pid_alive(int(g)), what="the guard to leave with vigild")


def _comm(pid):
    try:
        return pathlib.Path(f"/proc/{pid}/comm").read_text().strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def _ppid(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return -1


@pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare is not installed")
def test_vigild_as_pid_1_reaps_orphans_and_stops_cleanly(vigil, tmp_path):
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a PID namespace here: {probe.stderr.strip()}")
    vigil.write_config({
        "o": {"command": helper_cmd("orphan", tmp_path / "orphan")},
        "s": sleeper(),
    })
    proc = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", VIGILD, "-f", "-c",
                             str(vigil.config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        wait_until(lambda: os.path.exists(vigil.socket), what="vigild in its namespace")
        # The orphan's pid is as seen inside the namespace; vigild (pid 1 there) reaps it.
        wait_until((tmp_path / "orphan").exists, what="the orphan")
        orphan = int((tmp_path / "orphan").read_text())
        wait_until(lambda: f"reaped orphan pid {orphan}" in _stderr_so_far(proc, tmp_path),
                   timeout=10, what="the orphan to be reaped by pid 1")
        assert vigil.status("s")["state"] == "running"
        # vigild is unshare's child; SIGTERM it from outside the namespace.
        inner = [int(p) for p in os.listdir("/proc") if p.isdigit() and _ppid(p) == proc.pid]
        assert len(inner) == 1
        os.kill(inner[0], signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert "all jobs stopped; exiting" in _stderr_so_far(proc, tmp_path)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _stderr_so_far(proc, tmp_path, _buf={}):
    """Reads what vigild -f has written to stderr so far without blocking."""
    import fcntl
    fd = proc.stderr.fileno()
    fl = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, fl | os.O_NONBLOCK)
    key = proc.pid
    try:
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            _buf[key] = _buf.get(key, "") + chunk.decode(errors="replace")
    except BlockingIOError:
        pass
    return _buf.get(key, "")
