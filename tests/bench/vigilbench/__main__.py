"""vigil against supervisord and s6: see tests/bench/run and docs/benchmarks.md."""
import argparse
import json
import os
import resource
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

from . import machine, peers, report, scenarios

REPO = Path(__file__).resolve().parents[3]
DOC = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"

# What each mode runs: repetitions, windows and counts.
PLANS = {
    "quick": dict(reps_start=1, idle=5.0, status_100=(10, 0), status_1000=(10, 3), kills=8,
                  log_size=1 << 30, log_reps=1, crash=20.0),
    "full": dict(reps_start=3, idle=20.0, status_100=(30, 0), status_1000=(20, 10), kills=20,
                 log_size=1 << 30, log_reps=3, crash=20.0),
}
SCENARIOS = ("start100", "start1000", "respawn", "log", "crash")


class Ctx:
    def __init__(self, tools, tmp, quick):
        self.tools = tools
        self.tmp = tmp
        self.quick = quick
        self.run_id = uuid.uuid4().hex[:12]
        self.counter = 0
        self.cleanup_files = []


def main():
    ap = argparse.ArgumentParser(prog="tests/bench/run")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions: a few minutes")
    ap.add_argument("--only", action="append", choices=SCENARIOS,
                    help="run only this scenario (repeatable)")
    ap.add_argument("--docs", action="store_true",
                    help="write docs/benchmarks.md (the default for a full run)")
    ap.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md")
    ap.add_argument("--build", default=str(REPO / "build-bench"))
    ap.add_argument("--tmp", default=None, help="parent folder for the temp dir")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--nice", type=int, default=0,
                    help="run the harness, the supervisors and their jobs at this niceness "
                         "(e.g. -10 on a machine shared with other work)")
    args = ap.parse_args()
    mode = "quick" if args.quick else "full"
    plan = PLANS[mode]
    only = set(args.only or SCENARIOS)

    if args.nice:
        os.nice(args.nice)
    # Room for 1000 jobs' pipes in every peer alike.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # A Ctrl-C or kill of the harness still cleans up (finally below).
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(130))

    tools = peers.Tools(vigild=f"{args.build}/supervisor/vigild",
                        vigilctl=f"{args.build}/ctl/vigilctl")
    tmp = tempfile.mkdtemp(prefix="vigil-bench-", dir=args.tmp)
    ctx = Ctx(tools, tmp, args.quick)
    versions = {cls.name: cls.version(ctx) for cls in peers.PEERS}
    facts = machine.facts(tmp, str(REPO), versions)
    print(f"vigil benchmarks ({mode}); temp dir {tmp} ({facts['tmp_fs']})")
    print(f"  {facts['nproc']} × {facts['model']}, kernel {facts['kernel']}, "
          f"{facts['memory'] / 2**30:.1f} GiB; load {' '.join(facts['load_before'])}; "
          f"CPU busy with other work: {facts['cpu_busy_before']['busy']:.0%}")
    if facts["cpu_busy_before"]["busy"] > 0.25:
        print("  warning: this machine is busy with other work; the figures will be noisy "
              "(ms-level ones most)")
    print("  " + "; ".join(versions.values()) + f" ({facts['vigil_commit']})")

    results = {"mode": mode, "plan": plan, "facts": facts, "nice": os.nice(0)}
    t_begin = time.time()
    try:
        results["spawn_floor"] = scenarios.spawn_floor(ctx)
        if "start100" in only:
            banner(results, "start100", "100 jobs: start, memory, CPU, idle wakeups, status, stop")
            results["start100"] = scenarios.start_jobs(
                ctx, 100, plan["reps_start"], idle_window=plan["idle"],
                status_runs=plan["status_100"])
        if "start1000" in only:
            banner(results, "start1000", "1000 jobs: start, memory, CPU, status, stop")
            results["start1000"] = scenarios.start_jobs(
                ctx, 1000, plan["reps_start"], status_runs=plan["status_1000"])
        if "respawn" in only:
            banner(results, "respawn", "respawn after kill -9")
            results["respawn"] = scenarios.respawn(ctx, plan["kills"])
        if "log" in only:
            banner(results, "log", f"log capture, {plan['log_size'] / 2**20:.0f} MiB per run")
            results["log"] = scenarios.log_capture(ctx, plan["log_size"], plan["log_reps"])
        if "crash" in only:
            banner(results, "crash", "crash loop")
            results["crash"] = scenarios.crash_loop(ctx, plan["crash"])
    finally:
        peers.close_all()
        for f in ctx.cleanup_files:
            f.unlink(missing_ok=True)
        left = peers.sweep(ctx.run_id)
        if left:
            print(f"warning: {left} processes of this run could not be killed", file=sys.stderr)
        if not args.keep:
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)

    facts["load_after"] = machine.loadavg()
    results["duration"] = time.time() - t_begin
    rows = report.rows(results)
    text = report.table(rows)
    print()
    print(text)
    print()
    floor = results["spawn_floor"]["median"] * 1000
    print(f"(client times include the harness's cost to run a program: /bin/true takes "
          f"{floor:.2f} ms)")
    for line in report.floors(results):
        print("  " + line)
    for line in report.checks(results):
        print("  check failed: " + line)
    for label, value, target, verdict in report.verdicts(rows):
        print(f"  {verdict.strip('*'):7s} {label}: {value} (target {target})")
    out = Path(args.build) / f"bench-results-{mode}.json"
    out.write_text(json.dumps(results, indent=1, default=str))
    print(f"raw results: {out}  ({results['duration'] / 60:.1f} min)")
    if (mode == "full" or args.docs) and not args.no_docs:
        write_doc(results, text)
        print(f"wrote {DOC}")


