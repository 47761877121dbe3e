"""The three supervisors behind one small interface.

A Peer is one running instance of a supervisor with its own config, socket and logs in a
private folder. Every instance is started in its own session with a marker variable in
its environment; the jobs inherit it, so whatever is left over can always be found and
killed (close(), and sweep() at the end of the run).

Job options are given once, in generic terms (Job), and each peer writes its own
equivalent. Anything a Job leaves as None is that peer's default.
"""
import json
import os
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from . import procfs

ENV_MARK = "VIGIL_BENCH_RUN"


@dataclass
class Job:
    name: str
    argv: List[str]
    start_seconds: Optional[float] = None   # None: the peer's default
    restart_always: bool = False             # restart whatever the exit
    no_backoff: bool = False                 # restart a crashed job at once
    start_retries: Optional[int] = None
    stdout: Optional[str] = None             # a file; None: the peer's default capture
    log_max: Optional[int] = None            # bytes; 0: never rotate (with stdout)
    log_backups: Optional[int] = None


def now():
    return time.monotonic()


@dataclass
class Tools:
    vigild: str
    vigilctl: str
    python: str = "/usr/bin/python3"


_live = []  # every instance not yet closed, for cleanup on any exit


def close_all():
    for inst in list(_live):
        inst.close()


def sweep(run_id):
    """Kills every process that carries this run's marker (jobs a supervisor left behind)."""
    marker = f"{ENV_MARK}={run_id}".encode()
    for _ in range(3):
        pids = [p for p in procfs.pids_with_env(marker) if p != os.getpid()]
        if not pids:
            return 0
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.1)
    return len(pids)


