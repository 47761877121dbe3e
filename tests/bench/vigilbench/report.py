"""Tables: one row per figure, one column per peer, vigil's ratio to each, the target."""
import statistics

MB = 1e6


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


class Row:
    def __init__(self, label, unit, values, lower_better=True, target=None, judge=None,
                 target_text="", note=""):
        self.label, self.unit, self.values = label, unit, values
        self.lower_better = lower_better
        self.target_text = target_text
        self.judge = judge   # vigil's value -> True (met) / False (missed)
        self.note = note

    def fmt(self, v):
        if v is None:
            return "–"
        if self.unit == "ms":
            return f"{v * 1000:.3g} ms" if v * 1000 < 100 else f"{v * 1000:.0f} ms"
        if self.unit == "s":
            return f"{v:.3g} s" if v < 100 else f"{v:.0f} s"
        if self.unit == "MiB":
            return f"{v / 2**20:.3g} MiB"
        if self.unit == "MB/s":
            return f"{v:.0f} MB/s"
        if self.unit == "/s":
            return f"{v:.2f}/s"
        return f"{v:.3g}{(' ' + self.unit) if self.unit else ''}"

    def ratio(self, peer):
        v, p = self.values.get("vigil"), self.values.get(peer)
        if v is None or p is None:
            return "–"
        if p == 0:
            return "=" if v == 0 else "∞"
        return f"{v / p:.2g}×"

    def verdict(self):
        if self.judge is None or self.values.get("vigil") is None:
            return ""
        return "met" if self.judge(self.values["vigil"]) else "**MISSED**"


def rows(r):
    out = []
    peers = ("supervisord", "s6", "vigil")

    def each(fn):
        vals = {}
        for p in peers:
            try:
                vals[p] = fn(p)
            except (KeyError, TypeError, IndexError):
                vals[p] = None
        return vals

    s100, s1000 = r.get("start100"), r.get("start1000")
    if s100:
        out.append(Row("start 100 jobs → all running", "s", each(lambda p: med(s100[p]["start"]))))
    if s1000:
        out.append(Row("start 1000 jobs → all running", "s",
                       each(lambda p: med(s1000[p]["start"])), target_text="≤ 0.3 s",
                       judge=lambda v: v <= 0.3))
    if s100:
        out.append(Row("memory, 100 jobs: RSS of the supervisor", "MiB",
                       each(lambda p: med(s100[p]["rss"]))))
        out.append(Row("memory, 100 jobs: PSS of all its processes", "MiB",
                       each(lambda p: med(s100[p]["pss"]))))
    if s1000:
        out.append(Row("memory, 1000 jobs: RSS of the supervisor", "MiB",
                       each(lambda p: med(s1000[p]["rss"])), target_text="≤ 5 MB",
                       judge=lambda v: v <= 5e6))
        out.append(Row("memory, 1000 jobs: PSS of all its processes", "MiB",
                       each(lambda p: med(s1000[p]["pss"])), target_text="≤ 5 MB",
                       judge=lambda v: v <= 5e6))
    if s100:
        out.append(Row("CPU to start 100 jobs", "s", each(lambda p: med(s100[p]["cpu"]))))
    if s1000:
        out.append(Row("CPU to start 1000 jobs", "s", each(lambda p: med(s1000[p]["cpu"]))))
    if s1000 and s1000["vigil"].get("job_cpu"):
        out.append(Row("CPU of the 1000 job processes until they run", "s",
                       each(lambda p: med(s1000[p]["job_cpu"]))))
    if s100 and "idle_wakeups" in s100.get("vigil", {}):
        out.append(Row(f"idle, 100 jobs: wakeups ({s100['vigil']['idle_window']:.0f} s window)",
                       "/s", each(lambda p: s100[p]["idle_wakeups"]), target_text="0/s",
                       judge=lambda v: v == 0))
    if s100 and "status_one" in s100.get("vigil", {}):
        out.append(Row("status of 1 job (of 100)", "ms",
                       each(lambda p: s100[p]["status_one"]["median"]), target_text="≤ 2 ms",
                       judge=lambda v: v <= 0.002))
    if s1000 and "status_one" in s1000.get("vigil", {}):
        out.append(Row("status of 1 job (of 1000)", "ms",
                       each(lambda p: s1000[p]["status_one"]["median"]), target_text="≤ 2 ms",
                       judge=lambda v: v <= 0.002))
    if s1000 and "status_all" in s1000.get("vigil", {}):
        out.append(Row("status of all 1000 jobs", "ms",
                       each(lambda p: s1000[p]["status_all"]["median"]), target_text="≤ 10 ms",
                       judge=lambda v: v <= 0.010))
    rs = r.get("respawn")
    if rs:
        out.append(Row(f"respawn after kill -9: median of {rs['vigil']['kills']}", "ms",
                       each(lambda p: rs[p]["median"]), target_text="≤ 3 ms",
                       judge=lambda v: v <= 0.003))
        out.append(Row("respawn after kill -9: max", "ms", each(lambda p: rs[p]["max"])))
    lc = r.get("log")
    if lc:
        for mode in ("lines", "bytes"):
            if mode not in lc:
                continue
            m = lc[mode]
            dd = med(m["dd"])
            pipe = med(m.get("pipe_dd", []))
            ref = f"dd: {dd:.0f} MB/s" + (f"; writer piped to dd: {pipe:.0f} MB/s" if pipe else "")
            for variant, text in (("norot", "no rotation"), ("rot", "rotation 100 MiB × 3")):
                vals = each(lambda p: med(m["peers"][f"{p}/{variant}"]["mbps"]))
                judge = (lambda v, dd=dd: v >= 0.9 * dd) if variant == "rot" else None
                row = Row(f"log capture, {mode}, {text} ({ref})", "MB/s", vals,
                          lower_better=False,
                          target_text=(f"≥ 0.9 × dd = {0.9 * dd:.0f} MB/s" if variant == "rot"
                                       else ""), judge=judge)
                row.dd = dd
                out.append(row)
    cl = r.get("crash")
    if cl:
        w = cl["vigil"]["window"]
        out.append(Row(f"crash loop: supervisor CPU in {w:.0f} s", "s",
                       each(lambda p: cl[p]["cpu"]), target_text="≤ 0.05 s",
                       judge=lambda v: v <= 0.05))
        out.append(Row(f"crash loop: starts in {w:.0f} s", "",
                       each(lambda p: cl[p]["starts"]),
                       target_text="backoff 1, 2, 4, 8 s: ≤ 5", judge=lambda v: v <= 5))
    if s100 and s100["vigil"].get("stop"):
        out.append(Row("stop all 100 jobs", "s", each(lambda p: med(s100[p]["stop"]))))
    if s1000 and s1000["vigil"].get("stop"):
        out.append(Row("stop all 1000 jobs", "s", each(lambda p: med(s1000[p]["stop"])),
                       target_text="≤ 0.5 s", judge=lambda v: v <= 0.5))
    return out


