"""Job logs: captured through vigild, rotated, timestamped, followed, reopened, and
surviving a full disk."""

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import Client, assert_rss_below, helper_cmd, pid_alive, sleeper, wait_until

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")


def out_log(vigil, name):
    return pathlib.Path(vigil.log_dir) / f"{name}.out.log"


def text(path):
    """A log's text, or "" while it does not exist: a rotating log is missing for a moment
    between its rename and the new file."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def test_rotation_at_the_size_bound_keeps_n_backups_and_whole_lines(vigil):
    # 2000 lines of 100 bytes = 200 KB into files of at most 20 KiB, 3 backups.
    vigil.write_config({"w": {"command": helper_cmd("lines", 2000, 100),
                              "log_max_size": "20KiB", "log_backups": 3}})
    vigil.start()
    log = out_log(vigil, "w")
    wait_until(lambda: "line 00001999" in text(log), what="all lines")
    files = [log] + [pathlib.Path(f"{log}.{i}") for i in (1, 2, 3)]
    for f in files:
        assert f.exists(), f
        data = f.read_bytes()
        assert len(data) <= 20 * 1024
        assert data.endswith(b"\n")  # cut at line boundaries only
        assert all(len(l) == 99 for l in data.split(b"\n")[:-1])
    assert not pathlib.Path(f"{log}.4").exists()
    # Newest last: the numbers run on from .3 through .1 to the live file.
    numbers = [int(l.split()[1]) for f in reversed(files) for l in f.read_text().splitlines()]
    assert numbers == list(range(numbers[0], 2000))


def test_timestamps_prefix_every_line_and_partial_and_long_lines_survive(vigil):
    vigil.write_config({"t": {"command": helper_cmd("partial", 300_000), "log_timestamps": True}})
    vigil.start()
    log = out_log(vigil, "t")
    wait_until(lambda: log.exists() and log.read_bytes().count(b"\n") == 2, what="two lines")
    lines = log.read_text().splitlines()
    assert all(STAMP.match(l) for l in lines), lines[0][:80]
    # One line written in two pieces: one stamp, at its start.
    assert STAMP.sub("", lines[0]) == "first half second half"
    assert STAMP.sub("", lines[1]) == "L" * 300_000
    # What the file holds and what logs -n returns are the same bytes.
    r = vigil.call("logs", name="t", lines=2)
    assert r["result"]["text"] == log.read_text()


def test_logs_n_reads_across_a_rotation(vigil):
    vigil.write_config({"w": {"command": helper_cmd("lines", 30, 50), "log_max_size": 1000,
                              "log_backups": 2}})
    vigil.start()
    log = out_log(vigil, "w")
    wait_until(lambda: "line 00000029" in text(log), what="30 lines")
    live = log.read_text().splitlines()
    assert len(live) < 25  # the live file alone is short of what is asked
    r = vigil.call("logs", name="w", lines=25)
    got = r["result"]["text"].splitlines()
    assert len(got) == 25
    assert [int(l.split()[1]) for l in got] == list(range(5, 30))
    r = vigil.ctl("logs", "-n", "3", "w", check=True)
    assert [int(l.split()[1]) for l in r.stdout.splitlines()] == [27, 28, 29]


def test_two_followers_see_new_lines(vigil):
    vigil.write_config({"d": {"command": helper_cmd("drip", 0.05)}})
    vigil.start()
    followers = []
    for _ in range(2):
        c = vigil.client()
        r = c.call("logs", name="d", lines=0, follow=True)
        assert r["ok"], r
        followers.append(c)
    for c in followers:
        seen = ""
        while seen.count("\n") < 3:
            m = c.read_message()
            assert m["event"] == "log" and m["name"] == "d" and m["stream"] == "stdout"
            seen += m["text"]
        assert re.match(r"drip \d+\n", seen)
        c.close()
    assert vigil.call("version")["ok"]


def test_logs_tail_then_follow_sees_every_line_once_in_order(vigil):
    # A job writing numbered lines flat out: what the tail holds and what the follow
    # streams after it must join without a gap or a repeat, though output is on its way
    # to the disk while the tail is read.
    vigil.write_config({"n": {"command": "i=0; while :; do echo \"n $i\"; i=$((i+1)); done",
                              "log_max_size": 0}})
    vigil.start()
    log = out_log(vigil, "n")
    wait_until(lambda: log.exists() and log.stat().st_size > 100_000, what="output")
    c = vigil.client()
    r = c.call("logs", name="n", lines=100, follow=True)
    assert r["ok"], r
    seen = r["result"]["text"]
    assert seen.count("\n") == 100
    while seen.count("\n") < 20_000:
        m = c.read_message()
        assert m["event"] == "log", m
        seen += m["text"]
    c.close()
    numbers = [int(l.split()[1]) for l in seen.splitlines()[:20_000]]
    assert numbers == list(range(numbers[0], numbers[0] + 20_000))


def test_a_huge_logs_request_is_bounded_and_does_not_hold_up_others(vigil):
    # 30 MB of log; a request for a billion lines gets the last 1 MiB, from a line start,
    # and meanwhile other clients are answered at once.
    vigil.write_config({"big": {"command": helper_cmd("lines", 300_000, 100),
                                "log_max_size": 0}})
    vigil.start()
    log = out_log(vigil, "big")
    wait_until(lambda: "line 00299999" in text(log), timeout=60, what="30 MB of output")
    greedy = [vigil.client() for _ in range(4)]
    for i, c in enumerate(greedy):
        c.send_line(json.dumps({"id": i, "cmd": "logs",
                                "args": {"name": "big", "lines": 1_000_000_000}}).encode() + b"\n")
    t0 = time.monotonic()
    assert vigil.call("status", names=["big"])["ok"]
    assert time.monotonic() - t0 < 1.0
    for c in greedy:
        m = c.read_message()
        assert m["ok"], m
        res = m["result"]
        assert res["truncated"] is True
        assert 1_000_000 < len(res["text"].encode()) <= 1024 * 1024
        assert res["text"].startswith("line ")
        assert res["text"].endswith("line 00299999 " + "x" * 85 + "\n")
        c.close()
    # A request that fits is not marked.
    r = vigil.call("logs", name="big", lines=3)
    assert "truncated" not in r["result"] and r["result"]["text"].count("\n") == 3


def test_vigilctl_logs_follow_ends_cleanly_on_a_closed_pipe(vigil):
    vigil.write_config({"d": {"command": helper_cmd("drip", 0.02)}})
    vigil.start()
    r = subprocess.run(f"'{vigil_ctl_path()}' -s '{vigil.socket}' logs -f d | head -n 5",
                       shell=True, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0
    assert len(r.stdout.splitlines()) == 5
    assert r.stderr == ""


def test_a_follow_ends_when_a_reload_removes_the_job(vigil):
    # A job that writes a line and then one each 20 ms: vigilctl logs -f follows it.
    jobs = {"web": {"command": helper_cmd("drip", 0.02), "log_max_size": 0}, "other": sleeper()}
    vigil.write_config(jobs)
    vigil.start()
    log = out_log(vigil, "web")
    wait_until(lambda: text(log).count("\n") >= 3, what="output")
    seen = vigil.dir / "followed.txt"
    with open(seen, "w") as out:
        f = subprocess.Popen([vigil_ctl_path(), "-s", vigil.socket, "logs", "-f", "-n",
                              "1000000", "web"], stdout=out, stderr=subprocess.PIPE, text=True)
    try:
        before = text(log).count("\n")
        wait_until(lambda: seen.read_text().count("\n") > before, what="the follow to be live")
        del jobs["web"]
        vigil.write_config(jobs)
        r = vigil.ctl("reload", check=True)
        assert "removed: web" in r.stdout and "unchanged: 1 job" in r.stdout
        # vigilctl ends by itself, with a note and status 0: it does not hang.
        assert f.wait(timeout=20) == 0
        assert f.stderr.read() == ("vigilctl: job web was removed by a reload; "
                                   "nothing more follows\n")
    finally:
        if f.poll() is None:
            f.kill()
            f.wait()
    # Everything the job wrote reached the follower before the end: the tail and the
    # follow together are the whole log.
    assert seen.read_text() == log.read_text()


def test_a_follower_of_a_removed_job_gets_an_end_event_and_the_connection_goes_on(vigil):
    jobs = {"web": sleeper(), "idle": {"command": helper_cmd("sleep"), "autostart": False}}
    vigil.write_config(jobs)
    vigil.start()
    vigil.wait_state("web", "running")
    c = vigil.client()
    r = c.call("logs", name="web", lines=0, follow=True)
    assert r["ok"], r
    vigil.write_config({"idle": jobs["idle"]})
    assert vigil.call("reload")["ok"]
    m = c.read_message()
    assert m == {"id": 1, "event": "end", "name": "web",
                 "reason": "job web was removed by a reload"}
    # The stream is over, the connection is not.
    assert c.call("version")["ok"]
    c.close()

    # A job that has no process leaves at once, maybe before the tail a follower asked
    # for just before is read: the end then comes after that answer, never before it.
    vigil.write_config({"idle": jobs["idle"], "later": sleeper()})
    assert vigil.call("reload")["ok"]
    vigil.write_config({"later": sleeper()})
    c = vigil.client()
    c.send_line(b'{"id": "f", "cmd": "logs", "args": {"name": "idle", "follow": true}}\n'
                b'{"id": "r", "cmd": "reload"}\n')
    got = [c.read_message() for _ in range(3)]
    by_id = [(m["id"], m.get("event")) for m in got]
    assert by_id.index(("f", None)) < by_id.index(("f", "end")), got
    assert ("r", None) in by_id, got
    assert got[by_id.index(("f", "end"))]["reason"] == "job idle was removed by a reload"
    assert c.call("version")["ok"]
    c.close()


def test_a_follow_ends_when_vigild_shuts_down(vigil):
    vigil.write_config({"web": {"command": helper_cmd("drip", 0.02)}})
    vigil.start()
    log = out_log(vigil, "web")
    wait_until(lambda: text(log).count("\n") >= 3, what="output")
    c = vigil.client()
    assert c.call("logs", name="web", lines=0, follow=True)["ok"]
    f = subprocess.Popen([vigil_ctl_path(), "-s", vigil.socket, "logs", "-f", "web"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Live once its first line of output came through.
        assert f.stdout.readline().startswith("drip ")
        vigil.stop()
        assert f.wait(timeout=20) == 0
        assert f.stderr.read() == "vigilctl: vigild is shutting down; nothing more follows\n"
    finally:
        if f.poll() is None:
            f.kill()
            f.wait()
    # Over the protocol: log events, then the end, then the connection closes.
    while True:
        m = c.read_message()
        if m["event"] != "log":
            break
    assert m == {"id": 1, "event": "end", "name": "web", "reason": "vigild is shutting down"}
    with pytest.raises(ConnectionError):
        c.read_message()
    c.close()


def vigil_ctl_path():
    from conftest import VIGILCTL
    return VIGILCTL


def test_reopen_after_the_file_was_moved(vigil):
    vigil.write_config({"d": {"command": helper_cmd("drip", 0.05)}})
    vigil.start()
    log = out_log(vigil, "d")
    wait_until(lambda: log.exists() and log.stat().st_size > 0, what="output")
    moved = pathlib.Path(f"{log}.moved")
    os.rename(log, moved)
    assert vigil.ctl("reopen-logs").returncode == 0
    # The answer comes once the logs are reopened: the new file is there already, and
    # the moved one gets nothing more (logrotate may compress it at once).
    assert log.exists()
    size = moved.stat().st_size
    wait_until(lambda: text(log).count("drip") >= 3, what="output in the new file")
    assert moved.stat().st_size == size
    # And by signal.
    os.rename(log, moved)
    os.kill(vigil.pid(), signal.SIGUSR1)
    wait_until(lambda: log.exists() and "drip" in log.read_text(), what="a new file after USR1")


@pytest.mark.skipif(shutil.which("logrotate") is None, reason="logrotate is not installed")
def test_real_logrotate_with_postrotate_reopen(vigil, tmp_path):
    from conftest import VIGILCTL
    vigil.write_config({"d": {"command": helper_cmd("drip", 0.02)}})
    vigil.start()
    log = out_log(vigil, "d")
    wait_until(lambda: log.exists() and log.stat().st_size > 0, what="output")
    conf = tmp_path / "logrotate.conf"
    conf.write_text(f"""{vigil.log_dir}/*.log {{
    rotate 2
    missingok
    notifempty
    sharedscripts
    postrotate
        {VIGILCTL} -s {vigil.socket} reopen-logs >/dev/null
    endscript
}}
""")
    r = subprocess.run(["logrotate", "-f", "-s", str(tmp_path / "state"), str(conf)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    rotated = pathlib.Path(f"{log}.1")
    assert rotated.exists()
    wait_until(lambda: log.exists() and "drip" in log.read_text(), what="writing the new file")
    size = rotated.stat().st_size
    time.sleep(0.3)
    assert rotated.stat().st_size == size, "the rotated file must not grow after reopen"


def test_a_full_disk_keeps_the_job_running_and_reports_dropped_bytes(vigil):
    mnt = tempfile.mkdtemp(prefix="vigil-tmpfs-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt],
                       capture_output=True, text=True)
    if r.returncode != 0:
        os.rmdir(mnt)
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        vigil.write_config({"w": {"command": helper_cmd("drip", 0.01),
                                  "stdout": f"{mnt}/w.out.log", "log_max_size": 0}})
        vigil.start()
        vigil.wait_state("w", "running")
        filler = pathlib.Path(mnt) / "filler"
        with open(filler, "wb") as f:
            try:
                f.write(b"\0" * (2 * 1024 * 1024))
            except OSError:
                pass  # full: that is the point
        wait_until(lambda: vigil.status("w")["log_error"], timeout=20, what="a log error")
        s = vigil.status("w")
        assert s["log_error"].startswith(f"jobs.w.stdout: cannot write {mnt}/w.out.log: No space "
                                         "left on device ("), s["log_error"]
        assert s["state"] == "running"
        pid = s["pid"]
        # The table says so too, in the job's note.
        table = vigil.ctl("status", "w").stdout
        assert re.search(r"^w\s+running\s.*log: jobs\.w\.stdout: cannot write .*No space left on "
                         r"device", table, re.M), table
        filler.unlink()
        log = pathlib.Path(mnt) / "w.out.log"
        wait_until(lambda: "bytes dropped" in log.read_text(), timeout=20,
                   what="the dropped-bytes line")
        # On a line of its own, whatever line the disk filled up in the middle of.
        assert re.search(r"^\[vigil: \d+ bytes dropped: cannot write .*No space left on device\]$",
                         log.read_text(), re.M), log.read_text()[-2000:]
        wait_until(lambda: vigil.status("w")["log_error"] is None, what="the error to clear")
        assert vigil.status("w")["pid"] == pid  # the job never stopped
        assert "output is dropped" in vigil.daemon_log()
        assert "writing its log works again" in vigil.daemon_log()
    finally:
        vigil.stop()
        subprocess.run(["umount", "-l", mnt])
        os.rmdir(mnt)


def test_a_flooding_job_does_not_slow_down_others(vigil):
    vigil.write_config({
        "flood": {"command": helper_cmd("flood"), "log_max_size": 0},
        "other": {"command": helper_cmd("sleep"), "autostart": False, "start_seconds": "0.2s"},
    })
    vigil.start()
    log = out_log(vigil, "flood")
    wait_until(lambda: log.exists() and log.stat().st_size > 1_000_000, what="the flood")
    t0 = time.monotonic()
    for _ in range(20):
        assert vigil.call("status", names=["flood"])["ok"]
    assert time.monotonic() - t0 < 3.0
    t0 = time.monotonic()
    r = vigil.call("start", names=["other"])
    assert r["ok"], r
    assert time.monotonic() - t0 < 3.0
    # Capture never stalls: far more than any buffer passes through.
    wait_until(lambda: log.stat().st_size > 64 * 1024 * 1024, timeout=60,
               what="64 MiB of output to reach the log")
    # Memory stays bounded however much it writes.
    assert_rss_below(vigil.pid(), 64 * 1024, "while a job floods")


def test_rotation_at_a_bound_of_many_reads_with_lines_and_without_newlines(vigil):
    # A bound of many 256 KiB reads: where a file is cut depends on lines that began reads
    # ago, and output with no newline at all is cut exactly at the bound.
    vigil.write_config({
        "l": {"command": helper_cmd("lines", 40_000, 100), "log_max_size": "1MiB",
              "log_backups": 5},
        "z": {"command": helper_cmd("bytes", 3 * 2**20 + 1000), "log_max_size": "1MiB",
              "log_backups": 5},
    })
    vigil.start()
    lines, zs = out_log(vigil, "l"), out_log(vigil, "z")
    wait_until(lambda: "line 00039999" in text(lines),
               what="all lines")
    files = [pathlib.Path(f"{lines}.{i}") for i in (3, 2, 1)] + [lines]
    for f in files:
        data = f.read_bytes()
        assert len(data) < 2**20 + 100  # at most the bound, or past it by less than a line
        assert data.endswith(b"\n")  # cut at line ends only
    numbers = [int(l.split()[1]) for f in files for l in f.read_text().splitlines()]
    assert numbers == list(range(40_000))
    # No newline at all: the files are cut exactly at the bound.
    wait_until(lambda: sum(f.stat().st_size for f in zs.parent.glob("z.out.log*"))
               == 3 * 2**20 + 1000, what="all bytes")
    assert [pathlib.Path(f"{zs}.{i}").stat().st_size for i in (3, 2, 1)] == [2**20] * 3
    assert zs.stat().st_size == 1000


def test_a_follower_of_a_flooding_job_gets_whole_lines_and_the_log_stays_whole(vigil):
    # Followers come and go (or are dropped for not keeping up) while a job floods: what
    # each gets is the job's lines, and the log file is too.
    vigil.write_config({"flood": {"command": helper_cmd("flood"), "log_max_size": "2MiB",
                                  "log_backups": 2}})
    vigil.start()
    log = out_log(vigil, "flood")
    wait_until(lambda: (log_size(log) or 0) > 100_000, what="the flood")
    line = "flood " * 1000 + "\n"
    for _ in range(3):
        c = vigil.client()
        assert c.call("logs", name="flood", lines=0, follow=True)["ok"]
        seen = ""
        try:
            while seen.count("\n") < 20:
                m = c.read_message()
                assert m["event"] == "log" and m["stream"] == "stdout"
                seen += m["text"]
        except ConnectionError:
            pass  # dropped for not keeping up: what it got must still be whole
        c.close()
        whole = seen[seen.index("\n") + 1:seen.rindex("\n") + 1]  # it joined mid-line
        assert whole.count("\n") >= 5
        assert whole == line * whole.count("\n")
        size = log_size(log)
        wait_until(lambda: log_size(log) not in (size, None), what="the log to go on")
    assert_rss_below(vigil.pid(), 64 * 1024, "while a job floods")
    assert vigil.call("stop", names=["flood"])["ok"]
    vigil.wait_state("flood", "stopped")
    files = [pathlib.Path(f"{log}.{i}") for i in (2, 1)] + [log]
    # The log writer may still be writing (and rotating) what the job wrote before it
    # stopped: read once the files hold still.
    last = [None]

    def settled():
        now = [log_size(f) for f in files]
        same, last[0] = now == last[0], now
        return same
    wait_until(settled, interval=0.2, what="the log files to stop changing")
    text = "".join(f.read_text() for f in files if f.exists())
    text = text[:text.rindex("\n") + 1]  # the job was stopped mid-line
    assert text == line * text.count("\n")


def log_size(path):
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None  # between a rotation's rename and the new file


def pipe_size(pid, fd):
    """The capacity of the pipe a job has as descriptor `fd`, opened anew through /proc."""
    import fcntl
    end = os.open(f"/proc/{pid}/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK)
    try:
        return fcntl.fcntl(end, fcntl.F_GETPIPE_SZ)
    finally:
        os.close(end)


def test_a_job_pipe_grows_to_1_mib_only_once_the_job_fills_the_default_one(vigil):
    # The default pipe (64 KiB) for every job; 1 MiB, for fewer wakeups, for a job whose
    # output filled it. A thousand quiet jobs should not each cost a 1 MiB ring.
    go = vigil.dir / "go"
    vigil.write_config({
        "quiet": {"command": ["/bin/sh", "-c", "echo hello; exec sleep 3600"]},
        "loud": {"command": ["/bin/sh", "-c",
                             f"while [ ! -e {go} ]; do sleep 0.01; done; "
                             "head -c 5000000 /dev/zero; echo; echo done; exec sleep 3600"]},
    })
    vigil.start()
    loud_pid = vigil.wait_state("loud", "running")["pid"]
    # The default pipe is seen full for certain: vigild is held still while loud fills
    # it (a vigild that keeps up with the writer would never find it so).
    import fcntl
    import termios
    os.kill(vigil.pid(), signal.SIGSTOP)
    try:
        go.touch()
        probe = os.open(f"/proc/{loud_pid}/fd/1", os.O_RDONLY | os.O_NONBLOCK)
        try:
            def queued():
                buf = bytearray(4)
                fcntl.ioctl(probe, termios.FIONREAD, buf)
                return int.from_bytes(buf, "little")
            wait_until(lambda: queued() >= 64 * 1024, what="loud's pipe to be full")
        finally:
            os.close(probe)
    finally:
        os.kill(vigil.pid(), signal.SIGCONT)
    out = pathlib.Path(vigil.log_dir)
    wait_until(lambda: (out / "loud.out.log").exists()
               and (out / "loud.out.log").stat().st_size == 5000006, timeout=30,
               what="all of loud's output in its log")
    wait_until(lambda: (out / "quiet.out.log").exists()
               and (out / "quiet.out.log").read_text() == "hello\n", what="quiet's line")
    loud = vigil.wait_state("loud", "running")["pid"]
    quiet = vigil.wait_state("quiet", "running")["pid"]
    assert pipe_size(loud, 1) == 1024 * 1024
    assert pipe_size(quiet, 1) == 64 * 1024
    assert pipe_size(loud, 2) == 64 * 1024  # its stderr, which wrote nothing
