"""What a job gets (cwd, env, umask, user, fds, logs) and how it is supervised
(restarts, fatal, stop escalation, process groups, reaping)."""

import os
import pathlib
import pwd
import resource
import shutil
import signal
import tempfile
import time

import pytest

from conftest import (HELPER, PYTHON, helper_cmd, pid_alive, proc_stat, read_report,
                      wait_until, children_of)


def test_cwd_env_umask_and_process_group_reach_the_job(vigil, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    report = tmp_path / "report"
    vigil.write_config({"r": {
        "command": helper_cmd("report", report),
        "cwd": str(work),
        "umask": "0027",
        "env": {"GREETING": "hello ${VIGIL_TEST_FROM_DAEMON}", "EMPTY": "${NOPE_UNSET:-dflt}"},
    }})
    # In the foreground with $NOTIFY_SOCKET set (and used: READY=1 arrives), so that the
    # job's not seeing it below means vigild withheld it.
    vigil.start_notified(env=dict(os.environ, VIGIL_TEST_FROM_DAEMON="inherited"))
    r = read_report(report)
    assert r["cwd"] == str(work)
    assert r["umask"] == "0027"
    assert r["env.GREETING"] == "hello inherited"
    assert r["env.EMPTY"] == "dflt"
    assert r["env.VIGIL_TEST_FROM_DAEMON"] == "inherited"  # the daemon's environment
    # Its own session and process group, led by itself.
    assert r["pgid"] == r["pid"] and r["sid"] == r["pid"]
    # Only stdin, stdout and stderr (3 is the helper's own listing of /proc/self/fd).
    assert r["fds"] == "0,1,2,3"
    assert "env.NOTIFY_SOCKET" not in r


def test_many_jobs_each_get_only_their_own_stdio_and_vigild_keeps_their_pipes_apart(vigil):
    # Each job starts from a copy of only the low part of vigild's descriptor table
    # (spawner.cc); vigild keeps the descriptors it holds per job above a base, 2048 here.
    # Every one of 300 jobs started together must still have exactly its own 0, 1 and 2,
    # whatever vigild held while they were being spawned.
    n = 300
    vigil.write_config({f"j{i:03d}": {"command": ["/bin/sleep", "3600"], "start_seconds": 0}
                        for i in range(n)})
    vigil.start(preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 8192)))
    wait_until(lambda: all(s["state"] == "running" for s in vigil.status().values()),
               timeout=60, what="all jobs running")
    pipes = {}
    for i, s in enumerate(vigil.status().values()):
        pid = s["pid"]
        # Polled: `running` comes at the exec, and the dynamic loader of a sleep that has
        # just started may still hold a library open for a moment. A descriptor the job
        # was given would stay.
        fds = lambda: sorted(int(f) for f in os.listdir(f"/proc/{pid}/fd"))
        wait_until(lambda: fds() == [0, 1, 2], timeout=10,
                   what=f"{s['name']} to hold only 0, 1 and 2 (it holds {fds()})")
        assert os.readlink(f"/proc/{pid}/fd/0") == "/dev/null"
        pipes[os.readlink(f"/proc/{pid}/fd/1")] = pid
        pipes[os.readlink(f"/proc/{pid}/fd/2")] = pid
        # And the original file limit, not the one vigild raised for itself.
        limits = pathlib.Path(f"/proc/{pid}/limits").read_text()
        assert [l.split()[3:5] for l in limits.splitlines()
                if l.startswith("Max open files")] == [["1024", "8192"]]
    assert len(pipes) == 2 * n  # a pipe of its own for each stream of each job
    held = {}
    for f in os.listdir(f"/proc/{vigil.pid()}/fd"):
        try:
            held[int(f)] = os.readlink(f"/proc/{vigil.pid()}/fd/{f}")
        except FileNotFoundError:
            pass
    job_ends = [fd for fd, target in held.items() if target in pipes]
    assert len(job_ends) == 2 * n  # vigild reads every one of them
    assert min(job_ends) >= 2048, sorted(job_ends)[:5]
    assert len([fd for fd in held if fd < 2048]) < 64, sorted(held)