def table(rs):
    head = ("| figure | supervisord | s6 | vigil | vigil ÷ supervisord | vigil ÷ s6 | "
            "vigil target | |")
    lines = [head, "|---|---:|---:|---:|---:|---:|---|---|"]
    for row in rs:
        lines.append("| {} | {} | {} | {} | {} | {} | {} | {} |".format(
            row.label, row.fmt(row.values["supervisord"]), row.fmt(row.values["s6"]),
            row.fmt(row.values["vigil"]), row.ratio("supervisord"), row.ratio("s6"),
            row.target_text, row.verdict()))
    return "\n".join(lines)


def verdicts(rs):
    return [(row.label, row.fmt(row.values["vigil"]), row.target_text, row.verdict())
            for row in rs if row.judge is not None]


def checks(r):
    """Did each peer's own status tool agree that every job ran?"""
    out = []
    for key, n in (("start100", 100), ("start1000", 1000)):
        for p, v in r.get(key, {}).items():
            oks = v.get("own_status_ok", [])
            if oks and not all(oks):
                out.append(f"{p}: its own status did not report all {n} jobs running "
                           f"({oks.count(False)} of {len(oks)} runs)")
    return out


def floors(r):
    """For each client timing: the median of /bin/true timed alternately with it; for each
    start: a bare posix_spawn loop doing the same spawns with no supervisor."""
    out = []
    for key, n in (("start100", 100), ("start1000", 1000)):
        s = r.get(key, {})
        bare = med(s.get("bare", {}).get("start", []))
        if bare is None:
            continue
        text = (f"start {n} jobs: a bare loop of posix_spawn (no supervisor, no pipes, no "
                f"logs) started {n} sleeps in {bare:.3g} s in the same runs, with the "
                f"environment every peer's jobs get: the machine's floor")
        bare_cpu = med(s["bare"].get("job_cpu", []))
        if bare_cpu is not None:
            text += f"; those sleeps used {bare_cpu:.3g} s of CPU to get there"
        empty = s.get("bare_no_env", {})
        if empty.get("start"):
            text += (f". With an empty environment (no locale for `sleep` to load) the "
                     f"same loop took {med(empty['start']):.3g} s, its sleeps "
                     f"{med(empty['job_cpu']):.3g} s of CPU")
        out.append(text)
    for key, n in (("start100", 100), ("start1000", 1000)):
        for what, label in (("status_one", f"status of 1 job (of {n})"),
                            ("status_all", f"status of all {n} jobs")):
            parts = []
            for p in ("supervisord", "s6", "vigil"):
                t = r.get(key, {}).get(p, {}).get(what)
                if t and "floor" in t:
                    parts.append(f"{p} {t['floor'] * 1000:.2f} ms")
            if parts:
                out.append(f"{label}: /bin/true took " + ", ".join(parts) +
                           " in the same runs")
    return out
