"""What survives what: vigild killed with SIGKILL, vigild as PID 1, the orphan guard."""

import os
import pathlib
import pwd
import re
import shutil
import signal
import subprocess
import time

import pytest

from conftest import SANITIZED, VIGILD, helper_cmd, pid_alive, sleeper, wait_until


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
    guard = lambda: next(iter(_guards_of(daemon)), None)
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
    wait_until(lambda: _guards_of(daemon), what="the guard")
    [g] = _guards_of(daemon)
    vigil.stop()
    wait_until(lambda: not pid_alive(g), what="the guard to leave with vigild")


def test_a_guard_that_keeps_dying_is_restarted_with_a_growing_delay_not_in_a_loop(vigil):
    # A guard that cannot stay up (here SIGKILLed as soon as it appears, as an OOM killer
    # or a careless `pkill -9` would) is restarted after 0.1s, then twice as long each
    # time: vigild neither spins nor floods its log, and serves on meanwhile.
    vigil.write_config({"a": sleeper()})
    vigil.start()
    daemon = vigil.pid()
    vigil.wait_state("a", "running")
    wait_until(lambda: _guards_of(daemon), what="the guard")
    exits = lambda: vigil.daemon_log().count("the orphan guard exited")
    cpu_before = cpu_seconds(daemon)
    window = time.monotonic() + 7  # the measurement window itself
    while time.monotonic() < window:
        for g in _guards_of(daemon):
            os.kill(g, signal.SIGKILL)
        time.sleep(0.05)
    cpu, restarts = cpu_seconds(daemon) - cpu_before, exits()
    # Restarts due 0.1, 0.3, 0.7, 1.5, 3.1 and 6.3s after the first kill: 7 exits in
    # 7s, where restarting at once would let the loop above kill a guard 20 times a second.
    assert 5 <= restarts <= 8, vigil.daemon_log()
    delays = [line.rsplit("restarting it in ", 1)[1] for line in vigil.daemon_log().splitlines()
              if "the orphan guard exited" in line]
    assert delays[:6] == ["100ms", "200ms", "400ms", "800ms", "1.6s", "3.2s"][:len(delays)]
    assert "the orphan guard exited (killed by signal KILL); restarting it in 100ms" in \
        vigil.daemon_log()
    assert cpu <= 0.1, f"vigild used {cpu:.2f}s of CPU in 7s of guard restarts"
    # vigild serves on, and its job runs.
    assert vigil.status("a")["state"] == "running"
    assert vigil.ctl("status", "a").returncode == 0

    # Left alone, the next guard stays up (restarted within 12.8s), and knows the job.
    guard = wait_until(lambda: next(iter(_guards_of(daemon)), None), timeout=30,
                       what="a guard once it is left alone")
    job = vigil.status("a")["pid"]
    os.kill(daemon, signal.SIGKILL)
    wait_until(lambda: not pid_alive(job), timeout=5, what="the job to go with vigild")
    wait_until(lambda: not pid_alive(guard), timeout=5, what="the guard to exit")


def _guards_of(daemon):
    """The live orphan guards whose parent is `daemon`, from /proc."""
    return [int(e) for e in os.listdir("/proc") if e.isdigit() and _comm(e) == "vigild-guard"
            and _ppid(e) == daemon and pid_alive(int(e))]


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


# --- Security ---------------------------------------------------------------------------

def test_a_list_command_never_goes_through_a_shell(vigil, tmp_path):
    vigil.write_config({"lit": {"command": ["/bin/echo", "$HOME; touch " + str(tmp_path / "pwned")],
                                "restart": "never", "start_seconds": 0}})
    vigil.start()
    vigil.wait_state("lit", "exited")
    out = pathlib.Path(vigil.log_dir) / "lit.out.log"
    wait_until(lambda: out.exists() and out.read_text(), what="output")
    assert out.read_text() == f"$HOME; touch {tmp_path / 'pwned'}\n"
    assert not (tmp_path / "pwned").exists()


