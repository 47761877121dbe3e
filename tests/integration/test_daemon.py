"""vigild as a daemon: the readiness handshake, the pidfile, daemon hygiene, shutdown."""

import datetime
import fcntl
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import termios
import time

import pytest

from conftest import (sleeper, VIGILD, helper_cmd, pid_alive, proc_stat, read_report,
                      wait_until)


def test_start_returns_only_once_the_socket_is_bound(vigil):
    vigil.write_config({"a": sleeper()})
    r = vigil.start()
    assert r.returncode == 0
    # The handshake means these hold the moment the command returns: no waiting.
    assert os.path.exists(vigil.socket)
    assert vigil.pid() is not None and pid_alive(vigil.pid())
    assert vigil.call("version")["ok"]


def test_bad_config_fails_with_the_located_reason_and_exit_2(vigil):
    vigil.write_config(None, text="jobs:\n  a:\n    command: [\"/bin/true\"]\n    umask: \"0999\"\n")
    r = vigil.start(check=False)
    assert r.returncode == 2
    assert f'{vigil.config}:4:12: jobs.a.umask: "0999" is not an octal mode' in r.stderr
    assert not os.path.exists(vigil.socket)
    assert not os.path.exists(vigil.pidfile)


def test_second_instance_is_refused_with_the_pid(vigil):
    vigil.write_config({"a": sleeper()})
    vigil.start()
    first = vigil.pid()
    r = vigil.start(check=False)
    assert r.returncode == 1
    assert f"already running, pid {first}" in r.stderr
    assert vigil.pid() == first and pid_alive(first)


def test_stale_pidfile_of_a_dead_daemon_is_taken_over(vigil):
    # A pidfile naming a pid that is gone and holding no lock, as a kill -9 leaves it.
    dead = subprocess.Popen(["/bin/true"])
    dead.wait()
    pathlib.Path(vigil.pidfile).write_text(f"{dead.pid}\n")
    vigil.write_config({"a": sleeper()})
    vigil.start()
    assert vigil.pid() != dead.pid and pid_alive(vigil.pid())


def test_stale_socket_of_a_dead_daemon_is_replaced(vigil):
    s = socket.socket(socket.AF_UNIX)
    s.bind(vigil.socket)
    s.close()  # bound, never listening: a dead daemon's socket file
    vigil.write_config({"a": sleeper()})
    vigil.start()
    assert vigil.call("version")["ok"]


def test_live_socket_is_never_stolen(vigil):
    s = socket.socket(socket.AF_UNIX)
    s.bind(vigil.socket)
    s.listen(1)
    try:
        vigil.write_config({"a": sleeper()})
        r = vigil.start(check=False)
        assert r.returncode == 1
        assert f"socket {vigil.socket} is in use by another process" in r.stderr
    finally:
        s.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run vigild as nobody")
def test_a_socket_vigild_may_not_connect_to_is_left_alone(tmp_path):
    # A live daemon's socket that this vigild (as nobody) is not allowed to connect to:
    # that is no proof the daemon is dead, so the socket must not be replaced, even in a
    # folder where nobody could remove it.
    import pwd
    import tempfile
    nobody = pwd.getpwnam("nobody")
    d = pathlib.Path(tempfile.mkdtemp(prefix="vigil-eacces-"))
    try:
        os.chmod(d, 0o777)
        sock_path = str(d / "vigil.sock")
        live = socket.socket(socket.AF_UNIX)
        live.bind(sock_path)
        os.chmod(sock_path, 0o600)
        live.listen(1)
        cfg = d / "vigil.yaml"
        cfg.write_text(f"supervisor:\n  socket: {sock_path}\n  pidfile: {d}/vigild.pid\n"
                       f"  log: {d}/vigild.log\n  log_dir: {d}/logs\njobs: {{}}\n")
        os.chmod(cfg, 0o644)

        def as_nobody():
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)

        # A copy nobody can run, wherever the build folder is (a clone in a 0700 temp
        # dir, say). It fails before it would start its orphan guard.
        vigild = d / "vigild"
        shutil.copy(VIGILD, vigild)
        r = subprocess.run([str(vigild), "-c", str(cfg)], capture_output=True, text=True,
                           timeout=60, preexec_fn=as_nobody)
        assert r.returncode == 1, r
        assert f"cannot check whether {sock_path} is in use: Permission denied" in r.stderr
        assert os.path.exists(sock_path)
        c = socket.socket(socket.AF_UNIX)
        c.connect(sock_path)  # still the live daemon's
        c.close()
        live.close()
    finally:
        # A vigild that took the socket after all must not outlive the test (its
        # processes would count against nobody's process limit in later tests).
        pidfile = d / "vigild.pid"
        if pidfile.exists():
            pid = int(pidfile.read_text())
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: not pid_alive(pid), what="the stray vigild to go")
        shutil.rmtree(d, ignore_errors=True)


