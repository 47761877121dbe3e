"""One function per scenario. Each runs the same work against every peer and returns
plain numbers; report.py turns them into tables.

Times come from CLOCK_MONOTONIC in this process, and "running" from /proc: a job runs
once its process has exec'd the job's program (its comm is the program's name). The
peer's own status tool is asked afterwards, to check that it agrees.
"""
import os
import signal
import statistics
import subprocess
import time
from pathlib import Path

from . import procfs
from .peers import ENV_MARK, PEERS, Job, now

HERE = Path(__file__).resolve().parent.parent
WRITER = HERE / "writer.py"


def say(ctx, msg):
    print(f"  [{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def peer_order(rep):
    """The peers in turn, rotated each repetition so no peer always goes first."""
    k = rep % len(PEERS)
    return PEERS[k:] + PEERS[:k]


# --- watching jobs come up ---

class JobWatch:
    """Counts the jobs that have exec'd their program, reading /proc incrementally: a pid
    seen running is not read again, nor is a parent whose job was already seen."""

    def __init__(self, peer, comm="sleep"):
        self.peer = peer
        self.comm = comm
        self.running = set()
        self.done_parents = set()

    def count(self):
        multi = type(self.peer).__name__ == "S6"
        for parent in self.peer.job_parents():
            if parent in self.done_parents:
                continue
            for child in procfs.children(parent):
                if child in self.running:
                    continue
                if procfs.comm(child) == self.comm:
                    self.running.add(child)
                    if multi:
                        self.done_parents.add(parent)
        return len(self.running)


def wait_running(peer, n, timeout=180.0, comm="sleep"):
    """Seconds from the supervisor's start until n jobs run."""
    watch = JobWatch(peer, comm)
    deadline = now() + timeout
    while watch.count() < n:
        if not peer.alive():
            raise RuntimeError(f"{peer.name} exited early; see {peer.dir}/supervisor.out")
        if now() > deadline:
            raise RuntimeError(f"{peer.name}: only {len(watch.running)} of {n} jobs running "
                               f"after {timeout:.0f}s")
        time.sleep(0.002)
    return now() - peer.t_start, sorted(watch.running)


def supervisor_cpu(peer):
    return sum(procfs.run_seconds(p) for p in peer.supervisor_pids())


def supervisor_memory(peer):
    pids = peer.supervisor_pids()
    return procfs.rss_bytes(peer.pid), sum(procfs.pss_bytes(p) for p in pids)


def supervisor_switches(peer):
    return sum(procfs.context_switches(p) for p in peer.supervisor_pids())


def sleepers(n):
    return [Job(f"j{i:04d}", ["sleep", "3600"], start_seconds=0) for i in range(n)]


# --- timing a client command ---

_DEVNULL_ACTIONS = None


def time_command(argv):
    """Wall time of one run of argv (posix_spawn to exit), output to /dev/null."""
    global _DEVNULL_ACTIONS
    if _DEVNULL_ACTIONS is None:
        _DEVNULL_ACTIONS = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                            (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
                            (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0)]
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=_DEVNULL_ACTIONS)
    _, status = os.waitpid(pid, 0)
    dt = time.perf_counter() - t0
    return dt, os.waitstatus_to_exitcode(status)


def time_client(argv, runs):
    """Median of `runs` timed runs of argv, each followed by a timed /bin/true: the floor,
    what running any program costs at that moment."""
    time_command(argv)  # warm the page cache
    times, floor = [], []
    codes = set()
    for _ in range(runs):
        dt, code = time_command(argv)
        times.append(dt)
        codes.add(code)
        floor.append(time_command(["/bin/true"])[0])
    return {"median": statistics.median(times), "min": min(times), "max": max(times),
            "floor": statistics.median(floor), "runs": runs, "exit_codes": sorted(codes)}


def spawn_floor(ctx):
    """The harness's own cost to run a program: /bin/true timed like the clients."""
    return time_client(["/bin/true"], 50)