def test_a_job_starts_with_a_clean_signal_mask_and_default_dispositions(vigil, tmp_path):
    # Not the Python helper: Python ignores SIGPIPE and SIGXFSZ itself at startup. grep
    # reads its own status, inherited through sh and exec as vigild left it.
    out = tmp_path / "sig"
    vigil.write_config({"s": {"command": ["/bin/sh", "-c",
                              f"grep -E '^Sig(Blk|Ign)' /proc/self/status > {out}.tmp; "
                              f"mv {out}.tmp {out}; exec sleep 3600"]}})
    vigil.start()
    wait_until(out.exists, what="the signal report")
    fields = dict(l.split(":\t") for l in out.read_text().splitlines())
    # vigild itself ignores SIGPIPE and blocks nothing a job should inherit.
    assert fields == {"SigBlk": "0000000000000000", "SigIgn": "0000000000000000"}


def test_vigild_raises_its_file_limit_but_jobs_keep_the_original(vigil, tmp_path):
    report = tmp_path / "report"
    vigil.write_config({"r": {"command": helper_cmd("report", report)}})
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    vigil.start(preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard)))
    assert read_report(report)["nofile"] == "256"
    with open(f"/proc/{vigil.pid()}/limits") as f:
        line = next(l for l in f if l.startswith("Max open files"))
    assert int(line.split()[3]) == hard


def test_a_file_made_by_a_job_has_the_mode_its_umask_implies(vigil, tmp_path):
    vigil.write_config({
        "strict": {"command": helper_cmd("touch", tmp_path / "strict"), "umask": "0077"},
        "loose": {"command": helper_cmd("touch", tmp_path / "loose"), "umask": "0002"},
        "default": {"command": helper_cmd("touch", tmp_path / "default")},
    }, supervisor={"umask": "0022"})
    vigil.start()
    for name in ("strict", "loose", "default"):
        wait_until(lambda: (tmp_path / name).exists(), what=f"file {name}")
    assert os.stat(tmp_path / "strict").st_mode & 0o777 == 0o600
    assert os.stat(tmp_path / "loose").st_mode & 0o777 == 0o664
    assert os.stat(tmp_path / "default").st_mode & 0o777 == 0o644


@pytest.mark.skipif(os.geteuid() != 0, reason="running a job as another user needs root")
def test_a_job_runs_as_nobody_with_its_groups_and_home(vigil, tmp_path):
    # pytest's temp root is private to root: nobody writes its report in a folder of its own.
    shared = pathlib.Path(tempfile.mkdtemp(prefix="vigil-nobody-"))
    os.chmod(shared, 0o777)
    report = shared / "report"
    # The checkout itself may be private to root (a clone in a 0700 temp dir): nobody
    # runs its own copy of the helper.
    helper = shared / "helper.py"
    shutil.copy(HELPER, helper)
    os.chmod(helper, 0o755)
    vigil.write_config({"n": {"command": [PYTHON, str(helper), "report", str(report)],
                              "user": "nobody"}})
    vigil.start()
    r = read_report(report)
    pw = pwd.getpwnam("nobody")
    assert int(r["uid"]) == pw.pw_uid
    assert int(r["gid"]) == pw.pw_gid
    expected_groups = sorted(os.getgrouplist("nobody", pw.pw_gid))
    assert r["groups"] == ",".join(map(str, expected_groups))
    assert r["env.HOME"] == pw.pw_dir
    assert r["env.USER"] == "nobody"
    pid = int(r["pid"])
    with open(f"/proc/{pid}/status") as f:
        status = f.read()
    assert f"Uid:\t{pw.pw_uid}\t{pw.pw_uid}\t{pw.pw_uid}\t{pw.pw_uid}" in status


