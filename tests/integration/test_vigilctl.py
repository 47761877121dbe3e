"""vigilctl against the real daemon: output, exit codes, socket resolution, errors."""

import json
import os
import re
import select
import signal
import subprocess
import time

import pytest

from conftest import sleeper, VIGILCTL, helper_cmd, pid_alive, wait_until


@pytest.fixture
def two(vigil):
    vigil.write_config({"web": sleeper(), "batch": sleeper(autostart=False)})
    vigil.start()
    vigil.wait_state("web", "running")
    return vigil


def test_status_exit_codes(two):
    r = two.ctl("status", "web")
    assert r.returncode == 0
    assert r.stdout.splitlines()[0].split() == ["NAME", "STATE", "PID", "UPTIME", "RESTARTS", "NOTE"]
    assert r.stdout.splitlines()[1].split()[:2] == ["web", "running"]
    assert two.ctl("status").returncode == 3  # batch is stopped
    assert two.ctl("status", "batch").returncode == 3
    r = two.ctl("status", "nope")
    assert r.returncode == 1
    assert r.stderr == "vigilctl: no job named 'nope'\n"


def test_json_output_parses_back_to_the_protocol_result(two):
    r = two.ctl("--json", "status")
    data = json.loads(r.stdout)
    assert [s["name"] for s in data] == ["web", "batch"]
    assert data[0]["pid"] == two.status("web")["pid"]
    r = two.ctl("--json", "start", "batch", check=True)
    [o] = json.loads(r.stdout)
    assert o["name"] == "batch" and o["ok"] and o["state"] == "running"


def test_start_stop_restart_print_the_outcome(two):
    r = two.ctl("start", "batch", check=True)
    pid = two.status("batch")["pid"]
    assert r.stdout == f"batch: running (pid {pid})\n"
    r = two.ctl("restart", "batch", check=True)
    assert two.status("batch")["pid"] != pid
    r = two.ctl("stop", "all", check=True)
    assert sorted(r.stdout.splitlines()) == ["batch: stopped", "web: stopped"]


def test_a_failed_start_says_what_happened_and_where_to_look(vigil):
    vigil.write_config({"bad": {"command": helper_cmd("exit", 1), "autostart": False}})
    vigil.start()
    r = vigil.ctl("start", "bad")
    assert r.returncode == 1
    assert r.stderr.startswith("vigilctl: bad: exited with status 1 after ")
    assert r.stderr.rstrip().endswith(f"(see {vigil.log_dir}/bad.err.log)")