def bare_spawn(n, env):
    """The machine's floor for starting N jobs: a loop that does nothing but posix_spawn
    `sleep 3600` N times (glibc's posix_spawn returns once the child has exec'd) with
    environment `env`, and no supervisor, no pipe and no log. Returns the seconds it took
    and the CPU the N sleeps used to get there (from clone to now: they are asleep);
    the sleeps are killed."""
    pids = []
    t0 = time.monotonic()
    try:
        for _ in range(n):
            pids.append(os.posix_spawn("/bin/sleep", ["sleep", "3600"], env))
        dt = time.monotonic() - t0
        return dt, sum(procfs.run_seconds(p) for p in pids)
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        for pid in pids:
            os.waitpid(pid, 0)


def job_environment(ctx):
    """What every peer's jobs start from: the harness's environment and the run's mark."""
    return dict(os.environ, **{ENV_MARK: ctx.run_id})


# --- scenario: start N jobs (memory, CPU), then idle / status / stop on the same instance ---

def start_jobs(ctx, n, reps, idle_window=None, status_runs=None, stop=True):
    """Per peer and repetition: time to all running, memory and CPU once they run; on the
    first repetition also the idle wakeups and client status times; then stop all."""
    res = {p.name: {"start": [], "rss": [], "pss": [], "cpu": [], "job_cpu": [],
                    "own_status_ok": [], "stop": [], "exit": []} for p in PEERS}
    res["bare"] = {"start": [], "job_cpu": []}
    res["bare_no_env"] = {"start": [], "job_cpu": []}
    for rep in range(reps):
        for key, env, what in (("bare", job_environment(ctx), "the jobs' environment"),
                               ("bare_no_env", {}, "an empty environment")):
            t_bare, cpu_bare = bare_spawn(n, env)
            res[key]["start"].append(t_bare)
            res[key]["job_cpu"].append(cpu_bare)
            say(ctx, f"{'bare loop':12s} {n} sleeps spawned in {t_bare * 1000:7.1f} ms, "
                     f"{cpu_bare:.2f} s of their CPU (posix_spawn, no supervisor, {what})")
        for cls in peer_order(rep):
            r = res[cls.name]
            with cls(ctx, sleepers(n), label=f"{n}jobs") as peer:
                peer.start()
                t_all, job_pids = wait_running(peer, n)
                # What the job processes cost until they ran (from their fork or clone:
                # they sleep now), the supervisor's part before their exec included.
                job_cpu = sum(procfs.run_seconds(p) for p in job_pids)
                time.sleep(1.0)  # let the supervisor finish its own bookkeeping
                cpu = supervisor_cpu(peer)
                rss, pss = supervisor_memory(peer)
                r["start"].append(t_all)
                r["cpu"].append(cpu)
                r["job_cpu"].append(job_cpu)
                r["rss"].append(rss)
                r["pss"].append(pss)
                say(ctx, f"{cls.name:12s} {n} jobs running after {t_all * 1000:7.1f} ms; "
                         f"RSS {rss / 2**20:6.1f} MiB, PSS {pss / 2**20:6.1f} MiB, "
                         f"CPU {cpu:.2f} s, its jobs' {job_cpu:.2f} s")
                if rep == 0 and idle_window:
                    time.sleep(1.0)
                    s0 = supervisor_switches(peer)
                    time.sleep(idle_window)
                    s1 = supervisor_switches(peer)
                    r["idle_wakeups"] = (s1 - s0) / idle_window
                    r["idle_window"] = idle_window
                    say(ctx, f"{cls.name:12s} idle: {r['idle_wakeups']:.2f} wakeups/s over "
                             f"{idle_window:.0f} s")
                if rep == 0 and status_runs:
                    one_runs, all_runs = status_runs
                    r["status_one"] = time_client(peer.status_argv(sleepers(1)[0].name),
                                                  one_runs)
                    if all_runs:
                        r["status_all"] = time_client(peer.status_argv(), all_runs)
                    say(ctx, f"{cls.name:12s} status 1 job: {r['status_one']['median'] * 1000:.1f} ms"
                        + (f"; all {n}: {r['status_all']['median'] * 1000:.1f} ms"
                           if all_runs else ""))
                r["own_status_ok"].append(peer.all_running())
                if stop:
                    t_gone, t_exit = stop_all(peer, job_pids)
                    r["stop"].append(t_gone)
                    r["exit"].append(t_exit)
                    say(ctx, f"{cls.name:12s} stop all {n}: jobs gone after {t_gone * 1000:.1f} ms,"
                             f" supervisor exited after {t_exit * 1000:.1f} ms")
    return res


