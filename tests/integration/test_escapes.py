"""Processes that leave their job's process group (setsid, a double fork), without cgroups:
vigild finds them by the mark in their environment (VIGIL_JOB, VIGIL_RUN), so a stop, a
shutdown and the orphan guard reach them, and a daemonizing job is reported as such."""

import os
import pathlib
import signal
import time

from conftest import helper_cmd, pid_alive, wait_until


def marked(tag):
    """Live processes whose environment has TEST_TAG=tag (each job below sets it)."""
    out = []
    needle = f"TEST_TAG={tag}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            env = pathlib.Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if needle in env.split(b"\0") and pid_alive(int(entry)):
            out.append(int(entry))
    return sorted(out)


def job(tmp_path, mode, pidfile, **extra):
    spec = {"command": helper_cmd(mode, pidfile), "env": {"TEST_TAG": str(tmp_path)},
            "start_seconds": "0.2s"}
    spec.update(extra)
    return spec


def test_every_process_of_a_job_carries_its_mark(vigil, tmp_path):
    pidfile = tmp_path / "e.pid"
    vigil.write_config({"e": job(tmp_path, "escape", pidfile,
                                 env={"TEST_TAG": str(tmp_path), "VIGIL_JOB": "forged"})})
    vigil.start()
    leader = vigil.wait_state("e", "running")["pid"]
    wait_until(pidfile.exists, what="the escaped process's pid")
    escaped = int(pidfile.read_text())
    for pid in (leader, escaped):
        env = dict(e.split(b"=", 1) for e in
                   pathlib.Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if b"=" in e)
        assert env[b"VIGIL_JOB"] == b"e"  # a job's env cannot change it
        assert env[b"VIGIL_RUN"]


def test_a_stop_reaches_a_process_that_left_the_group(vigil, tmp_path):
    # The leader runs on; a process it left in a session of its own is vigild's child.
    # The stop signal reaches it with the group (it writes the signal it got), and the
    # stop waits for nothing more than it did.
    pidfile = tmp_path / "e.pid"
    vigil.write_config({"e": job(tmp_path, "escape", pidfile)})
    vigil.start()
    leader = vigil.wait_state("e", "running")["pid"]
    wait_until(pidfile.exists, what="the escaped process's pid")
    escaped = int(pidfile.read_text())
    assert os.getsid(escaped) != leader and os.getpgid(escaped) != leader  # it did leave
    r = vigil.call("stop", names=["e"])
    assert r["ok"], r
    wait_until(lambda: not pid_alive(escaped), timeout=5, what="the escaped process to go")
    assert (tmp_path / "e.pid.term").read_text() == "TERM\n"
    assert marked(tmp_path) == []
    assert f"e: pid {escaped} left the job's process group" in vigil.daemon_log()


def test_sigterm_to_vigild_stops_what_left_a_group_and_leaves_nothing(vigil, tmp_path):
    pidfile = tmp_path / "e.pid"
    vigil.write_config({"e": job(tmp_path, "escape", pidfile)})
    vigil.start()
    vigil.wait_state("e", "running")
    wait_until(pidfile.exists, what="the escaped process's pid")
    escaped = int(pidfile.read_text())
    vigil.stop()
    assert not pid_alive(escaped)
    assert (tmp_path / "e.pid.term").read_text() == "TERM\n"
    assert marked(tmp_path) == []


def test_kill_9_of_vigild_takes_what_left_a_group_along(vigil, tmp_path):
    pidfile = tmp_path / "e.pid"
    vigil.write_config({"e": job(tmp_path, "escape", pidfile),
                        "d": job(tmp_path, "daemonize", tmp_path / "d.pid", kill_group=False,
                                 restart="never")})
    vigil.start()
    vigil.wait_state("e", "running")
    vigil.wait_state("d", "exited")
    wait_until(pidfile.exists, what="the escaped process's pid")
    wait_until((tmp_path / "d.pid").exists, what="the daemon's pid")
    left = [int(pidfile.read_text()), int((tmp_path / "d.pid").read_text())]
    assert all(pid_alive(p) for p in left)
    os.kill(vigil.pid(), signal.SIGKILL)
    t0 = time.monotonic()
    wait_until(lambda: marked(tmp_path) == [], timeout=5, what="the guard to kill every marked process")
    assert time.monotonic() - t0 < 2.0


