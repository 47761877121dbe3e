"""Clients that go away at any moment: vigild serves on, loses no handle, and crashes on
nothing.

Every fan-out of vigild (state events to subscribers, live log lines to followers,
answers owed to waiters) sends to clients that may have gone: a send that fails is the
most ordinary thing a server sees. The single-request fuzzer cannot reach these paths;
the conversations below do. The test suite runs them on the sanitizer build too, where
a use after free is a report that fails the run.
"""

import json
import os
import random
import socket
import struct
import subprocess
import time

import pytest

from conftest import VIGILCTL, helper_cmd, pid_alive, sleeper, wait_until


def socket_count(pid):
    """vigild's open sockets (the listener, one per client; job pipes not counted), each
    once however many descriptors it has."""
    seen = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:
            continue
        if target.startswith("socket:"):
            seen.add(target)
    return len(seen)


def idle_sockets(pid):
    """Waits until vigild holds its listening socket alone (the connections of earlier
    requests closed); returns that count."""
    wait_until(lambda: socket_count(pid) == 1, what="vigild to hold only its listening socket")
    return 1


def test_a_state_change_after_an_events_client_went_away_is_survived(vigil):
    vigil.write_config({"a": sleeper(), "b": sleeper()})
    vigil.start()
    vigil.wait_state("a", "running")
    pid = vigil.pid()
    # Two subscribers go; a third stays and must still hear of the change.
    gone = []
    for _ in range(2):
        c = vigil.client()
        assert c.call("events")["ok"]
        gone.append(c)
    stays = vigil.client()
    assert stays.call("events")["ok"]
    for c in gone:
        c.close()
    r = vigil.call("restart", names=["a"])
    assert r["ok"], r
    assert pid_alive(pid), "vigild died on the first state change after a subscriber left"
    seen = []
    while "running" not in seen:
        msg = stays.read_message()
        if msg.get("event") == "state" and msg["job"] == "a":
            seen.append(msg["to"])
    assert seen[0] == "stopping", seen
    stays.close()
    assert vigil.status("b")["state"] == "running"


def test_a_log_line_after_a_follower_went_away_is_survived(vigil):
    vigil.write_config({"d": {"command": helper_cmd("drip", "0.02")}})
    vigil.start()
    vigil.wait_state("d", "running")
    pid = vigil.pid()
    followers = []
    for _ in range(3):
        c = vigil.client()
        c.send_line(json.dumps({"id": 1, "cmd": "logs",
                                "args": {"name": "d", "follow": True, "lines": 0}}).encode() + b"\n")
        wait_until(lambda: c.read_message().get("event") == "log", what="a live line")
        followers.append(c)
    for c in followers[:2]:
        c.close()
    # The one left keeps getting lines while the others' sends fail.
    for _ in range(5):
        wait_until(lambda: followers[2].read_message().get("event") == "log", what="a live line")
    assert pid_alive(pid)
    followers[2].close()


def test_a_follower_of_a_quiet_job_that_hangs_up_is_let_go(vigil):
    vigil.write_config({"quiet": sleeper()})
    vigil.start()
    vigil.wait_state("quiet", "running")
    pid = vigil.pid()
    settled = idle_sockets(pid)
    follow = json.dumps({"id": 1, "cmd": "logs",
                         "args": {"name": "quiet", "follow": True}}).encode() + b"\n"
    # Gone at once (vigilctl logs -f, then Ctrl-C) ...
    c = vigil.client()
    c.send_line(follow)
    assert c.read_message()["ok"]
    c.close()
    # ... and gone in two steps, as socat does: its input ends, and it exits later.
    h = vigil.client()
    h.send_line(follow)
    assert h.read_message()["ok"]
    h.sock.shutdown(socket.SHUT_WR)
    wait_until(lambda: socket_count(pid) == settled + 1, what="the first follower to be let go")
    # The half-closed one is still served: it is waiting, not gone.
    assert vigil.call("version")["ok"]
    h.close()
    wait_until(lambda: socket_count(pid) == settled, what='the second follower to be let go')