def test_stdout_and_stderr_land_in_their_files(vigil, tmp_path):
    vigil.write_config({
        "split": {"command": helper_cmd("print", "to-out", "to-err")},
        "merged": {"command": helper_cmd("print", "m-out", "m-err"), "stderr": "stdout",
                   "stdout": str(tmp_path / "merged.log")},
        "dropped": {"command": helper_cmd("print", "x", "y"), "stdout": "null", "stderr": "null"},
    })
    vigil.start()
    out = pathlib.Path(vigil.log_dir) / "split.out.log"
    err = pathlib.Path(vigil.log_dir) / "split.err.log"
    wait_until(lambda: out.exists() and "to-out" in out.read_text(), what="stdout log")
    wait_until(lambda: err.exists() and "to-err" in err.read_text(), what="stderr log")
    assert "to-err" not in out.read_text()
    assert os.stat(out).st_mode & 0o777 == 0o640
    merged = tmp_path / "merged.log"
    wait_until(lambda: merged.exists() and "m-err" in merged.read_text(), what="merged log")
    assert "m-out" in merged.read_text()
    wait_until(lambda: vigil.status("dropped")["state"] == "running", what="dropped running")
    assert not (pathlib.Path(vigil.log_dir) / "dropped.out.log").exists()
    s = vigil.status("split")
    assert s["stdout"] == str(out) and s["stderr"] == str(err)


def test_kill_9_of_a_job_gives_a_new_pid(vigil):
    vigil.write_config({"a": {"command": helper_cmd("sleep"), "start_seconds": "0.2s",
                              "backoff": {"initial": "0.1s", "max": "1s"}}})
    vigil.start()
    first = vigil.wait_state("a", "running")["pid"]
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: (s := vigil.status("a"))["pid"] not in (None, first) and s,
               what="a new pid")
    s = vigil.wait_state("a", "running")
    assert s["pid"] != first
    assert s["restarts"] == 1
    assert s["last_exit"] == {"signal": "KILL"}


def test_a_job_exiting_1_becomes_fatal_after_start_retries(vigil):
    vigil.write_config({"bad": {"command": helper_cmd("exit", 1), "start_retries": 2,
                                "backoff": {"initial": "0.1s", "max": "0.2s"}}})
    vigil.start()
    s = vigil.wait_state("bad", "fatal", timeout=20)
    assert s["last_exit"] == {"code": 1}
    assert "gave up after 3 attempts" in s["reason"]
    assert s["pid"] is None
    log = vigil.daemon_log()
    assert log.count("bad: stopped -> starting") + log.count("bad: backoff -> starting") == 3


def test_exec_failure_is_the_reason_not_exit_127(vigil, tmp_path):
    noexec = tmp_path / "noexec.sh"
    noexec.write_text("#!/bin/sh\necho hi\n")
    os.chmod(noexec, 0o644)
    vigil.write_config({
        "missing": {"command": ["/nonexistent/program"], "start_retries": 0},
        "notinpath": {"command": ["no-such-program-xyz"], "start_retries": 0},
        "noperm": {"command": [str(noexec)], "start_retries": 0},
        "badcwd": {"command": ["/bin/sleep", "60"], "cwd": str(tmp_path / "gone"),
                   "start_retries": 0},
    })
    vigil.start()
    reasons = {n: vigil.wait_state(n, "fatal")["reason"] for n in
               ("missing", "notinpath", "noperm", "badcwd")}
    assert reasons["missing"].startswith("cannot exec /nonexistent/program: No such file or directory")
    assert reasons["notinpath"].startswith("cannot exec no-such-program-xyz: not found in PATH")
    assert reasons["noperm"].startswith(f"cannot exec {noexec}: Permission denied")
    assert reasons["badcwd"].startswith(f"cannot chdir to {tmp_path / 'gone'}: No such file")
    for s in vigil.status().values():
        assert s["last_exit"] is None  # never an anonymous exit 127