def test_cannot_connect_says_which_socket_and_what_to_check(tmp_path):
    path = str(tmp_path / "none.sock")
    r = subprocess.run([VIGILCTL, "-s", path, "status"], capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr == f"vigilctl: cannot connect to {path}: no such file (is vigild running?)\n"


def test_usage_errors_exit_2(two):
    r = two.ctl("frobnicate")
    assert r.returncode == 2
    assert "unknown command 'frobnicate'" in r.stderr
    assert two.ctl("start").returncode == 2  # names are required
    assert two.ctl("status", "--help").returncode == 0


def test_socket_from_env_and_from_config(two):
    env = dict(os.environ, VIGIL_SOCKET=two.socket)
    r = subprocess.run([VIGILCTL, "status", "web"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([VIGILCTL, "-c", str(two.config), "status", "web"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr


def test_no_colour_without_a_tty(two):
    r = two.ctl("status")
    assert "\x1b[" not in r.stdout
    env = dict(os.environ, NO_COLOR="1")
    r = two.ctl("status", env=env)
    assert "\x1b[" not in r.stdout


def ctl_on_a_tty(two, *args, env=None):
    """vigilctl's stdout on a real terminal (a pty); returns what it printed there."""
    master, slave = os.openpty()
    try:
        p = subprocess.run([VIGILCTL, "-s", two.socket, *args], stdout=slave,
                           stderr=subprocess.PIPE, env=env or dict(os.environ, TERM="xterm"),
                           timeout=30)
        os.close(slave)
        slave = -1
        out = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other side is closed and drained
                break
            if not chunk:
                break
            out += chunk
        assert p.returncode == 3, p.stderr  # batch does not run
        return out.decode()
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)


def test_colour_on_a_tty_and_not_when_told(two):
    out = ctl_on_a_tty(two, "status")
    rows = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    assert "\x1b[32mrunning\x1b[0m" in rows["web"]  # green: what everyone wants
    assert "stopped" in rows["batch"] and "\x1b[" not in rows["batch"]  # as asked: plain
    for args, env in ((["--no-color", "status"], None),
                      (["status"], dict(os.environ, TERM="xterm", NO_COLOR="1")),
                      (["status"], dict(os.environ, TERM="dumb"))):
        out = ctl_on_a_tty(two, *args, env=env)
        assert "running" in out
        assert "\x1b[" not in out, (args, out)


def test_reload_reports_the_difference(two):
    two.write_config({"web": sleeper(), "batch": sleeper(autostart=False, env={"X": "1"}),
                      "extra": sleeper()})
    r = two.ctl("reload", check=True)
    assert "added: extra" in r.stdout
    assert "changed: batch" in r.stdout
    assert "unchanged: 1 job" in r.stdout
    two.config.write_text("jobs:\n  web:\n    command: {program: x}\n")
    r = two.ctl("reload")
    assert r.returncode == 1
    assert f"{two.config}:3:14: jobs.web.command:" in r.stderr


def test_events_prints_state_changes(two):
    p = subprocess.Popen([VIGILCTL, "-s", two.socket, "events"], stdout=subprocess.PIPE,
                         text=True)
    try:
        # Nothing tells when the subscription is live, so make changes until one shows up.
        def first_event():
            two.call("restart", names=["web"], no_wait=True)
            ready, _, _ = select.select([p.stdout], [], [], 0.2)
            return p.stdout.readline() if ready else None
        assert " web " in wait_until(first_event, what="a first event")
        two.ctl("start", "batch", check=True)
        batch = []
        while len(batch) < 2:
            line = p.stdout.readline()
            if " batch " in line:
                batch.append(line)
        assert re.match(r"^\d{4}-\d\d-\d\dT[\d:.]+Z batch stopped -> starting \(pid \d+\)$",
                        batch[0].rstrip()), batch[0]
        assert "batch starting -> running" in batch[1]
    finally:
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=10) in (0, 130)


def test_logs_follow_ends_quietly_on_ctrl_c(vigil):
    vigil.write_config({"d": {"command": helper_cmd("drip", 0.05)}})
    vigil.start()
    p = subprocess.Popen([VIGILCTL, "-s", vigil.socket, "logs", "-f", "d"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = p.stdout.readline()
    assert first.startswith("drip ")
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=10) == 130
    assert p.stderr.read() == ""


def test_signal_and_version(two):
    pid = two.status("web")["pid"]
    r = two.ctl("signal", "CONT", "web", check=True)
    assert r.stdout == f"web: sent CONT to pid {pid}\n"
    r = two.ctl("version", check=True)
    assert r.stdout.startswith("vigilctl ") and "vigild " in r.stdout


def test_shutdown_returns_when_a_new_vigild_can_start(two):
    pid = two.pid()
    two.ctl("shutdown", check=True)
    assert not os.path.exists(two.socket)
    assert not os.path.exists(two.pidfile)
    two.start()  # no "already running", no "socket in use"
    assert two.pid() != pid
    wait_until(lambda: not pid_alive(pid), what="the old vigild to exit")


def test_logs_of_a_glob_matching_several_jobs_is_an_error_naming_them(vigil):
    vigil.write_config({"web-1": sleeper(), "web-2": sleeper(), "db": sleeper()})
    vigil.start()
    r = vigil.ctl("logs", "web-*")
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr == ("vigilctl: logs shows one job, but 'web-*' matches 2 jobs "
                        "(web-1, web-2): name one of them\n")
    raw = vigil.call("logs", name="web-*")
    assert raw["ok"] is False and raw["error"]["code"] == "bad_request", raw
    # A glob that matches one job is that job.
    assert vigil.ctl("logs", "d*").returncode == 0


def test_a_socket_path_that_is_a_file_or_a_folder_says_what_it_is(tmp_path):
    regular = tmp_path / "vigil.yaml"
    regular.write_text("jobs: {}\n")
    for path, what in ((regular, "a regular file"), (tmp_path, "a directory")):
        r = subprocess.run([VIGILCTL, "-s", str(path), "status"], capture_output=True,
                           text=True)
        assert r.returncode == 1
        assert r.stderr == f"vigilctl: cannot connect to {path}: it is {what}, not a socket\n"


def test_a_signal_that_does_not_exist_is_a_usage_error_and_nothing_is_sent(two):
    pid = two.status("web")["pid"]
    for sig, message in (("99", '"99" is not a signal number (expected 1 to 64)'),
                         ("4294967297", '"4294967297" is not a signal number (expected 1 to 64)'),
                         ("TREM", '"TREM" is not a signal (did you mean "TERM"?)')):
        r = two.ctl("signal", sig, "web")
        assert r.returncode == 2, r.stderr
        assert r.stderr == f"vigilctl: {message}\nsee 'vigilctl signal --help'\n"
    # Refused before connecting: no daemon is needed to hear it.
    r = subprocess.run([VIGILCTL, "-s", "/nonexistent/vigil.sock", "signal", "99", "web"],
                       capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    assert two.status("web")["pid"] == pid and pid_alive(pid)


def test_logs_of_a_log_not_written_yet_is_empty_with_a_note_but_an_unreadable_one_fails(vigil):
    blocker = vigil.dir / "not-a-folder"
    blocker.write_text("")
    vigil.write_config({"quiet": sleeper(autostart=False),
                        "lost": sleeper(autostart=False, stdout=str(blocker / "lost.log"))})
    vigil.start()
    log = f"{vigil.log_dir}/quiet.out.log"
    assert not os.path.exists(log)
    r = vigil.ctl("logs", "quiet")
    assert r.returncode == 0
    assert r.stdout == ""
    assert r.stderr == f"vigilctl: quiet has logged nothing yet: {log} does not exist\n"
    assert vigil.call("logs", name="quiet")["result"]["missing"] is True
    r = vigil.ctl("logs", "lost")
    assert r.returncode == 1
    assert r.stderr == f"vigilctl: cannot read {blocker}/lost.log: Not a directory\n"


def test_a_config_whose_socket_cannot_be_read_is_an_error_and_nothing_else_of_it_matters(two):
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIGIL_SOCKET", "VIGIL_TEST_NOT_SET")}
    # Everything that vigild would refuse on this machine, except the socket: vigilctl
    # reads the socket alone, so it finds the daemon.
    other = two.dir / "other.yaml"
    other.write_text(json.dumps({
        "supervisor": {"socket": two.socket, "socket_group": "no-such-group-here"},
        "jobs": {"x": {"command": ["${VIGIL_TEST_NOT_SET}/x"], "user": "no-such-user-here",
                       "bogus": 1}}}))
    r = subprocess.run([VIGILCTL, "-c", str(other), "status", "web"], capture_output=True,
                       text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    # A socket that cannot be read is an error: never another socket, whose daemon
    # `stop all` would stop.
    broken = two.dir / "broken.yaml"
    broken.write_text("supervisor:\n  socket: ${VIGIL_TEST_NOT_SET}/vigil.sock\njobs: {}\n")
    r = subprocess.run([VIGILCTL, "-c", str(broken), "stop", "all"], capture_output=True,
                       text=True, env=env)
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert lines[0].startswith(f"{broken}:2:11: supervisor.socket: "), r.stderr
    assert "VIGIL_TEST_NOT_SET" in lines[0]
    assert lines[1:] == [f"vigilctl: cannot tell which socket {broken} names: fix it, or "
                         "name the socket with -s or $VIGIL_SOCKET"]
    r = subprocess.run([VIGILCTL, "-c", str(two.dir / "none.yaml"), "stop", "all"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 2
    assert r.stderr.startswith(f"{two.dir}/none.yaml: cannot read: No such file")
    assert two.status("web")["state"] == "running"
