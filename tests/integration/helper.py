"""Job programs for the integration tests: one script, many behaviours.

Each mode is a process that behaves exactly as a test needs (ignores SIGTERM, forks a
grandchild, reports its environment...), so tests do not depend on shell one-liners.
Usage: helper.py MODE [ARGS...]
"""

import os
import signal
import sys
import time


def forever():
    while True:
        signal.pause()


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)  # readers never see a half-written file


def trap_term(path):
    """On SIGTERM, write "TERM" to path and exit."""
    def on_term(signum, frame):
        write(path, "TERM\n")
        os._exit(0)
    signal.signal(signal.SIGTERM, on_term)


def leave_group(pidfile):
    """The classic double fork: a child calls setsid and forks the process that stays (in a
    session and process group of its own; on SIGTERM it writes "TERM" to PIDFILE.term and
    exits), then exits itself. Returns the pid of the process that stays, once the child
    has been reaped: it is an orphan then, the subreaper's."""
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        os.setsid()
        if os.fork() == 0:
            trap_term(pidfile + ".term")
            os.write(w, f"{os.getpid()}".encode())
            forever()
        os._exit(0)
    os.waitpid(child, 0)
    return int(os.read(r, 64))


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "sleep":
        # Runs until signalled.
        forever()
    elif mode == "exit":
        # Exits with the given code after an optional delay (seconds).
        if len(args) > 1:
            time.sleep(float(args[1]))
        sys.exit(int(args[0]))
    elif mode == "report":
        # Writes what the job sees (cwd, env, ids, umask, fds) as KEY=VALUE lines to a file.
        out = args[0]
        mask = os.umask(0)
        os.umask(mask)
        lines = [
            f"cwd={os.getcwd()}",
            f"uid={os.getuid()}",
            f"gid={os.getgid()}",
            f"groups={','.join(map(str, sorted(os.getgroups())))}",
            f"umask={mask:04o}",
            f"pgid={os.getpgid(0)}",
            f"sid={os.getsid(0)}",
            f"pid={os.getpid()}",
            f"fds={','.join(sorted(os.listdir('/proc/self/fd'), key=int))}",
        ]
        import resource
        lines.append(f"nofile={resource.getrlimit(resource.RLIMIT_NOFILE)[0]}")
        lines += [f"env.{k}={v}" for k, v in sorted(os.environ.items())]
        write(out, "\n".join(lines) + "\n")
        forever()
    elif mode == "touch":
        # Creates a file (mode 0666 before the umask), then runs.
        fd = os.open(args[0], os.O_CREAT | os.O_WRONLY, 0o666)
        os.close(fd)
        forever()
    elif mode == "print":
        # Writes a line to stdout and one to stderr, then runs.
        print(args[0], flush=True)
        print(args[1], file=sys.stderr, flush=True)
        forever()
    elif mode == "ignore-term":
        # Ignores SIGTERM; with "child", a forked child ignores it too. Writes pids to a file.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        pids = [os.getpid()]
        if args[1:] == ["child"]:
            child = os.fork()
            if child == 0:
                forever()
            pids.append(child)
        write(args[0], " ".join(map(str, pids)) + "\n")
        forever()
    elif mode == "grandchild":
        # Forks a child which forks a grandchild; all run. Writes the pids to a file.
        r, w = os.pipe()
        child = os.fork()
        if child == 0:
            grand = os.fork()
            if grand == 0:
                forever()
            os.write(w, f"{grand}".encode())
            forever()
        grand = os.read(r, 64).decode()
        write(args[0], f"{os.getpid()} {child} {grand}\n")
        forever()
    elif mode == "orphan":
        # Leaves an orphan: a child forks a grandchild and exits at once, so the grandchild
        # is reparented to the subreaper (vigild); it exits a moment later and vigild must
        # reap it. The leader reaps its own child and runs on. Writes the grandchild's pid.
        r, w = os.pipe()
        child = os.fork()
        if child == 0:
            grand = os.fork()
            if grand == 0:
                time.sleep(0.5)
                os._exit(0)
            os.write(w, f"{grand}".encode())
            os._exit(0)
        os.waitpid(child, 0)
        grand = os.read(r, 64).decode()
        write(args[0], f"{grand}\n")
        forever()
    elif mode == "daemonize":
        # A program that daemonizes itself: it leaves its daemon (see leave_group), and
        # once the daemon's pid is in PIDFILE it exits 0.
        write(args[0], f"{leave_group(args[0])}\n")
        sys.exit(0)
    elif mode == "escape":
        # Like "daemonize", but the leader stays up: the process it left outside its group
        # is vigild's child once its pid is in PIDFILE, and the leader runs on.
        write(args[0], f"{leave_group(args[0])}\n")
        forever()
    elif mode == "group-trap":
        # A leader whose child, in its process group, writes "TERM" to FILE on SIGTERM and
        # exits. On SIGTERM the leader waits for the child before it exits itself, as a
        # parent that lets its workers finish does. Writes "leader child" pids to PIDFILE
        # once both traps are set.
        pidfile, trapfile = args[0], args[1]
        r, w = os.pipe()
        child = os.fork()
        if child == 0:
            trap_term(trapfile)
            os.write(w, b"x")
            forever()

        def on_term(signum, frame):
            os.waitpid(child, 0)
            os._exit(0)
        signal.signal(signal.SIGTERM, on_term)
        os.read(r, 1)
        write(pidfile, f"{os.getpid()} {child}\n")
        forever()
    elif mode == "lines":
        # Writes COUNT numbered lines of WIDTH bytes (newline included) to stdout, then runs.
        # A "go" file, when given, must exist before each line: the test paces the output.
        count, width = int(args[0]), int(args[1])
        out = sys.stdout.buffer
        for i in range(count):
            body = f"line {i:08d} "
            out.write((body + "x" * max(0, width - len(body) - 1) + "\n").encode())
        out.flush()
        forever()
    elif mode == "bytes":
        # Writes COUNT bytes of "z" to stdout, no newline at all, then runs.
        out = sys.stdout.buffer
        left = int(args[0])
        while left > 0:
            n = min(left, 1 << 16)
            out.write(b"z" * n)
            left -= n
        out.flush()
        forever()
    elif mode == "drip":
        # Writes "drip N" once per INTERVAL seconds, forever.
        interval, i = float(args[0]), 0
        while True:
            print(f"drip {i}", flush=True)
            i += 1
            time.sleep(interval)
    elif mode == "partial":
        # A line in two writes with a pause between, then a line of LONG bytes.
        out = sys.stdout.buffer
        out.write(b"first half ")
        out.flush()
        time.sleep(0.3)
        out.write(b"second half\n")
        out.write(b"L" * int(args[0]) + b"\n")
        out.flush()
        forever()
    elif mode == "flood":
        # Writes to stdout as fast as it can, forever.
        block = (b"flood " * 1000 + b"\n") * 16
        out = sys.stdout.buffer
        while True:
            out.write(block)
    elif mode == "starter":
        # Plays the user's shell: runs ARGV... as its child in its own session and process
        # group (and so with its controlling tty, if it has one), waits for it, writes its
        # exit code and the starter's own ids, then stays up (a session that ends would
        # take its tty from every process left in it).
        import subprocess
        r = subprocess.run(args[1:], stdin=0, stdout=1, stderr=2)
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        write(args[0], f"rc={r.returncode}\npid={os.getpid()}\npgrp={fields[2]}\n"
                       f"sid={fields[3]}\ntty_nr={fields[4]}\n")
        forever()
    else:
        sys.exit(f"helper.py: unknown mode {mode}")


if __name__ == "__main__":
    main()