class Peer:
    name = "?"
    job_comm = "sleep"

    def __init__(self, ctx, jobs, label=""):
        self.ctx = ctx
        self.jobs = jobs
        ctx.counter += 1
        self.dir = Path(ctx.tmp) / f"{ctx.counter:03d}-{self.name}{('-' + label) if label else ''}"
        self.dir.mkdir(parents=True)
        self.proc = None
        self.t_start = None
        self.write_config()

    # --- life cycle ---
    def argv(self):
        raise NotImplementedError

    def start(self):
        env = dict(os.environ)
        env[ENV_MARK] = self.ctx.run_id
        out = open(self.dir / "supervisor.out", "wb")
        _live.append(self)
        self.t_start = now()
        self.proc = subprocess.Popen(self.argv(), cwd=self.dir, env=env, stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        out.close()
        return self.t_start

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def request_stop(self):
        """Asks the supervisor to stop every job and exit."""
        os.kill(self.pid, signal.SIGTERM)

    def wait_exit(self, timeout):
        try:
            self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def close(self):
        """Stops the supervisor and everything it started, whatever state it is in."""
        if self in _live:
            _live.remove(self)
        if self.proc is None:
            return
        jobs = set(self.job_pids()) if self.alive() else set()
        if self.alive():
            try:
                self.request_stop()
            except OSError:
                pass
            self.wait_exit(15)
        if self.alive():
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.wait(5)
        for p in jobs:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- what the harness observes ---
    def supervisor_pids(self):
        """Every process that makes up the supervisor (not its jobs)."""
        return [self.pid]

    def job_parents(self):
        """The processes whose children are the jobs."""
        return [self.pid]

    def job_pids(self):
        pids = []
        for parent in self.job_parents():
            pids += procfs.children(parent)
        return pids

    def status_argv(self, name=None):
        raise NotImplementedError

    def all_running(self):
        """True when the peer's own status tool says every job runs."""
        raise NotImplementedError

    def log_files(self, job):
        """Where the job's stdout is now, and then where it was before the last rotation."""
        return [Path(job.stdout), Path(job.stdout + ".1")]

    @classmethod
    def version(cls, ctx):
        raise NotImplementedError


# --- vigil ---

class Vigil(Peer):
    name = "vigil"

    def write_config(self):
        d = self.dir
        lines = ["supervisor:",
                 f"  socket: {json.dumps(str(d / 'vigil.sock'))}",
                 f"  pidfile: {json.dumps(str(d / 'vigild.pid'))}",
                 f"  log: {json.dumps(str(d / 'vigild.log'))}",
                 f"  log_dir: {json.dumps(str(d / 'logs'))}",
                 "jobs:"]
        for j in self.jobs:
            lines.append(f"  {j.name}:")
            lines.append(f"    command: {json.dumps(j.argv)}")
            if j.start_seconds is not None:
                lines.append(f"    start_seconds: {j.start_seconds}")
            if j.restart_always:
                lines.append("    restart: always")
            if j.no_backoff:
                lines.append("    backoff: {initial: 0s, max: 0s}")
            if j.start_retries is not None:
                lines.append(f"    start_retries: {j.start_retries}")
            if j.stdout is not None:
                lines.append(f"    stdout: {json.dumps(j.stdout)}")
            if j.log_max is not None:
                lines.append(f"    log_max_size: {j.log_max}")
            if j.log_backups is not None:
                lines.append(f"    log_backups: {j.log_backups}")
        (d / "vigil.yaml").write_text("\n".join(lines) + "\n")

    def argv(self):
        return [self.ctx.tools.vigild, "-f", "-c", str(self.dir / "vigil.yaml")]

    def supervisor_pids(self):
        # vigild and its orphan guard (a child that kills the jobs if vigild is killed).
        return [self.pid] + [p for p in procfs.children(self.pid)
                             if procfs.comm(p) == "vigild-guard"]

    def ctl(self, *args):
        return [self.ctx.tools.vigilctl, "-s", str(self.dir / "vigil.sock"), *args]

    def status_argv(self, name=None):
        return self.ctl("status", *([name] if name else []))

    def all_running(self):
        r = subprocess.run(self.status_argv(), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        return r.returncode == 0

    @classmethod
    def version(cls, ctx):
        out = subprocess.run([ctx.tools.vigild, "--version"], capture_output=True,
                             text=True).stdout.strip()
        return out


# --- supervisord ---

class Supervisord(Peer):
    name = "supervisord"

    def write_config(self):
        d = self.dir
        (d / "childlogs").mkdir()
        conf = [
            "[unix_http_server]", f"file={d / 'supervisor.sock'}", "",
            "[supervisord]", "nodaemon=true", f"logfile={d / 'supervisord.log'}",
            f"pidfile={d / 'supervisord.pid'}", f"childlogdir={d / 'childlogs'}", "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
            "[supervisorctl]", f"serverurl=unix://{d / 'supervisor.sock'}", "",
        ]
        for j in self.jobs:
            # supervisord expands %(...)s in values: double any literal %.
            conf += [f"[program:{j.name}]", "command=" + shlex.join(j.argv).replace("%", "%%")]
            if j.start_seconds is not None:
                conf.append(f"startsecs={int(j.start_seconds)}")
            if j.restart_always:
                conf.append("autorestart=true")
            # no_backoff: supervisord backs off only failed starts (exits within startsecs);
            # with startsecs=0 a crash is restarted at once. Nothing to write.
            if j.start_retries is not None:
                conf.append(f"startretries={j.start_retries}")
            if j.stdout is not None:
                conf.append(f"stdout_logfile={j.stdout}")
            if j.log_max is not None:
                conf.append(f"stdout_logfile_maxbytes={j.log_max}")
            if j.log_backups is not None:
                conf.append(f"stdout_logfile_backups={j.log_backups}")
            conf.append("")
        (d / "supervisord.conf").write_text("\n".join(conf))

    def argv(self):
        return ["/usr/bin/supervisord", "-n", "-c", str(self.dir / "supervisord.conf")]

    def status_argv(self, name=None):
        return ["/usr/bin/supervisorctl", "-c", str(self.dir / "supervisord.conf"), "status",
                *([name] if name else [])]

    def all_running(self):
        r = subprocess.run(self.status_argv(), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        return r.returncode == 0

    @classmethod
    def version(cls, ctx):
        return "supervisord " + subprocess.run(["/usr/bin/supervisord", "--version"],
                                               capture_output=True, text=True).stdout.strip()


# --- s6 ---

S6_LOG_FILE = "current"


class S6(Peer):
    name = "s6"

    def write_config(self):
        scan = self.dir / "scan"
        scan.mkdir()
        for j in self.jobs:
            svc = scan / j.name
            svc.mkdir()
            cmd = "exec " + shlex.join(j.argv)
            if j.stdout is not None and not j.log_max:
                cmd += " >>" + shlex.quote(j.stdout)   # a plain redirect, no rotation
            run = svc / "run"
            run.write_text("#!/bin/sh\n" + cmd + "\n")
            run.chmod(0o755)
            if j.stdout is not None and j.log_max:
                # s6-log as the logger: a pipe from the service, rotation by size.
                log = svc / "log"
                log.mkdir()
                backups = j.log_backups if j.log_backups is not None else 10
                lrun = log / "run"
                lrun.write_text("#!/bin/sh\nexec s6-log n%d s%d %s\n" % (
                    backups, j.log_max, shlex.quote(j.stdout)))
                lrun.chmod(0o755)
            # s6 has no start_seconds, backoff or retry limit: a service is up once its run
            # program runs, is always restarted, and never sooner than 1 s after its last
            # start (s6-supervise's built-in rule).

    def argv(self):
        argv = ["/usr/bin/s6-svscan"]
        if len(self.jobs) >= 450:
            # s6-svscan refuses more services than -c (default 500); each logged service
            # counts twice.
            argv += ["-c", str(2 * len(self.jobs) + 10)]
        return argv + [str(self.dir / "scan")]

    def supervisor_pids(self):
        return [self.pid] + [p for p in procfs.children(self.pid)
                             if procfs.comm(p) == "s6-supervise"]

    def job_parents(self):
        return self.supervisor_pids()[1:]

    def status_argv(self, name=None):
        if name:
            return ["/usr/bin/s6-svstat", str(self.dir / "scan" / name)]
        # s6-svstat takes one service: "all" is a loop in one shell.
        return ["/bin/sh", "-c", 'for d in "$1"/*/; do s6-svstat "$d"; done', "sh",
                str(self.dir / "scan")]

    def all_running(self):
        r = subprocess.run(["/bin/sh", "-c", 'for d in "$1"/*/; do s6-svstat -u "$d"; done',
                            "sh", str(self.dir / "scan")], capture_output=True, text=True)
        words = r.stdout.split()
        return len(words) == len(self.jobs) and all(w == "true" for w in words)

    def log_files(self, job):
        if not job.log_max:
            return [Path(job.stdout)]
        d = Path(job.stdout)
        rotated = sorted(d.glob("@*.s")) if d.exists() else []
        return [d / S6_LOG_FILE] + rotated[-1:]

    @classmethod
    def version(cls, ctx):
        v = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "s6"], capture_output=True,
                           text=True).stdout.strip()
        return f"s6 {v}"


PEERS = [Supervisord, S6, Vigil]