def test_vigild_started_without_stdio_still_gives_jobs_theirs(vigil, tmp_path):
    # Started with descriptors 0, 1 and 2 closed (as some init scripts do), vigild's own
    # files must not take their numbers: the job's stdio is still /dev/null and its logs.
    fd0 = tmp_path / "fd0"
    vigil.write_config({"io": {"command": ["/bin/sh", "-c", f"readlink /proc/self/fd/0 > {fd0}; "
                                           "echo to-out; echo to-err >&2; exec sleep 60"],
                               "start_seconds": 0}})

    def close_stdio():
        for fd in (0, 1, 2):
            os.close(fd)

    vigil.start(check=False, preexec_fn=close_stdio)
    vigil.wait_state("io", "running")
    wait_until(lambda: fd0.exists() and fd0.read_text() == "/dev/null\n", what="the job's stdin")
    out = pathlib.Path(vigil.status("io")["stdout"])
    err = pathlib.Path(vigil.status("io")["stderr"])
    wait_until(lambda: out.exists() and out.read_text() == "to-out\n", what="stdout log")
    wait_until(lambda: err.exists() and err.read_text() == "to-err\n", what="stderr log")


def test_a_job_ignoring_sigterm_and_its_child_are_gone_within_stop_timeout(vigil, tmp_path):
    pids_file = tmp_path / "pids"
    vigil.write_config({"stubborn": {"command": helper_cmd("ignore-term", pids_file, "child"),
                                     "stop_timeout": "1s", "start_seconds": "0.2s"}})
    vigil.start()
    vigil.wait_state("stubborn", "running")
    wait_until(pids_file.exists, what="pids")
    pids = [int(p) for p in pids_file.read_text().split()]
    assert len(pids) == 2
    started = time.monotonic()
    r = vigil.call("stop", names=["stubborn"])
    elapsed = time.monotonic() - started
    assert r["ok"], r
    assert r["result"][0]["state"] == "stopped"
    assert 0.9 <= elapsed < 5.0
    for p in pids:
        wait_until(lambda: not pid_alive(p), timeout=5, what=f"pid {p} to be gone")
    assert "did not stop within 1s, killed" in vigil.status("stubborn")["reason"]


def start_group_and_leader(vigil, tmp_path, **leader):
    """Jobs "group" (kill_group) and "leader" (kill_group: false, and `leader`), each a
    leader, its child and its grandchild, running. Returns their pids: (group, leader)."""
    vigil.write_config({
        "group": {"command": helper_cmd("grandchild", tmp_path / "g.pids"), "start_seconds": "0.2s"},
        "leader": {"command": helper_cmd("grandchild", tmp_path / "l.pids"), "kill_group": False,
                   "start_seconds": "0.2s", **leader},
    })
    vigil.start()
    wait_until(lambda: (tmp_path / "g.pids").exists() and (tmp_path / "l.pids").exists(),
               what="pid files")
    vigil.wait_state("group", "running")
    vigil.wait_state("leader", "running")
    return ([int(p) for p in (tmp_path / "g.pids").read_text().split()],
            [int(p) for p in (tmp_path / "l.pids").read_text().split()])