def banner(results, key, text):
    load = machine.loadavg()
    results.setdefault("load", {})[key] = load
    print(f"== {text}   (load average {' '.join(load)})", flush=True)


def write_doc(results, table):
    f = results["facts"]
    v = f["versions"]
    floor = results["spawn_floor"]["median"] * 1000
    when = time.strftime("%Y-%m-%d", time.gmtime())
    lc = results.get("log", {})
    body = [
        BEGIN,
        f"Run of {when} (`tests/bench/run{' --quick' if results['mode'] == 'quick' else ''}`, "
        f"{results['duration'] / 60:.0f} min):",
        "",
        table,
        "",
        f"- Client times include the harness's own cost to start a program: `/bin/true` "
        f"takes {floor:.2f} ms the same way.",
        "- Ratios are vigil's figure divided by the peer's: below 1 is better for vigil for "
        "times, memory, CPU and wakeups; above 1 is better for throughput.",
    ]
    for line in report.floors(results):
        body.append("- " + line + ".")
    checks = report.checks(results)
    body.append("- Each peer's own status tool reported every job running once /proc showed them "
                "all: " + ("yes, for every peer and run." if not checks else
                           "**not always**: " + "; ".join(checks) + "."))
    if lc:
        for mode in ("lines", "bytes"):
            if mode in lc:
                for key, e in sorted(lc[mode]["peers"].items()):
                    if key.endswith("/rot"):
                        body.append(f"- log capture, {mode}, {key}: files left after 1 GiB: "
                                    + ", ".join(f"{s / 2**20:.0f} MiB" for s in e["files"]))
    body += [
        "",
        "Machine:",
        "",
        "| | |",
        "|---|---|",
        f"| CPUs | {f['nproc']} × {f['model']} |",
        f"| memory | {f['memory'] / 2**30:.1f} GiB |",
        f"| kernel | {f['kernel']} ({f['os']}) |",
        f"| temp dir filesystem | {f['tmp_fs']} |",
        f"| load average before / after | {' '.join(f['load_before'])} / "
        f"{' '.join(f['load_after'])} |",
        "| load average (1 min) as each scenario began | " + ", ".join(
            f"{k} {v[0]}" for k, v in results.get("load", {}).items()) + " |",
        f"| CPU busy with other work just before the run | "
        f"{f['cpu_busy_before']['busy']:.0%} (steal {f['cpu_busy_before']['steal']:.0%}) |",
        f"| supervisord | {v['supervisord']} (Debian package `supervisor`) |",
        f"| s6 | {v['s6']} (Debian package) |",
        f"| vigil | {v['vigil']}, commit {f['vigil_commit']}, `--buildtype=release` |",
        f"| harness | Python {f['python']} |",
        END,
    ]
    block = "\n".join(body)
    text = DOC.read_text() if DOC.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN in text and END in text:
        pre, rest = text.split(BEGIN, 1)
        post = rest.split(END, 1)[1]
        text = pre + block + post
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    DOC.write_text(text)


if __name__ == "__main__":
    main()
