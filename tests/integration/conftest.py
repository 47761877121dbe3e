"""Integration-test harness: runs the real vigild and vigilctl in a temp dir.

Every test gets its own folder holding the config, socket, pidfile and logs, and a
`Vigil` object to start the daemon, talk to it (raw protocol or vigilctl) and poll for
conditions. Nothing sleeps a fixed time: `wait_until` polls with a generous bound.
"""

import grp
import json
import os
import pathlib
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("VIGIL_BUILD_DIR", ROOT / "build"))
VIGILD = os.environ.get("VIGILD", str(BUILD / "supervisor" / "vigild"))
VIGILCTL = os.environ.get("VIGILCTL", str(BUILD / "ctl" / "vigilctl"))
HELPER = str(pathlib.Path(__file__).resolve().parent / "helper.py")
PYTHON = sys.executable


def helper_cmd(*args):
    """argv of a job that runs tests/integration/helper.py in the given mode."""
    return [PYTHON, HELPER, *map(str, args)]


# Set by tests/run for the sanitizer build, whose shadow memory and quarantine make
# vigild's RSS meaningless: memory bounds are checked on the normal build only.
SANITIZED = os.environ.get("VIGIL_SANITIZED") == "1"


def rss_kib(pid):
    """Resident memory of a process, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        return int(next(l for l in f if l.startswith("VmRSS")).split()[1])


def assert_rss_below(pid, kib, what):
    """Fails if pid's RSS is over `kib` (skipped on the sanitizer build)."""
    if SANITIZED:
        return
    rss = rss_kib(pid)
    assert rss < kib, f"vigild RSS {rss} KiB {what}"


def sleeper(**extra):
    """A job that runs until signalled and counts as started after 0.2s."""
    job = {"command": helper_cmd("sleep"), "start_seconds": "0.2s"}
    job.update(extra)
    return job


def wait_until(predicate, timeout=10.0, interval=0.02, what="condition"):
    """Polls predicate() until it returns a truthy value; fails the test after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def read_report(path, timeout=10.0):
    """Waits for a KEY=VALUE file a helper writes (atomically) and returns it as a dict."""
    wait_until(lambda: pathlib.Path(path).exists(), timeout=timeout, what=f"report {path}")
    out = {}
    for line in pathlib.Path(path).read_text().splitlines():
        k, _, v = line.partition("=")
        out[k] = v
    return out


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def proc_stat(pid):
    """Fields of /proc/PID/stat after the command name (index 0 is the state)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def children_of(pid):
    """Direct children of pid, from /proc (zombies included)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = proc_stat(int(entry))
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid:
            out.append(int(entry))
    return out


def processes_of(uid):
    """Pids of every process (zombies included) whose real uid is `uid`."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                uids = next(l for l in f if l.startswith("Uid:")).split()
        except (OSError, StopIteration):
            continue
        if int(uids[1]) == uid:
            out.append(int(entry))
    return out


