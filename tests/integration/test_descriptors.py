"""vigild's descriptor budget: under a hard RLIMIT_NOFILE that cannot be raised, jobs that
merge stderr into stdout hold one descriptor each in vigild, log files beyond what the
limit leaves are closed and reopened on their next write without losing a line, and
`vigild --check`, start-up and reload say when the jobs cannot fit, with the numbers.

vigild raises its soft limit to the hard one; each test sets both (as a container without
CAP_SYS_RESOURCE would have them) in the process that starts vigild.
"""

import os
import pathlib
import resource
import subprocess

from conftest import VIGILD, wait_until

LIMIT = 1024
# fd_budget.h: vigild's own descriptors, room for clients, and 64 spawns in flight with
# four descriptors each; at least 64 log files open.
OVERHEAD = 32 + 64 + 64 * 4
MIN_OPEN_LOGS = 64


def low_limit():
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


def open_logs(pid, log_dir):
    """How many files under log_dir vigild has open."""
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(log_dir + "/"):
                n += 1
        except OSError:
            pass
    return n


def all_running(vigil, n):
    states = [s["state"] for s in vigil.status().values()]
    return len(states) == n and all(s == "running" for s in states)


def test_jobs_that_fit_with_one_descriptor_each_all_run_under_a_low_hard_limit(vigil):
    # 550 jobs, each writing to stdout and stderr: with a pipe and a log file each they
    # would need 1100 descriptors and more. Merged, with log files closed once the limit
    # leaves no room for them, they need about 550 + OVERHEAD + 64.
    jobs = 550
    assert 2 * jobs > LIMIT >= jobs + OVERHEAD + MIN_OPEN_LOGS
    names = [f"j{i:03d}" for i in range(jobs)]
    vigil.write_config({n: {"command": f"echo {n} out; echo {n} err >&2; exec sleep 3600",
                            "stderr": "stdout", "start_seconds": 0}
                        for n in names})
    r = vigil.start(preexec_fn=low_limit)
    assert r.stderr == ""  # they fit: no warning
    wait_until(lambda: all_running(vigil, jobs), timeout=60, what=f"{jobs} jobs running")
    logs = pathlib.Path(vigil.log_dir)

    def all_written():
        return all((logs / f"{n}.out.log").exists() and
                   (logs / f"{n}.out.log").read_text() == f"{n} out\n{n} err\n" for n in names)
    wait_until(all_written, timeout=30, what="every job's two lines in its log")
    assert sorted(p.name for p in logs.iterdir()) == sorted(f"{n}.out.log" for n in names)
    # Still all running, and never a spawn that failed for want of a descriptor.
    assert all_running(vigil, jobs)
    log = vigil.daemon_log()
    assert "Too many open files" not in log
    assert "descriptors" not in log
    assert open_logs(vigil.pid(), vigil.log_dir) <= LIMIT - jobs - OVERHEAD


def test_log_files_beyond_the_bound_are_closed_and_reopened_with_every_line_in_its_file(
        vigil, tmp_path):
    # 400 merged jobs leave room for 1024 - 400 - OVERHEAD = 272 open log files. Each job
    # writes a line and half of one, then waits on a FIFO; once all have written, every
    # job finishes its line and writes more: the files closed meanwhile must be reopened,
    # each job's output ending up whole, in order, in its own file.
    jobs = 400
    bound = LIMIT - jobs - OVERHEAD
    assert bound < jobs
    fifo = tmp_path / "go"
    os.mkfifo(fifo)
    names = [f"j{i:03d}" for i in range(jobs)]
    vigil.write_config({n: {"command": f"echo {n} one; printf '{n} part-'; read x < {fifo}; "
                                       f"echo two; echo {n} three >&2; exec sleep 3600",
                            "stderr": "stdout", "start_seconds": 0}
                        for n in names})
    vigil.start(preexec_fn=low_limit)
    logs = pathlib.Path(vigil.log_dir)

    def written(n, text):
        p = logs / f"{n}.out.log"
        return p.exists() and p.read_text() == text
    wait_until(lambda: all(written(n, f"{n} one\n{n} part-") for n in names), timeout=60,
               what="every job's first line and a half")
    pid = vigil.pid()
    assert open_logs(pid, vigil.log_dir) <= bound
    # Held open read-write (so this open does not wait for a reader) until every job has
    # read its line: a job that opens the FIFO late still finds one.
    go = os.open(fifo, os.O_RDWR)
    try:
        os.write(go, b"\n" * jobs)
        wait_until(lambda: all(written(n, f"{n} one\n{n} part-two\n{n} three\n") for n in names),
                   timeout=60, what="every job's output whole in its own file")
    finally:
        os.close(go)
    assert open_logs(pid, vigil.log_dir) <= bound
    assert all_running(vigil, jobs)
    assert "Too many open files" not in vigil.daemon_log()


def budget_config(vigil, jobs, merged):
    vigil.write_config({f"j{i:03d}": {"command": ["sleep", "3600"], "autostart": False,
                                      **({"stderr": "stdout"} if merged else {})}
                        for i in range(jobs)})


def test_check_start_up_and_reload_say_when_the_jobs_cannot_fit(vigil):
    # 400 jobs with stderr apart: 800 pipes, OVERHEAD, 64 log files.
    warning = ("400 jobs need about 1216 descriptors; the limit is 1024: raise LimitNOFILE "
               "(ulimit -Hn) or merge stderr (stderr: stdout) in the 400 jobs that log it apart")
    budget_config(vigil, 400, merged=False)
    r = subprocess.run([VIGILD, "--check", "-c", str(vigil.config)], capture_output=True,
                       text=True, timeout=60, preexec_fn=low_limit)
    # A warning, not an error: the config is valid, and the limit is the environment's.
    assert r.returncode == 0, r.stderr
    assert r.stderr == f"vigild: warning: {warning}\n"
    assert r.stdout == f"{vigil.config}: ok (400 jobs, 1 file)\n"

    # Merged, they fit: not a word.
    budget_config(vigil, 400, merged=True)
    r = subprocess.run([VIGILD, "--check", "-c", str(vigil.config)], capture_output=True,
                       text=True, timeout=60, preexec_fn=low_limit)
    assert (r.returncode, r.stderr) == (0, "")

    # Start-up does not refuse (jobs that do not autostart may never run at once): the
    # one who starts vigild sees the warning, and so does its log.
    budget_config(vigil, 400, merged=False)
    r = vigil.start(preexec_fn=low_limit)
    assert r.stderr == f"vigild: warning: {warning}\n"
    wait_until(lambda: f"warn: {warning}\n" in vigil.daemon_log(), what="the warning in the log")
    assert vigil.ctl("status").returncode == 3  # serving; the jobs are stopped

    # A reload that makes them fit says nothing; one that adds too many says so again.
    budget_config(vigil, 400, merged=True)
    assert vigil.call("reload")["ok"]
    budget_config(vigil, 450, merged=True)
    assert vigil.call("reload")["ok"]
    assert vigil.daemon_log().count("descriptors") == 1
    budget_config(vigil, 350, merged=False)
    assert vigil.call("reload")["ok"]
    wait_until(lambda: ("warn: reload: 350 jobs need about 1116 descriptors; the limit is 1024: "
                        "raise LimitNOFILE (ulimit -Hn) or merge stderr (stderr: stdout) in the "
                        "350 jobs that log it apart\n") in vigil.daemon_log(),
               what="the reload's warning in the log")
    assert vigil.daemon_log().count("descriptors") == 2
