"""Who vigild and vigilctl trust with the socket: a user's runtime folder that another
user made first, and a server on the socket that vigilctl has no reason to believe.

These run the real binaries as throwaway users (setpriv), so they need root."""

import ast
import json
import os
import pathlib
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest

from conftest import VIGILCTL, VIGILD, pid_alive, wait_until

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None or shutil.which("useradd") is None,
    reason="needs root, setpriv and useradd to act as other users")


@pytest.fixture(scope="module", autouse=True)
def reachable_binaries():
    """The programs under test, where the throwaway users can run them: a build tree
    inside a private folder (a CI clone in a 0700 temp dir) is out of their reach, so
    vigild (with the guard beside it, where it looks for it) and vigilctl are copied to
    a folder anyone may enter."""
    global VIGILD, VIGILCTL
    built = (VIGILD, VIGILCTL)
    folder = tempfile.mkdtemp(prefix="vigil-trust-bin-")
    os.chmod(folder, 0o755)
    guard = os.path.join(os.path.dirname(VIGILD), "vigild-guard")
    for program in (VIGILD, guard, VIGILCTL):
        shutil.copy2(program, folder)
        os.chmod(os.path.join(folder, os.path.basename(program)), 0o755)
    VIGILD = os.path.join(folder, "vigild")
    VIGILCTL = os.path.join(folder, "vigilctl")
    try:
        yield
    finally:
        VIGILD, VIGILCTL = built
        shutil.rmtree(folder, ignore_errors=True)


def make_user(tag):
    """A throwaway user (no home, primary group nogroup); returns its pwd entry."""
    name = f"vt{os.getpid() % 100000}{tag}"
    subprocess.run(["useradd", "-M", "-N", "-g", "nogroup", "-s", "/usr/sbin/nologin", name],
                   check=True)
    return pwd.getpwnam(name)


def drop_user(entry):
    subprocess.run(["userdel", entry.pw_name], stderr=subprocess.DEVNULL)


def as_user(entry, argv, env, **kw):
    """Runs argv as `entry` with exactly `env` (no XDG_RUNTIME_DIR unless given)."""
    return subprocess.run(["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}",
                           "--clear-groups", "/usr/bin/env", "-i",
                           *[f"{k}={v}" for k, v in env.items()], *argv],
                          capture_output=True, text=True, timeout=60, **kw)