def test_planted_symlinks_are_not_followed(vigil, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    os.makedirs(vigil.log_dir)
    os.symlink(victim, pathlib.Path(vigil.log_dir) / "j.out.log")
    os.symlink(victim, vigil.pidfile)
    vigil.write_config({"j": {"command": helper_cmd("print", "out", "err"), "start_retries": 0}})
    # Each refusal says which file, and why a link is not followed.
    r = vigil.start(check=False)
    assert r.returncode == 1
    assert (f"supervisor.pidfile: {vigil.pidfile} is a symbolic link; vigild does not follow "
            "links for its pidfile (a planted link could make it overwrite another file)"
            in r.stderr), r.stderr
    os.unlink(vigil.pidfile)
    os.unlink(vigil.log)  # the daemon's log, opened first, was made by the attempt above
    os.symlink(victim, vigil.log)
    r = vigil.start(check=False)
    assert r.returncode == 1
    assert (f"supervisor.log: {vigil.log} is a symbolic link; vigild does not follow links for "
            "logs (a planted link could make it write elsewhere)" in r.stderr), r.stderr
    os.unlink(vigil.log)
    vigil.start()
    # The job runs; its stdout log (a planted link) is refused and reported, never written.
    wait_until(lambda: vigil.status("j")["log_error"], what="the log error")
    out = pathlib.Path(vigil.log_dir) / "j.out.log"
    assert vigil.status("j")["log_error"].startswith(
        f"jobs.j.stdout: {out} is a symbolic link; vigild does not follow links for logs (a "
        "planted link could make it write elsewhere) (")
    assert victim.read_text() == "precious\n"


def test_a_job_log_folder_blocked_by_a_file_is_reported_with_the_setting(vigil, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder\n")
    vigil.write_config({"j": {"command": helper_cmd("print", "out", "err"), "start_retries": 0}},
                       supervisor={"log_dir": str(blocker / "logs")})
    vigil.start()
    wait_until(lambda: vigil.status("j")["log_error"], what="the log error")
    error = vigil.status("j")["log_error"]
    assert re.match(rf"jobs\.j\.std(out|err): cannot create {re.escape(str(blocker))}/logs: "
                    rf"{re.escape(str(blocker))} is not a directory \(\d+ bytes dropped so far\)$",
                    error), error


@pytest.mark.skipif(os.geteuid() != 0, reason="running a job as another user needs root")
def test_a_job_as_another_user_has_exactly_its_ids_and_no_daemon_fd(vigil):
    import pwd
    vigil.write_config({"n": {"command": ["/bin/sleep", "3600"], "user": "nobody",
                              "start_seconds": "0.2s"}})
    # vigild has $NOTIFY_SOCKET (and READY=1 arrives on it) and a variable of its own
    # namespace: the job must see neither.
    vigil.start_notified(env=dict(os.environ, VIGIL_INTERNAL_TEST="x"))
    pid = vigil.wait_state("n", "running")["pid"]
    pw = pwd.getpwnam("nobody")
    status = pathlib.Path(f"/proc/{pid}/status").read_text()
    fields = dict(l.split(":", 1) for l in status.splitlines())
    assert fields["Uid"].split() == [str(pw.pw_uid)] * 4
    assert fields["Gid"].split() == [str(pw.pw_gid)] * 4
    assert sorted(map(int, fields["Groups"].split())) == sorted(os.getgrouplist("nobody", pw.pw_gid))
    fds = sorted(int(f) for f in os.listdir(f"/proc/{pid}/fd"))
    assert fds == [0, 1, 2]
    assert os.readlink(f"/proc/{pid}/fd/0") == "/dev/null"
    assert os.readlink(f"/proc/{pid}/fd/1").startswith("pipe:")
    env = pathlib.Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert not any(e.startswith((b"NOTIFY_SOCKET=", b"VIGIL_INTERNAL_")) for e in env)
    assert b"USER=nobody" in env


# --- Faults -----------------------------------------------------------------------------

def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_crash_looping_job_costs_little_and_its_backoff_is_honoured(vigil):
    vigil.write_config({"crash": {"command": ["/bin/false"], "start_retries": 100000,
                                  "backoff": {"initial": "0.1s", "max": "0.5s", "factor": 2}}})
    vigil.start()
    pid = vigil.pid()
    wait_until(lambda: vigil.daemon_log().count("crash: backoff -> starting") >= 5,
               what="the loop to reach its longest delay")
    starts_before = vigil.daemon_log().count("-> starting")
    cpu_before = cpu_seconds(pid)
    time.sleep(10)  # the measurement window itself
    cpu = cpu_seconds(pid) - cpu_before
    starts = vigil.daemon_log().count("-> starting") - starts_before
    assert cpu <= 0.1, f"vigild used {cpu:.2f}s of CPU in 10s of crash loop (1% is 0.1s)"
    # At the 0.5s cap: about 20 starts in 10s, never more than the backoff allows.
    assert 10 <= starts <= 21, starts


def test_fd_exhaustion_is_reported_and_vigild_serves_on_and_recovers(vigil):
    import resource
    jobs = {f"j{i:02d}": {"command": ["/bin/sleep", "3600"], "start_seconds": "0.1s",
                          "start_retries": 100000, "backoff": {"initial": "0.2s", "max": "0.5s"}}
            for i in range(40)}
    vigil.write_config(jobs)
    vigil.start(preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64)))

    def reported():
        try:
            return any("Too many open files" in (s["reason"] or "")
                       for s in vigil.status().values())
        except (ConnectionError, OSError):
            return False  # the socket may be refused while every descriptor is taken
    wait_until(reported, timeout=20, what="a spawn failing for want of descriptors")
    assert "Too many open files" in vigil.daemon_log()

    # Stopping half the jobs frees their pipes: the others all come up.
    def stop_half():
        try:
            return vigil.call("stop", names=[f"j{i:02d}" for i in range(20)])["ok"]
        except (ConnectionError, OSError):
            return False
    wait_until(stop_half, timeout=20, what="the stop request to be served")
    for i in range(20, 40):
        vigil.wait_state(f"j{i:02d}", "running", timeout=20)
    assert pid_alive(vigil.pid())