@pytest.fixture
def throwaway_user():
    """A system user and its group, made for one test and removed after it (needs root).

    For tests that count or limit a user's processes: `nobody` may run anything on the
    machine (memcached, a test of another checkout), a user made here runs nothing but
    what the test starts. Yields its pwd entry; its group has the same name."""
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        pytest.skip("needs root and useradd to make a user")
    name = f"vigil-test-{secrets.token_hex(4)}"
    r = subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                        "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot make a user here: {r.stderr.strip()}")
    pw = pwd.getpwnam(name)
    try:
        yield pw
    finally:
        # userdel refuses a user that still runs something: what the test left goes first.
        for pid in processes_of(pw.pw_uid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_until(lambda: not processes_of(pw.pw_uid), timeout=30,
                   what=f"the processes of {name} to be gone")
        r = subprocess.run(["userdel", name], capture_output=True, text=True)
        assert r.returncode == 0, f"userdel {name}: {r.stderr}"
        try:
            grp.getgrnam(name)
            subprocess.run(["groupdel", name], capture_output=True, text=True, check=True)
        except KeyError:
            pass  # userdel removed the group with the user


def to_yaml(value, indent=0):
    """A tiny YAML writer (JSON is YAML), so tests build configs from dicts."""
    return json.dumps(value, indent=2)


class Client:
    """A raw protocol client: one connection, newline-delimited JSON."""

    def __init__(self, path, timeout=30.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)  # blocking: waits for room in the backlog, never EAGAIN
        self.sock.settimeout(timeout)
        self.buf = b""
        self.next_id = 1

    def send_line(self, data: bytes):
        self.sock.sendall(data)

    def read_message(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by vigild")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def call(self, cmd, **args):
        rid = self.next_id
        self.next_id += 1
        self.send_line(json.dumps({"id": rid, "cmd": cmd, "args": args}).encode() + b"\n")
        while True:
            msg = self.read_message()
            if msg.get("id") == rid and "event" not in msg:
                return msg

    def close(self):
        self.sock.close()


class Vigil:
    """One vigild under test, in its own folder."""

    def __init__(self, tmp_path):
        self.dir = tmp_path
        self.socket = str(tmp_path / "vigil.sock")
        self.pidfile = str(tmp_path / "vigild.pid")
        self.log = str(tmp_path / "vigild.log")
        self.log_dir = str(tmp_path / "logs")
        self.config = tmp_path / "vigil.yaml"
        self.proc = None  # the foreground process, when run with -f

    def write_config(self, jobs, supervisor=None, text=None):
        """Writes vigil.yaml: socket, pidfile and logs in the temp dir, plus `jobs`."""
        if text is not None:
            self.config.write_text(text)
            return self.config
        sup = {
            "socket": self.socket,
            "pidfile": self.pidfile,
            "log": self.log,
            "log_dir": self.log_dir,
            "shutdown_timeout": "20s",
        }
        sup.update(supervisor or {})
        self.config.write_text(to_yaml({"supervisor": sup, "jobs": jobs}))
        return self.config

    def start(self, *extra, check=True, preexec_fn=None, env=None):
        """Runs `vigild -c CONFIG` (daemonizing); returns the CompletedProcess."""
        r = subprocess.run([VIGILD, "-c", str(self.config), *extra], capture_output=True,
                           text=True, timeout=60, preexec_fn=preexec_fn, env=env)
        if check:
            assert r.returncode == 0, f"vigild failed: {r.stderr}"
        return r

    def start_foreground(self, *extra, env=None):
        """Runs `vigild -f -c CONFIG` as a child of the test and waits for its socket."""
        self.proc = subprocess.Popen([VIGILD, "-f", "-c", str(self.config), *extra],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        wait_until(lambda: os.path.exists(self.socket) or self.proc.poll() is not None,
                   what="vigild -f to bind its socket")
        assert self.proc.poll() is None, self.proc.stderr.read()
        return self.proc

    def start_notified(self, *extra, env=None):
        """Runs `vigild -f` with $NOTIFY_SOCKET on a datagram socket this test binds, and
        waits for READY=1 there: the daemon really has the variable, so a job that does
        not see it shows that vigild keeps it to itself. Returns the readiness message."""
        notify = str(self.dir / "notify.sock")
        sink = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sink.bind(notify)
        sink.settimeout(30)  # a bound, not a pause: recv returns as soon as vigild sends
        try:
            env = dict(os.environ if env is None else env, NOTIFY_SOCKET=notify)
            proc = self.start_foreground(*extra, env=env)
            msg = sink.recv(4096).decode()
        finally:
            sink.close()
        assert "READY=1" in msg.split("\n"), msg
        assert f"MAINPID={proc.pid}" in msg.split("\n"), msg
        return msg

    def pid(self):
        try:
            return int(pathlib.Path(self.pidfile).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def client(self):
        return Client(self.socket)

    def call(self, cmd, **args):
        c = self.client()
        try:
            return c.call(cmd, **args)
        finally:
            c.close()

    def status(self, name=None):
        r = self.call("status", names=[name] if name else [])
        assert r["ok"], r
        if name:
            return r["result"][0]
        return {s["name"]: s for s in r["result"]}

    def wait_state(self, name, state, timeout=15.0):
        def check():
            s = self.status(name)
            return s if s["state"] == state else None
        return wait_until(check, timeout=timeout, what=f"{name} to be {state}")

    def ctl(self, *args, check=False, timeout=60, env=None):
        r = subprocess.run([VIGILCTL, "-s", self.socket, *args], capture_output=True, text=True,
                           timeout=timeout, env=env)
        if check:
            assert r.returncode == 0, f"vigilctl {args}: {r.returncode} {r.stderr}"
        return r

    def daemon_log(self):
        try:
            return pathlib.Path(self.log).read_text()
        except FileNotFoundError:
            return ""

    def stop(self, timeout=30.0):
        """SIGTERM to vigild; waits until it is gone."""
        pid = self.proc.pid if self.proc else self.pid()
        if pid is None or not pid_alive(pid):
            return
        os.kill(pid, signal.SIGTERM)
        if self.proc:
            self.proc.wait(timeout=timeout)
        else:
            wait_until(lambda: not pid_alive(pid), timeout=timeout, what="vigild to exit")


@pytest.fixture
def vigil(tmp_path):
    v = Vigil(tmp_path)
    yield v
    # Whatever a test did, leave no daemon and no job behind.
    pid = v.proc.pid if v.proc else v.pid()
    stopped_here = False
    if pid and pid_alive(pid):
        try:
            os.kill(pid, signal.SIGTERM)
            wait_until(lambda: not pid_alive(pid), timeout=30, what="vigild to exit at teardown")
            stopped_here = True
        except ProcessLookupError:
            pass
    if v.proc:
        rc = v.proc.wait(timeout=30)
        if stopped_here:
            assert rc == 0, f"vigild -f exited {rc} on SIGTERM at teardown"
    elif stopped_here and os.path.exists(v.log):
        # A vigild that crashes while it shuts down (a use after free in a fan-out to
        # clients the test has closed, say) would otherwise pass every test unnoticed.
        tail = v.daemon_log().rstrip("\n").rsplit("\n", 1)[-1]
        assert tail.endswith("vigild exited (0)"), \
            f"vigild did not end cleanly at teardown; its log ends with: {tail!r}"