def test_daemon_has_no_tty_is_not_a_session_leader_and_lives_in_root(vigil, tmp_path):
    # The user's shell owns a pty as its controlling terminal and runs vigild from there:
    # a daemon that kept the shell's session would keep its tty too.
    master, slave = os.openpty()

    def own_the_pty():
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    vigil.write_config({"a": sleeper()})
    report = tmp_path / "starter"
    starter = subprocess.Popen(helper_cmd("starter", report, VIGILD, "-c", vigil.config),
                               stdin=slave, stdout=slave, stderr=slave, preexec_fn=own_the_pty)
    os.close(slave)
    try:
        shell = read_report(report, timeout=60)
        assert shell["rc"] == "0"
        assert int(shell["pid"]) == starter.pid
        assert int(shell["sid"]) == starter.pid and int(shell["tty_nr"]) != 0, shell
        pid = vigil.pid()
        # Checked while the starter's session (and so its tty) still exists.
        fields = proc_stat(pid)
        pgrp, session, tty_nr = int(fields[2]), int(fields[3]), int(fields[4])
        assert tty_nr == 0
        assert session != pid
        assert session != int(shell["sid"])
        assert pgrp != int(shell["pgrp"])
        assert os.readlink(f"/proc/{pid}/cwd") == "/"
        for fd in (0, 1, 2):
            assert os.readlink(f"/proc/{pid}/fd/{fd}") == "/dev/null"
    finally:
        starter.kill()
        starter.wait(timeout=30)
        os.close(master)


def test_socket_and_pidfile_modes(vigil):
    vigil.write_config({"a": sleeper()})
    vigil.start()
    assert os.stat(vigil.socket).st_mode & 0o777 == 0o600
    assert os.stat(vigil.pidfile).st_mode & 0o777 == 0o644
    assert os.stat(vigil.log).st_mode & 0o777 == 0o640


@pytest.mark.parametrize("group", [None, "nogroup"], ids=["owner-only", "socket_group"])
def test_the_socket_is_never_more_open_than_configured_not_even_for_a_moment(vigil, tmp_path,
                                                                             group):
    # The file's mode seen from outside after start-up says nothing of the moment between
    # bind() and chmod(). A probe preloaded into vigild (socket_mode_probe.c) reads the
    # mode as bind() creates the socket, and the mode and group as chmod() changes them:
    # the socket must be born 0600, and group access granted only once the group is set.
    if group is not None and os.geteuid() != 0:
        pytest.skip("needs root to give the socket a group of its own")
    probe = tmp_path / "socket_mode_probe.so"
    src = pathlib.Path(__file__).resolve().parent / "socket_mode_probe.c"
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", str(probe), str(src), "-ldl"],
                   check=True, timeout=60)
    record = tmp_path / "modes"
    env = dict(os.environ, LD_PRELOAD=str(probe), VIGIL_TEST_MODE_LOG=str(record))
    # The sanitizer runtime wants to be the first library; the probe needs only libc.
    env["ASAN_OPTIONS"] = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                                 "verify_asan_link_order=0"]))
    supervisor = {"socket_mode": "0660"}
    if group is not None:
        supervisor["socket_group"] = group
    vigil.write_config({"a": sleeper()}, supervisor=supervisor)
    vigil.start(env=env)
    events = [line.split(" ", 3) for line in record.read_text().splitlines()
              if line.endswith(" " + vigil.socket)]
    binds = [(int(mode, 8), int(gid)) for what, mode, gid, _ in events if what == "bind"]
    chmods = [(int(mode, 8), int(gid)) for what, mode, gid, _ in events if what == "chmod"]
    assert len(binds) == 1, events
    assert binds[0][0] == 0o600, f"the socket was born {binds[0][0]:o}"
    st = os.stat(vigil.socket)
    assert st.st_mode & 0o777 == 0o660
    if group is not None:
        import grp
        gid = grp.getgrnam(group).gr_gid
        assert st.st_gid == gid
        # Before group access is granted, the group is already the configured one.
        assert chmods and all(g == gid for _, g in chmods), (chmods, gid)
    assert vigil.call("version")["ok"]