@pytest.fixture
def alice():
    """A user whose vigild and vigilctl use the default runtime folder /tmp/vigil-UID,
    with a config and a state folder of its own; the folder is removed afterwards, and a
    vigild left running there is stopped (by the pid in its pidfile)."""
    user = make_user("a")
    home = tempfile.mkdtemp(prefix="vigil-trust-")
    os.chown(home, user.pw_uid, user.pw_gid)
    os.chmod(home, 0o755)
    config = pathlib.Path(home) / "vigil.yaml"
    config.write_text("jobs: {}\n")
    runtime = f"/tmp/vigil-{user.pw_uid}"
    env = {"HOME": home, "XDG_STATE_HOME": f"{home}/state", "PATH": "/usr/bin:/bin"}
    try:
        yield user, config, runtime, env
    finally:
        try:
            pid = int(pathlib.Path(runtime, "vigild.pid").read_text())
            if pid_alive(pid):
                os.kill(pid, signal.SIGTERM)
                wait_until(lambda: not pid_alive(pid), what="alice's vigild to exit")
        except (OSError, ValueError):
            pass
        if os.path.islink(runtime) or os.path.isfile(runtime):
            os.unlink(runtime)
        else:
            shutil.rmtree(runtime, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
        drop_user(user)


def test_vigild_and_vigilctl_refuse_a_runtime_folder_another_user_made(alice):
    user, config, runtime, env = alice
    mallory = make_user("m")
    try:
        # Made first by someone else, open to alice so that it would work for her.
        os.mkdir(runtime)
        os.chown(runtime, mallory.pw_uid, mallory.pw_gid)
        os.chmod(runtime, 0o777)
        r = as_user(user, [VIGILD, "-c", str(config)], env)
        assert r.returncode == 1, r.stderr
        assert r.stderr == (
            f"vigild: cannot use the runtime directory: {runtime} is owned by uid "
            f"{mallory.pw_uid} ({mallory.pw_name}), not by you (uid {user.pw_uid} "
            f"({user.pw_name})): another user may have made it to take over the socket; "
            "remove it (as its owner or root), or set XDG_RUNTIME_DIR to a directory of "
            "your own\n")
        assert os.listdir(runtime) == []  # nothing was put there
        r = as_user(user, [VIGILCTL, "status"], env)
        assert r.returncode == 1
        assert r.stderr.startswith(
            f"vigilctl: refusing to use {runtime}/vigil.sock: {runtime} is owned by uid "
            f"{mallory.pw_uid} ({mallory.pw_name}), not by you"), r.stderr
    finally:
        drop_user(mallory)


def test_a_runtime_folder_others_may_write_or_a_symlink_is_refused(alice):
    user, config, runtime, env = alice
    # Alice's own, but writable by everyone: anyone could swap the socket in it.
    os.mkdir(runtime)
    os.chown(runtime, user.pw_uid, user.pw_gid)
    os.chmod(runtime, 0o777)
    r = as_user(user, [VIGILD, "-c", str(config)], env)
    assert r.returncode == 1
    assert r.stderr == (
        f"vigild: cannot use the runtime directory: {runtime} may be written by other users "
        f"(mode 0777), who could replace the socket in it: run chmod go-w {runtime}, or "
        "remove it\n")
    r = as_user(user, [VIGILCTL, "status"], env)
    assert r.returncode == 1
    assert f"{runtime} may be written by other users (mode 0777)" in r.stderr
    os.rmdir(runtime)
    # A symbolic link in its place, to a folder of alice's: still not the folder itself.
    target = tempfile.mkdtemp(prefix="vigil-trust-target-")
    try:
        os.chown(target, user.pw_uid, user.pw_gid)
        os.symlink(target, runtime)
        r = as_user(user, [VIGILD, "-c", str(config)], env)
        assert r.returncode == 1
        assert r.stderr.startswith(
            f"vigild: cannot use the runtime directory: {runtime} is a symbolic link (owned "
            "by uid 0 (root)), where a folder of your own belongs"), r.stderr
        assert os.listdir(target) == []
    finally:
        os.unlink(runtime)
        shutil.rmtree(target)


def test_a_missing_runtime_folder_is_made_private_and_used(alice):
    user, config, runtime, env = alice
    r = as_user(user, [VIGILD, "-c", str(config)], env)
    assert r.returncode == 0, r.stderr
    st = os.lstat(runtime)
    assert st.st_uid == user.pw_uid and st.st_mode & 0o7777 == 0o700
    assert os.path.exists(f"{runtime}/vigil.sock")
    r = as_user(user, [VIGILCTL, "status"], env)
    assert r.returncode == 0, r.stderr
    r = as_user(user, [VIGILCTL, "shutdown"], env)
    assert r.returncode == 0, r.stderr


# A server that anyone could start on a socket vigilctl is pointed at: it prints each
# request line it gets (so that the test sees whether vigilctl sent anything), and
# answers a `version` request as a vigild would.
FAKE_SERVER = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(8)
print("listening", flush=True)
while True:
    c, _ = s.accept()
    data = b""
    while not data.endswith(b"\n"):
        chunk = c.recv(65536)
        if not chunk:
            break
        data += chunk
    print("got " + repr(data), flush=True)
    if data:
        req = json.loads(data)
        c.sendall(json.dumps({"id": req.get("id"), "ok": True,
                              "result": {"version": "fake", "protocol": 1}}).encode() + b"\n")
    c.close()
"""


def test_vigilctl_sends_nothing_to_a_server_run_by_a_user_it_does_not_trust(tmp_path):
    mallory = make_user("s")
    folder = tempfile.mkdtemp(prefix="vigil-fake-")
    os.chown(folder, mallory.pw_uid, mallory.pw_gid)
    path = os.path.join(folder, "vigil.sock")
    server = subprocess.Popen(
        ["setpriv", f"--reuid={mallory.pw_uid}", f"--regid={mallory.pw_gid}", "--clear-groups",
         sys.executable, "-c", FAKE_SERVER, path],
        stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline() == "listening\n"
        # vigilctl runs as root here: it trusts root and itself, not mallory.
        env = {k: v for k, v in os.environ.items() if k != "VIGIL_SERVER_USER"}
        r = subprocess.run([VIGILCTL, "-s", path, "version"], capture_output=True, text=True,
                           timeout=30, env=env)
        assert r.returncode == 1
        assert r.stdout == ""
        assert r.stderr == (
            f"vigilctl: refusing to talk to {path}: it is served by uid {mallory.pw_uid} "
            f"({mallory.pw_name}), and vigilctl trusts only root and you (uid 0 (root)) "
            "(another user may be answering in vigild's place); if vigild runs as that user, "
            f"say so with --server-user {mallory.pw_name} or "
            f"VIGIL_SERVER_USER={mallory.pw_name}\n")
        # The server saw a connection that closed without a byte.
        assert server.stdout.readline() == "got b''\n"
        # Named as the expected server user (by name or uid, option or environment), it
        # is talked to.
        for args, extra in ((["--server-user", mallory.pw_name], {}),
                            ([], {"VIGIL_SERVER_USER": str(mallory.pw_uid)})):
            r = subprocess.run([VIGILCTL, "-s", path, *args, "version"], capture_output=True,
                               text=True, timeout=30, env=dict(env, **extra))
            assert r.returncode == 0, r.stderr
            assert "vigild fake (protocol 1)" in r.stdout
            got = ast.literal_eval(server.stdout.readline()[len("got "):])
            assert json.loads(got)["cmd"] == "version"
        r = subprocess.run([VIGILCTL, "-s", path, "--server-user", "no-such-user-xyz",
                            "version"], capture_output=True, text=True, timeout=30, env=env)
        assert r.returncode == 2
        assert r.stderr == ("vigilctl: --server-user: no user named 'no-such-user-xyz' "
                            "(expected a user name or a uid)\n")
    finally:
        server.kill()
        server.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)
        drop_user(mallory)