def test_out_of_descriptors_new_clients_get_busy_it_is_logged_once_and_vigild_recovers(vigil):
    # Every client holds one of vigild's 64 descriptors: connect until they are all
    # taken. Each client after that must be told why it is refused (not find its
    # connection closed without a word), the log must say so once for the whole episode,
    # those connected are served on, and once some go, new clients are served again.
    import resource
    vigil.write_config({"a": sleeper()})
    vigil.start(preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64)))
    vigil.wait_state("a", "running")

    def ask():
        """A new connection and its first answer: to a version request, or a refusal."""
        c = vigil.client()
        try:
            c.send_line(b'{"id":1,"cmd":"version"}\n')
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused at once: the answer is waiting
        try:
            return c, c.read_message()
        except (ConnectionError, OSError) as e:
            c.close()
            return None, {"closed": repr(e)}

    held = []
    try:
        for _ in range(64):
            c, m = ask()
            if not m.get("ok"):
                break
            held.append(c)
        assert 10 < len(held) < 64, len(held)
        refusals = [m]
        for _ in range(4):
            c, m = ask()
            refusals.append(m)
            if c:
                c.close()
        for m in refusals:
            assert m.get("ok") is False and m["error"]["code"] == "busy", m
            assert "out of file descriptors" in m["error"]["message"], m
        assert held[0].call("status")["ok"]  # those connected are served on

        cannot = "control socket: cannot accept clients"
        wait_until(lambda: cannot in vigil.daemon_log(), what="the episode to be logged")
        for c in held[-10:]:
            c.close()
        del held[-10:]

        def served():
            c, m = ask()
            if c:
                c.close()
            return m.get("ok")
        wait_until(served, what="new clients to be served again")
        log = wait_until(lambda: "accepting clients again" in vigil.daemon_log()
                         and vigil.daemon_log(), what="the end of the episode to be logged")
        assert log.count(cannot) == 1, log
        assert re.search(r"accepting clients again \(\d+ refused with `busy` meanwhile\)", log)
        assert vigil.pid() and pid_alive(vigil.pid())
    finally:
        for c in held:
            c.close()


def test_a_job_that_closes_its_stdout_keeps_running_and_its_stderr_is_still_captured(vigil):
    vigil.write_config({"c": {"command": ["/bin/sh", "-c",
                                          "exec 1>&-; echo still here >&2; exec sleep 3600"],
                              "start_seconds": "0.2s"}})
    vigil.start()
    vigil.wait_state("c", "running")
    err = pathlib.Path(vigil.log_dir) / "c.err.log"
    wait_until(lambda: err.exists() and err.read_text() == "still here\n", what="stderr")


def test_a_sigstopped_job_still_stops_promptly(vigil):
    vigil.write_config({"z": sleeper(stop_timeout="10s")})
    vigil.start()
    pid = vigil.wait_state("z", "running")["pid"]
    os.kill(pid, signal.SIGSTOP)
    assert vigil.status("z")["state"] == "running"  # stopped, not dead
    t0 = time.monotonic()
    r = vigil.call("stop", names=["z"])
    assert r["ok"], r
    assert time.monotonic() - t0 < 3  # TERM acted on at once (CONT follows it), not KILL at 10s
    assert vigil.status("z")["last_exit"] == {"signal": "TERM"}