def stop_all(peer, job_pids):
    """SIGTERM to the supervisor; seconds until every job process has exited, and until
    the supervisor itself has."""
    left = set(job_pids)
    t0 = now()
    peer.request_stop()
    t_gone = None
    deadline = t0 + 60
    while now() < deadline:
        left = {p for p in left if procfs.is_live(p)}
        t = now()
        if not left and t_gone is None:
            t_gone = t - t0
        if t_gone is not None and not peer.alive():
            break
        time.sleep(0.002)
    peer.wait_exit(30)
    t_exit = now() - t0
    if t_gone is None:
        raise RuntimeError(f"{peer.name}: {len(left)} jobs still running 60 s after SIGTERM")
    return t_gone, t_exit


# --- scenario: respawn latency ---

POLL = 0.0001


def respawn(ctx, kills, spacing=1.2):
    """kill -9 the job; time until its replacement has been forked and until it has exec'd
    its program, polling /proc every 0.1 ms. Kills are `spacing` apart (s6-supervise never
    starts a service sooner than 1 s after its previous start)."""
    res = {}
    for cls in PEERS:
        job = Job("victim", ["sleep", "3600"], start_seconds=0, restart_always=True,
                  no_backoff=True)
        with cls(ctx, [job], label="respawn") as peer:
            peer.start()
            _, pids = wait_running(peer, 1)
            parent = peer.job_parents()[0]
            fork_t, exec_t = [], []
            time.sleep(spacing)
            for _ in range(kills):
                old = set(procfs.children(parent))
                victim = [p for p in old if procfs.comm(p) == "sleep"]
                if len(victim) != 1:
                    raise RuntimeError(f"{cls.name}: expected one running job, found {victim}")
                t0 = time.perf_counter()
                os.kill(victim[0], signal.SIGKILL)
                # The replacement is the new child that execs the program; a supervisor
                # may fork other children first (s6-supervise forks for ./finish).
                first_seen = {}
                t1 = t2 = None
                deadline = t0 + 10
                while t2 is None:
                    for c in procfs.children(parent):
                        if c in old:
                            continue
                        if c not in first_seen:
                            first_seen[c] = time.perf_counter()
                        if procfs.comm(c) == "sleep":
                            t2 = time.perf_counter()
                            t1 = first_seen[c]
                            break
                    if time.perf_counter() > deadline:
                        raise RuntimeError(f"{cls.name}: no replacement within 10 s")
                    if t2 is None:
                        time.sleep(POLL)  # not a busy loop: leave the CPUs to the supervisor
                fork_t.append(t1 - t0)
                exec_t.append(t2 - t0)
                time.sleep(spacing)
            res[cls.name] = {"fork_median": statistics.median(fork_t), "fork_max": max(fork_t),
                             "median": statistics.median(exec_t), "max": max(exec_t),
                             "kills": kills, "all": exec_t}
            say(ctx, f"{cls.name:12s} respawn: median {res[cls.name]['median'] * 1000:.2f} ms, "
                     f"max {res[cls.name]['max'] * 1000:.2f} ms (fork seen after "
                     f"{res[cls.name]['fork_median'] * 1000:.2f} ms)")
    return res


# --- scenario: log capture ---

END_MARK = b"<<vigil-bench-end>>\n"


