"""Load: many jobs and many concurrent clients for a while: every request answered, no
errors, vigild's memory flat after warm-up.

CI runs a short form. The full form (1000 jobs, 100 clients, 60 s):
    VIGIL_LOAD_JOBS=1000 VIGIL_LOAD_CLIENTS=100 VIGIL_LOAD_SECONDS=60 \\
        /usr/bin/python3 -m pytest tests/integration/test_load.py -q
"""

import os
import threading
import time

from conftest import SANITIZED, rss_kib, wait_until

JOBS = int(os.environ.get("VIGIL_LOAD_JOBS", "200"))
CLIENTS = int(os.environ.get("VIGIL_LOAD_CLIENTS", "20"))
SECONDS = float(os.environ.get("VIGIL_LOAD_SECONDS", "10"))


def test_many_jobs_and_clients_every_request_answered_memory_flat(vigil):
    vigil.write_config({f"job{i:04d}": {"command": ["/bin/sleep", "3600"], "start_seconds": 0}
                        for i in range(JOBS)})
    vigil.start()
    wait_until(lambda: all(s["state"] == "running" for s in vigil.status().values()),
               timeout=60, what=f"{JOBS} jobs running")
    pid = vigil.pid()
    stop = threading.Event()
    counts = [0] * CLIENTS
    errors = []

    def client(n):
        c = vigil.client()
        requests = [("status", {}), ("status", {"names": [f"job{n % JOBS:04d}"]}),
                    ("status", {"names": ["job00*"]}), ("version", {})]
        i = 0
        try:
            while not stop.is_set():
                cmd, args = requests[i % len(requests)]
                r = c.call(cmd, **args)
                if not r.get("ok"):
                    errors.append(r)
                counts[n] += 1
                i += 1
        except Exception as e:  # a dropped connection or a timeout is a failure
            errors.append(repr(e))
        finally:
            c.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    time.sleep(SECONDS * 0.3)  # warm-up: allocator pools and buffers reach their size
    warm = rss_kib(pid)
    time.sleep(SECONDS * 0.7)
    end = rss_kib(pid)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert all(c > 0 for c in counts), counts
    assert SANITIZED or end - warm < 1024, f"RSS grew {end - warm} KiB under steady load ({warm} -> {end})"
    assert all(s["state"] == "running" for s in vigil.status().values())


def pss_kib(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("Pss:"))


def test_reloading_an_unchanged_config_of_1000_jobs_gives_its_memory_back(vigil):
    # A reload parses the whole file again; what the loader used goes back, and jobs that
    # did not change keep the definition they have (an equal copy, allocated among the
    # loader's freed memory, pinned about 1 MiB of heap after every reload).
    if SANITIZED:
        return  # the sanitizer's shadow memory and quarantine make PSS meaningless
    vigil.write_config({f"job{i:04d}": {"command": ["/bin/sleep", "3600"], "start_seconds": 0}
                        for i in range(1000)})
    vigil.start()
    wait_until(lambda: all(s["state"] == "running" for s in vigil.status().values()),
               timeout=60, what="1000 jobs running")
    pid = vigil.pid()
    import signal
    os.kill(pid, signal.SIGHUP)  # the first reload touches code that start-up did not
    wait_until(lambda: "reload: added none" in vigil.daemon_log(), what="the first reload")
    before = pss_kib(pid)
    for n in range(2, 5):
        os.kill(pid, signal.SIGHUP)
        wait_until(lambda: vigil.daemon_log().count("reload: added none") >= n,
                   what=f"reload {n}")
    time.sleep(0.2)  # the log line is written just before memory is given back
    after = pss_kib(pid)
    assert after - before < 256, f"PSS {before} KiB before three reloads, {after} KiB after"
    r = vigil.call("reload")
    assert r["ok"] and len(r["result"]["unchanged"]) == 1000, r
    assert pss_kib(pid) - before < 768