def test_a_job_that_daemonizes_leaves_its_grandchild_to_vigild(vigil, tmp_path):
    # The classic double fork: the leader exits at once, the daemon lives on in its own
    # session. The job counts as exited (a one-shot); the grandchild is vigild's to reap.
    # kill_group: false, as documented for programs that daemonize themselves: with the
    # default, what is left in the leader's group when it exits is killed.
    pidfile = tmp_path / "daemon.pid"
    vigil.write_config({"d": {"command": ["/bin/sh", "-c",
                                          f"setsid sh -c 'echo $$$$ > {pidfile}; exec sleep 3600' &"],  # $$ is vigil's escape for $
                              "restart": "never", "start_seconds": 0, "kill_group": False}})
    vigil.start()
    vigil.wait_state("d", "exited")
    wait_until(pidfile.exists, what="the daemon's pid")
    grand = int(pidfile.read_text())
    assert pid_alive(grand)
    assert _ppid(grand) == vigil.pid()  # reparented to the subreaper
    os.kill(grand, signal.SIGTERM)
    wait_until(lambda: f"reaped orphan pid {grand}" in vigil.daemon_log(), what="the reaping")


def test_with_kill_group_what_a_leader_leaves_in_its_group_dies_with_it(vigil, tmp_path):
    pids = tmp_path / "pids"
    vigil.write_config({"g": {"command": ["/bin/sh", "-c",
                                          f"sleep 3600 & echo $! > {pids}.tmp; mv {pids}.tmp {pids}; exit 3"],
                              "restart": "never", "start_seconds": 0}})
    vigil.start()
    vigil.wait_state("g", "exited")
    wait_until(pids.exists, what="the child's pid")
    child = int(pids.read_text())
    wait_until(lambda: not pid_alive(child), what="the leftover child to be killed")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root to run vigild as another user")
def test_a_process_limit_is_reported_and_retried(tmp_path, throwaway_user):
    import json
    import resource
    import tempfile
    from conftest import Client, Vigil
    # vigild as a user of its own, allowed 6 processes: itself, its guard, four jobs.
    # Every process of the user counts against the limit, so it is a user made for this
    # test (nobody may run anything else on this machine).
    user = throwaway_user.pw_name
    shared = pathlib.Path(tempfile.mkdtemp(prefix="vigil-nproc-"))
    os.chmod(shared, 0o777)
    v = Vigil(shared)
    jobs = {f"j{i}": {"command": ["/bin/sleep", "3600"], "start_seconds": "0.1s",
                      "start_retries": 100000, "backoff": {"initial": "0.2s", "max": "0.5s"}}
            for i in range(6)}
    v.write_config(jobs)
    os.chmod(v.config, 0o644)
    env = dict(os.environ)
    if SANITIZED:
        # LeakSanitizer needs a thread of its own at exit, which the limit this test uses
        # up refuses: the process that daemonizes would then fail its leak check.
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
    try:
        r = subprocess.run(["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups",
                            VIGILD, "-c", str(v.config)], capture_output=True, text=True,
                           timeout=30, env=env,
                           preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NPROC, (6, 6)))
        assert r.returncode == 0, r.stderr
        def reason_seen():
            return any("cannot fork: Resource temporarily unavailable" in (s["reason"] or "")
                       for s in v.status().values())
        wait_until(reason_seen, timeout=20, what="a fork refused by the process limit")
        # As many as fit run (threads count against the limit too, so no exact number).
        up = lambda: sorted(n for n, s in v.status().items() if s["state"] == "running")
        last = [None]

        def settled():
            now = up()
            same = now == last[0] and now
            last[0] = now
            return same
        running = wait_until(settled, interval=0.5, what="the jobs that fit to run")
        # Freeing processes lets the others come up: vigild kept retrying by policy.
        assert v.call("stop", names=running)["ok"]
        waiting = [n for n in jobs if n not in running]
        fits = min(len(waiting), len(running))
        wait_until(lambda: len([n for n in up() if n in waiting]) == fits, timeout=20,
                   what=f"{fits} of the waiting jobs to come up")
    finally:
        v.stop()