@pytest.mark.parametrize("foreground", [False, True], ids=["daemon", "foreground"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sigterm_or_sigint_stops_every_job_and_leaves_nothing_behind(vigil, tmp_path, sig,
                                                                     foreground):
    jobs = {f"j{i}": sleeper() for i in range(5)}
    jobs["grand"] = {"command": helper_cmd("grandchild", tmp_path / "grand.pids")}
    vigil.write_config(jobs)
    if foreground:
        pid = vigil.start_foreground().pid  # vigild is the test's child: its exit code shows
    else:
        vigil.start()
        pid = vigil.pid()
    wait_until(lambda: (tmp_path / "grand.pids").exists(), what="grandchild pids")
    job_pids = [s["pid"] for s in vigil.status().values()]
    job_pids += [int(p) for p in (tmp_path / "grand.pids").read_text().split()]
    assert len(job_pids) == 9 and all(job_pids), job_pids
    assert os.path.exists(vigil.socket) and os.path.exists(vigil.pidfile)
    os.kill(pid, sig)
    if foreground:
        assert vigil.proc.wait(timeout=20) == 0
        log = vigil.proc.stderr.read()
    else:
        wait_until(lambda: not pid_alive(pid), timeout=20, what="vigild to exit")
        log = vigil.daemon_log()
    for p in job_pids:
        assert not pid_alive(p), f"pid {p} outlived vigild"
    assert not os.path.exists(vigil.socket)
    assert not os.path.exists(vigil.pidfile)
    assert f"shutting down ({sig.name}): stopping all jobs" in log
    assert "all jobs stopped; exiting" in log


def test_foreground_notifies_readiness_and_logs_to_stderr(vigil, tmp_path):
    report = tmp_path / "report"
    vigil.write_config({"a": sleeper(), "r": {"command": helper_cmd("report", report)}})
    vigil.start_notified()  # READY=1 and MAINPID reached the socket
    # Jobs never see vigild's own variables, though vigild has $NOTIFY_SOCKET.
    env = {k for k in read_report(report) if k.startswith("env.")}
    assert "env.PATH" in env and "env.NOTIFY_SOCKET" not in env
    vigil.stop()
    assert vigil.proc.returncode == 0
    err = vigil.proc.stderr.read()
    assert "a: stopped -> starting" in err
    assert "all jobs stopped; exiting" in err


LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z (info|warn|error): ")


def test_daemon_log_lines_are_stamped_and_carry_an_exec_failure_reason(vigil):
    vigil.write_config({"a": sleeper(),
                        "missing": {"command": ["/nonexistent/program"], "start_retries": 0}})
    vigil.start()
    vigil.wait_state("a", "running")
    vigil.wait_state("missing", "fatal")
    lines = vigil.daemon_log().splitlines()
    assert len(lines) >= 4, lines  # started, a's spawn and start, missing's failure
    for line in lines:
        assert LOG_LINE.match(line), f"not a stamped log line: {line!r}"
    # The stamp is the time now, in UTC.
    stamp = datetime.datetime.fromisoformat(LOG_LINE.match(lines[-1]).group(1))
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    assert abs((now - stamp).total_seconds()) < 60, (stamp, now)
    failure = [l for l in lines
               if "missing: cannot exec /nonexistent/program: No such file or directory" in l]
    assert failure and all(LOG_LINE.match(l).group(2) == "error" for l in failure), lines
    assert not [l for l in lines if re.search(r"\b(status|code) 127\b", l)], lines


def test_foreground_refuses_a_busy_pidfile(vigil):
    vigil.write_config({"a": sleeper()})
    vigil.start()
    r = subprocess.run([VIGILD, "-f", "-c", str(vigil.config)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1
    assert "already running" in r.stderr


@pytest.mark.parametrize("setting", ["socket", "pidfile", "log"])
def test_a_file_in_the_way_of_a_folder_is_reported_with_the_setting(vigil, tmp_path, setting):
    # vigild creates the folders of its socket, pidfile and log; a regular file where one
    # of them should be is named, with the folder asked for and the setting that asked.
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder\n")
    vigil.write_config({"a": sleeper()}, supervisor={setting: str(blocker / "sub" / "f")})
    r = vigil.start(check=False)
    assert r.returncode == 1
    assert (f"supervisor.{setting}: cannot create {blocker}/sub: {blocker} is not a directory"
            in r.stderr), r.stderr
    assert not os.path.exists(vigil.socket) or setting == "socket"
    assert vigil.pid() is None


def test_check_reports_ok_and_errors(vigil):
    vigil.write_config({"a": sleeper(), "b": sleeper()})
    r = subprocess.run([VIGILD, "--check", "-c", str(vigil.config)], capture_output=True,
                       text=True)
    assert r.returncode == 0
    assert "ok (2 jobs" in r.stdout
    vigil.write_config(None, text="jobs:\n  a:\n    comand: [x]\n  b:\n    command: []\n")
    r = subprocess.run([VIGILD, "--check", "-c", str(vigil.config)], capture_output=True,
                       text=True)
    assert r.returncode == 2
    lines = [l for l in r.stderr.splitlines() if l.startswith(str(vigil.config))]
    assert len(lines) >= 2, r.stderr  # every problem, not just the first


def test_usage_errors_exit_2():
    r = subprocess.run([VIGILD, "--bogus"], capture_output=True, text=True)
    assert r.returncode == 2
    assert "unknown argument '--bogus'" in r.stderr
    r = subprocess.run([VIGILD, "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("vigild ")


def test_idle_daemon_with_100_jobs_does_not_wake_up(vigil):
    vigil.write_config({f"idle{i}": {"command": ["/bin/sleep", "3600"], "start_seconds": "0.1s"}
                        for i in range(100)})
    vigil.start()
    wait_until(lambda: all(s["state"] == "running" for s in vigil.status().values()),
               timeout=30, what="100 jobs running")
    pid = vigil.pid()

    def switches():
        # Every thread (the log writer's too), and switches of both kinds.
        total = 0
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/status") as f:
                    total += sum(int(l.split()[1]) for l in f
                                 if l.startswith(("voluntary_ctxt_switches",
                                                  "nonvoluntary_ctxt_switches")))
            except FileNotFoundError:
                pass  # a thread that has just ended
        return total

    # Let the last status request's disconnect be handled: wait until the count settles.
    last = [switches()]

    def settled():
        time.sleep(0.5)
        now = switches()
        same = now == last[0]
        last[0] = now
        return same

    wait_until(settled, timeout=30, interval=0, what="vigild to settle")
    before = switches()
    time.sleep(10)  # the measurement window itself: nothing is awaited here
    after = switches()
    assert after - before == 0, f"vigild woke up {after - before} times in 10s while idle"


def test_shutdown_timeout_bounds_the_whole_shutdown(vigil, tmp_path):
    pids_file = tmp_path / "pids"
    vigil.write_config({"stubborn": {"command": helper_cmd("ignore-term", pids_file),
                                     "stop_timeout": "60s", "start_seconds": "0.2s"}},
                       supervisor={"shutdown_timeout": "1s"})
    vigil.start()
    wait_until(pids_file.exists, what="pids")
    job = int(pids_file.read_text().split()[0])
    pid = vigil.pid()
    t0 = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not pid_alive(pid), timeout=20, what="vigild to exit")
    assert time.monotonic() - t0 < 5  # 1s, then SIGKILL; not the job's 60s stop_timeout
    assert not pid_alive(job)
    assert "shutdown_timeout passed: killing what is left" in vigil.daemon_log()