def test_a_daemonizing_job_with_kill_group_dies_with_its_leader_and_says_so(vigil, tmp_path):
    # kill_group: true (the default) means nothing of a job outlives its main process:
    # a program that daemonizes itself leaves its daemon outside the group, which dies
    # too, and status says why. A start never adds another copy.
    pidfile = tmp_path / "d.pid"
    # Its leader exits long before start_seconds, however slow the machine: a start that
    # ends in `exited`, not one that counted as running first.
    vigil.write_config({"d": job(tmp_path, "daemonize", pidfile, start_seconds="30s")})
    vigil.start()
    s = vigil.wait_state("d", "exited")
    daemon = int(pidfile.read_text())
    wait_until(lambda: not pid_alive(daemon), timeout=5, what="the daemon to be killed")
    s = vigil.status("d")
    assert s["last_exit"] == {"code": 0}
    assert f"killed 1 process it left outside its process group (pid {daemon})" in s["reason"]
    assert "kill_group: false" in s["reason"]  # and what to do about it
    for _ in range(3):
        pidfile.unlink()
        r = vigil.ctl("start", "d")
        assert r.returncode != 0, r.stdout
        assert "killed 1 process it left outside its process group" in r.stderr
        wait_until(lambda: marked(tmp_path) == [], timeout=5, what="the new copy to be killed")


def test_a_daemonizing_job_without_kill_group_is_reported_and_never_started_twice(vigil, tmp_path):
    # kill_group: false leaves the daemon running, as documented for programs that
    # daemonize themselves. Status says it runs on; a start would add another copy and
    # is refused; a stop stops it; a restart stops it and starts anew.
    pidfile = tmp_path / "d.pid"
    vigil.write_config({"d": job(tmp_path, "daemonize", pidfile, kill_group=False,
                                 restart="never", stop_timeout="5s")})
    vigil.start()
    vigil.wait_state("d", "exited")
    daemon = int(pidfile.read_text())
    s = vigil.status("d")
    assert s["reason"] == f"its main process has exited, but 1 process of it still runs (pid {daemon})"
    assert marked(tmp_path) == [daemon]

    r = vigil.ctl("start", "d")
    assert r.returncode != 0
    assert (f"d: 1 process of its last run still runs (pid {daemon}), and a start would add "
            "another copy (kill_group is false): stop or restart the job, which stops it first"
            in r.stderr), r.stderr
    assert marked(tmp_path) == [daemon]

    # A restart stops it first (with the stop signal), then starts a new copy.
    pidfile.unlink()
    r = vigil.ctl("restart", "d")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "d.pid.term").read_text() == "TERM\n"
    assert not pid_alive(daemon)
    wait_until(pidfile.exists, what="the new daemon's pid")
    second = int(pidfile.read_text())
    wait_until(lambda: marked(tmp_path) == [second], what="only the new copy")

    # A stop stops it, and the job is stopped once it has gone.
    (tmp_path / "d.pid.term").unlink()
    r = vigil.call("stop", names=["d"])
    assert r["ok"], r
    assert r["result"][0]["state"] == "stopped"
    assert not pid_alive(second)
    assert (tmp_path / "d.pid.term").read_text() == "TERM\n"
    s = vigil.status("d")
    assert s["state"] == "stopped" and s["reason"] is None


def test_without_kill_group_a_restart_waits_for_what_the_last_run_left(vigil, tmp_path):
    # restart: always would start a copy after each exit; while the daemon runs the job
    # is held in backoff, and it starts again once the daemon has gone.
    pidfile = tmp_path / "d.pid"
    vigil.write_config({"d": job(tmp_path, "daemonize", pidfile, kill_group=False,
                                 restart="always", start_seconds=0,
                                 backoff={"initial": "0.1s", "max": "0.2s"})})
    vigil.start()
    wait_until(pidfile.exists, what="the daemon's pid")
    daemon = int(pidfile.read_text())
    s = wait_until(lambda: (s := vigil.status("d"))["state"] == "backoff" and
                   "restarted once it has exited" in (s["reason"] or "") and s, what="the hold")
    assert f"(pid {daemon})" in s["reason"]
    assert marked(tmp_path) == [daemon]  # held: no copy beside it
    pidfile.unlink()
    os.kill(daemon, signal.SIGTERM)
    wait_until(pidfile.exists, what="a new daemon once the first has gone")
    assert int(pidfile.read_text()) != daemon
    vigil.call("stop", names=["d"])