class Conversation:
    """One client of the stress test: a socket, a plan, and a moment to vanish."""

    def __init__(self, path, rng, jobs, followed):
        self.rng = rng
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.sock.setblocking(False)
        self.jobs = jobs
        self.followed = followed
        self.next_id = 1
        # How this one ends: after some messages, in the middle of a line, before the
        # reply, with a reset, or it stays to the end of the round.
        self.ending = rng.choice(["after", "mid_line", "before_reply", "reset", "stay"])
        self.budget = rng.randint(0, 6)  # requests before it ends

    def request(self):
        rng = self.rng
        kind = rng.choice(["events", "follow", "status", "restart", "signal", "logs",
                           "garbage", "version", "status_one"])
        rid = self.next_id
        self.next_id += 1
        if kind == "events":
            msg = {"id": rid, "cmd": "events"}
        elif kind == "follow":
            msg = {"id": rid, "cmd": "logs",
                   "args": {"name": rng.choice(self.followed), "follow": True, "lines": 3}}
        elif kind == "logs":
            msg = {"id": rid, "cmd": "logs", "args": {"name": rng.choice(self.followed)}}
        elif kind == "status":
            msg = {"id": rid, "cmd": "status"}
        elif kind == "status_one":
            msg = {"id": rid, "cmd": "status", "args": {"names": [rng.choice(self.jobs)]}}
        elif kind == "restart":
            msg = {"id": rid, "cmd": "restart",
                   "args": {"names": [rng.choice(self.jobs)], "no_wait": rng.random() < 0.5}}
        elif kind == "signal":
            msg = {"id": rid, "cmd": "signal",
                   "args": {"names": [rng.choice(self.jobs)], "signal": "CONT"}}
        elif kind == "version":
            msg = {"id": rid, "cmd": "version"}
        else:
            return b"{not json" + bytes(rng.randrange(256) for _ in range(rng.randint(0, 40))) + b"\n"
        return json.dumps(msg).encode() + b"\n"

    def step(self):
        """Does one thing; returns False once the client has gone."""
        try:
            self.drain()
            if self.budget > 0:
                self.budget -= 1
                self.sock.sendall(self.request())
                return True
            if self.ending == "stay":
                return True
            if self.ending == "mid_line":
                line = self.request()
                self.sock.sendall(line[: max(1, len(line) // 2)])
            elif self.ending == "before_reply":
                self.sock.sendall(self.request())
            elif self.ending == "reset":
                # Close with a reset rather than a FIN: vigild's next send fails at once.
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except (BlockingIOError, BrokenPipeError, ConnectionResetError):
            pass
        self.close()
        return False

    def drain(self):
        # Reads some of what came, not all: a slow reader is part of the mix.
        for _ in range(self.rng.randint(0, 3)):
            try:
                if not self.sock.recv(65536):
                    return
            except BlockingIOError:
                return

    def close(self):
        self.sock.close()


def test_clients_vanishing_at_random_moments_while_jobs_change_state(vigil):
    jobs = {f"s{i}": sleeper() for i in range(4)}
    jobs["flap"] = {"command": helper_cmd("exit", "1", "0.05"), "restart": "always",
                    "start_seconds": "0", "backoff": {"initial": "10ms", "max": "50ms"},
                    "start_retries": 1000000}
    jobs["drip1"] = {"command": helper_cmd("drip", "0.01")}
    jobs["drip2"] = {"command": helper_cmd("drip", "0.005"), "stderr": "stdout"}
    vigil.write_config(jobs)
    vigil.start()
    for n in ("s0", "s1", "s2", "s3", "drip1", "drip2"):
        vigil.wait_state(n, "running")
    pid = vigil.pid()
    settled = idle_sockets(pid)

    seed = int(os.environ.get("VIGIL_STRESS_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    names = list(jobs)
    clients = []
    started = time.monotonic()
    made = 0
    # Bounded in both count and time, so a slow (sanitized) build does fewer, not longer.
    while made < 3000 and time.monotonic() - started < 12:
        while len(clients) < 40:
            clients.append(Conversation(vigil.socket, rng, names, ["drip1", "drip2", "flap"]))
            made += 1
        clients = [c for c in clients if c.step()]
        if rng.random() < 0.02:
            # A reload in the middle of it all (nothing changes, yet every job is looked at).
            try:
                os.kill(pid, 1)
            except ProcessLookupError:
                pass
        assert pid_alive(pid), f"vigild died (seed {seed})"
    for c in clients:
        c.close()

    # vigild is whole: it answers, its jobs run, and every client's handle is closed again.
    status = vigil.status()
    for n in ("s0", "s1", "s2", "s3", "drip1", "drip2"):
        assert status[n]["state"] in ("running", "starting", "stopping", "stopped", "backoff"), status[n]
    wait_until(lambda: socket_count(pid) <= settled, timeout=20,
               what=f"vigild's sockets to come back to {settled} (seed {seed})")
    assert "internal" not in vigil.daemon_log(), f"seed {seed}"
    assert made >= 100, f"only {made} conversations ran"


def test_an_events_subscriber_hears_why_the_stream_ends_at_shutdown(vigil):
    vigil.write_config({"a": sleeper()})
    vigil.start()
    vigil.wait_state("a", "running")
    idle_sockets(vigil.pid())
    c = vigil.client()
    assert c.call("events")["ok"]
    ev = subprocess.Popen([VIGILCTL, "-s", vigil.socket, "events"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: socket_count(vigil.pid()) == 3, what="vigilctl events to subscribe")
        vigil.stop()
        assert ev.wait(timeout=20) == 0
        assert "vigild is shutting down" in ev.stderr.read()
    finally:
        if ev.poll() is None:
            ev.kill()
            ev.wait()
    m = c.read_message()
    while m.get("event") == "state":
        m = c.read_message()
    assert m == {"id": 1, "event": "end", "reason": "vigild is shutting down"}
    with pytest.raises(ConnectionError):
        c.read_message()
    c.close()