def test_kill_group_reaches_grandchildren_and_false_does_not(vigil, tmp_path):
    g, l = start_group_and_leader(vigil, tmp_path, stop_signal="KILL")
    assert vigil.call("stop", names=["group", "leader"])["ok"]
    for p in g:
        wait_until(lambda: not pid_alive(p), timeout=5, what=f"group member {p} gone")
    assert not pid_alive(l[0])
    try:
        assert pid_alive(l[1]) and pid_alive(l[2]), "kill_group: false must spare the rest"
    finally:
        for p in l[1:]:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_signal_reaches_the_whole_group_with_kill_group_and_only_the_leader_without(vigil, tmp_path):
    # `vigilctl signal STOP`: with kill_group (the default) every process of the group is
    # stopped (state T in /proc); without, only the leader is, and its children sleep on.
    g, l = start_group_and_leader(vigil, tmp_path)
    state = lambda pid: proc_stat(pid)[0]
    assert [state(p) for p in g + l] == ["S"] * 6
    r = vigil.ctl("signal", "STOP", "group", "leader")
    assert r.returncode == 0, r.stderr
    try:
        wait_until(lambda: all(state(p) == "T" for p in g), what="every process of the group to stop")
        wait_until(lambda: state(l[0]) == "T", what="the leader without kill_group to stop")
        # Signalled in the same request as the leader: had they been, they would be T too.
        assert [state(p) for p in l[1:]] == ["S", "S"], "kill_group: false signals the leader only"
    finally:
        vigil.ctl("signal", "CONT", "group", "leader")
        for p in l[1:]:  # what kill_group: false leaves is not vigild's to stop
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_a_stop_signal_reaches_every_process_of_the_group(vigil, tmp_path):
    # A child in the leader's group traps TERM and writes what it got; the leader waits for
    # it on TERM. The stop is over at once, not at stop_timeout, and the child saw TERM
    # (a TERM to the leader alone would leave it to the SIGKILL that ends the stop).
    pids, trap = tmp_path / "pids", tmp_path / "trap"
    vigil.write_config({"g": {"command": helper_cmd("group-trap", pids, trap),
                              "start_seconds": "0.2s", "stop_timeout": "5s"}})
    vigil.start()
    vigil.wait_state("g", "running")
    wait_until(pids.exists, what="the pids")
    leader, child = [int(p) for p in pids.read_text().split()]
    assert os.getpgid(child) == leader
    t0 = time.monotonic()
    r = vigil.call("stop", names=["g"])
    assert r["ok"], r
    assert time.monotonic() - t0 < 4, "the stop waited for stop_timeout"
    assert trap.read_text() == "TERM\n"
    assert vigil.status("g")["last_exit"] == {"code": 0}


def test_an_orphaned_grandchild_is_reaped_by_vigild(vigil, tmp_path):
    vigil.write_config({"o": {"command": helper_cmd("orphan", tmp_path / "orphan")}})
    vigil.start()
    wait_until((tmp_path / "orphan").exists, what="orphan pid")
    orphan = int((tmp_path / "orphan").read_text())
    daemon = vigil.pid()
    # While it lives, its parent is vigild (the subreaper), not init.
    try:
        assert int(proc_stat(orphan)[1]) == daemon
    except FileNotFoundError:
        pass  # already reaped: what the rest of the test checks
    wait_until(lambda: not os.path.exists(f"/proc/{orphan}"), timeout=10,
               what="the orphan to be reaped")
    zombies = [p for p in children_of(daemon) if proc_stat(p)[0] == "Z"]
    assert zombies == []
    wait_until(lambda: f"reaped orphan pid {orphan}" in vigil.daemon_log(), what="log line")


def test_restart_policies_after_a_counted_start(vigil):
    vigil.write_config({
        "never": {"command": helper_cmd("exit", 3, 0.5), "restart": "never", "start_seconds": "0.2s"},
        "onfail_ok": {"command": helper_cmd("exit", 0, 0.5), "restart": "on-failure",
                      "start_seconds": "0.2s"},
        "always": {"command": helper_cmd("exit", 0, 0.5), "restart": "always", "start_seconds": "0.2s",
                   "backoff": {"initial": "0.1s", "max": "0.2s"}},
    })
    vigil.start()
    s = vigil.wait_state("never", "exited")
    assert s["last_exit"] == {"code": 3}
    s = vigil.wait_state("onfail_ok", "exited")
    assert s["last_exit"] == {"code": 0}
    wait_until(lambda: vigil.status("always")["restarts"] >= 2, what="always to restart")