def _ends_with_mark(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None  # not there (yet)
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            return False
        tail = os.pread(fd, 256, max(0, size - 256))
    finally:
        os.close(fd)
    # s6-log splits lines longer than its limit: compare without newlines.
    return tail.replace(b"\n", b"").endswith(END_MARK.rstrip(b"\n"))


def log_complete(files):
    """The newest file ends with the end mark, or it is empty (just rotated) and the one
    rotated last does."""
    cur = _ends_with_mark(files[0])
    if cur:
        return True
    if cur is False and len(files) > 1:
        try:
            empty = os.path.getsize(files[0]) == 0
        except OSError:
            empty = False
        return empty and bool(_ends_with_mark(files[1]))
    return False


def _read_ts(path):
    try:
        data = Path(path).read_text()
    except OSError:
        return None
    return int(data) / 1e9 if data else None


def _wait_log(files_fn, ts_path, proc_alive, timeout):
    deadline = now() + timeout
    t_start = None
    while True:
        if t_start is None:
            t_start = _read_ts(ts_path)
        if t_start is not None and log_complete(files_fn()):
            return now() - t_start
        if not proc_alive():
            raise RuntimeError("the process under test exited before the log was complete")
        if now() > deadline:
            raise RuntimeError(f"log not complete after {timeout:.0f} s")
        time.sleep(0.002)


def _clean(paths):
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for f in p.iterdir():
                f.unlink()
            p.rmdir()
        elif p.exists() or p.is_symlink():
            p.unlink()
    for f in Path(paths[0]).parent.glob(Path(paths[0]).name + ".*"):
        f.unlink()
    subprocess.run(["sync"])  # start each run with no dirty pages from the last one


def make_source(ctx, mode, size):
    """The writer's exact bytes in a file in memory (/dev/shm), for dd to copy."""
    shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(ctx.tmp)
    src = shm / f"vigil-bench-{ctx.run_id}-{mode}"
    with open(src, "wb") as f:
        subprocess.run([ctx.tools.python, str(WRITER), mode, str(size), str(src) + ".ts"],
                       stdout=f, check=True)
    Path(str(src) + ".ts").unlink()
    ctx.cleanup_files.append(src)
    return src


def run_dd(ctx, src):
    """The reference: dd copying the writer's bytes from memory straight into a file.
    One copy goes first untimed and is removed: on a virtual machine, memory the guest
    has not touched for a while (or gave back to the host) costs a fault on the host per
    page, and that, not the filesystem, would otherwise set dd's pace. The timed copy
    then writes into page cache the way a long-running writer does."""
    d = Path(ctx.tmp) / "dd"
    d.mkdir(exist_ok=True)
    out = d / "out"
    _clean([out])
    subprocess.run(["dd", f"if={src}", f"of={out}", "bs=256K", "status=none"], check=True)
    out.unlink()  # no sync: the pages it freed are the ones the timed copy gets
    t0 = now()
    subprocess.run(["dd", f"if={src}", f"of={out}", "bs=256K", "status=none"], check=True)
    dt = now() - t0
    if not log_complete([str(out)]):
        raise RuntimeError("dd: the copy does not end with the end mark")
    _clean([out])
    return dt


def run_pipe_dd(ctx, mode, size):
    """A minimal pipe reader: the writer piped into `dd of=FILE bs=256K` (default pipe size)."""
    d = Path(ctx.tmp) / "dd"
    d.mkdir(exist_ok=True)
    out, ts = d / "out", d / "ts"
    _clean([out, ts])
    cmd = f"{ctx.tools.python} {WRITER} {mode} {size} {ts} | dd of={out} bs=256K status=none"
    p = subprocess.Popen(["/bin/sh", "-c", cmd], start_new_session=True)
    try:
        dt = _wait_log(lambda: [out], ts, lambda: True, 600)
        p.wait(60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    _clean([out, ts])
    return dt


def run_peer_log(ctx, cls, mode, size, rotate):
    """One run of the writer under a peer: seconds from its first write until the log holds
    everything. Returns (seconds, sizes of the log files left)."""
    d = Path(ctx.tmp) / "logcap"
    d.mkdir(exist_ok=True)
    ts = d / f"{cls.name}.ts"
    stdout = d / f"{cls.name}.out.log"
    _clean([stdout, ts])
    job = Job("writer", ["/bin/sh", "-c",
                         f"{ctx.tools.python} {WRITER} {mode} {size} {ts}; exec sleep 3600"],
              start_seconds=0, stdout=str(stdout),
              log_max=rotate[0] if rotate else 0,
              log_backups=rotate[1] if rotate else None)
    with cls(ctx, [job], label=f"log-{mode}") as peer:
        peer.start()
        dt = _wait_log(lambda: [str(f) for f in peer.log_files(job)], ts, peer.alive, 900)
        files = sorted(stdout.parent.glob(stdout.name + "*")) if not stdout.is_dir() else \
            sorted(stdout.iterdir())
        sizes = [f.stat().st_size for f in files]
    _clean([stdout, ts])
    return dt, sizes


def log_capture(ctx, size, reps, modes=("lines", "bytes")):
    """MB/s through each peer, with and without rotation. The reference is dd copying the
    same bytes from memory straight into a file; a dd run goes before each peer's runs.
    `writer | dd` (a pipe and a minimal reader) is measured once per repetition."""
    rot = (100 * 2**20, 3)
    res = {"size": size, "rotation": rot}
    for mode in modes:
        m = res[mode] = {"dd": [], "pipe_dd": [], "peers": {}}
        src = make_source(ctx, mode, size)
        try:
            for rep in range(reps):
                m["pipe_dd"].append(size / run_pipe_dd(ctx, mode, size) / 1e6)
                say(ctx, f"{'writer | dd':12s} log {mode:5s}: {m['pipe_dd'][-1]:7.0f} MB/s")
                for cls in peer_order(rep):
                    m["dd"].append(size / run_dd(ctx, src) / 1e6)
                    for rotate in (None, rot):
                        key = f"{cls.name}/{'rot' if rotate else 'norot'}"
                        dt, sizes = run_peer_log(ctx, cls, mode, size, rotate)
                        entry = m["peers"].setdefault(key, {"mbps": [], "files": []})
                        entry["mbps"].append(size / dt / 1e6)
                        entry["files"] = sizes
                        say(ctx, f"{cls.name:12s} log {mode:5s} "
                                 f"{'rot 100MiB/3' if rotate else 'no rotation '}: "
                                 f"{size / dt / 1e6:7.0f} MB/s (dd {m['dd'][-1]:.0f} MB/s); "
                                 f"largest file {max(sizes) / 2**20:.0f} MiB in {len(sizes)} files")
        finally:
            src.unlink()
            ctx.cleanup_files.remove(src)
    return res


# --- scenario: crash loop ---

def crash_loop(ctx, window):
    """A job that exits 1 at once, with each peer's default backoff (and start_retries
    raised so that the loop lasts the window): CPU of the supervisor and number of starts
    in `window` seconds from the first start."""
    res = {}
    for cls in PEERS:
        d = Path(ctx.tmp) / "crash"
        d.mkdir(exist_ok=True)
        starts = d / f"{cls.name}.starts"
        if starts.exists():
            starts.unlink()
        job = Job("crasher", ["/bin/sh", "-c", f"echo start >> {starts}; exit 1"],
                  start_retries=1000)
        with cls(ctx, [job], label="crash") as peer:
            peer.start()
            deadline = now() + 30
            while not starts.exists():
                if now() > deadline or not peer.alive():
                    raise RuntimeError(f"{cls.name}: crash-loop job never started")
                time.sleep(0.001)
            cpu0 = supervisor_cpu(peer)
            time.sleep(window)
            cpu1 = supervisor_cpu(peer)
            n = len(starts.read_text().splitlines())
            res[cls.name] = {"cpu": cpu1 - cpu0, "starts": n, "window": window,
                             "cpu_total": cpu1}
            say(ctx, f"{cls.name:12s} crash loop: {n} starts, supervisor CPU {cpu1 - cpu0:.3f} s in "
                     f"{window:.0f} s (total since start {cpu1:.3f} s)")
    return res
