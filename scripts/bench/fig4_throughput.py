"""Figure 4: throughput of a native-allocation heavy workload (NativeChurn),
from the hyperfine rounds and the CPU and work times each run appended."""
import os
import re

from results import OUT, row
from stats import fmt_ratio, median, ms, pooled, ratio_ci


def throughput():
    t = pooled("throughput")
    cpu = {}
    for name in t:
        path = os.path.join(OUT, "logs", "cpu-" + re.sub(r"[^a-z0-9]+", "-", name.lower()) + ".txt")
        cpu[name] = [sum(float(x) for x in l.split(",")) for l in open(path) if re.match(r"^[\d.]+,[\d.]+$", l.strip())]
    work = {}
    for name in t:
        path = os.path.join(OUT, "logs", "work-" + re.sub(r"[^a-z0-9]+", "-", name.lower()) + ".txt")
        work[name] = [float(l) / 1000 for l in open(path) if l.strip()]
    base, cbase, wbase = t["no agent"], cpu["no agent"], work["no agent"]
    row(4, "native-allocation-heavy work (`NativeChurn`, 4 threads, fixed work), no agent: process wall time (hyperfine); "
        "work time inside the process (first to last round); CPU time (user+sys)",
        f"wall {ms(median(base))}; work {ms(median(wbase))}; CPU {ms(median(cbase))} (medians of {len(base)})", "1", "", "")
    for name in ("jmagent interval=1s", "jmagent interval=100ms", "NMT summary, no agent"):
        x, c, w = t[name], cpu[name], work[name]
        r = median(x) / median(base)
        lo, hi = ratio_ci(base, x)
        target = met = ""
        if name.endswith("=1s"):
            target = "wall < 1.01× (indistinguishable)"
            met = "met" if 0.99 < lo and hi < 1.01 else ("**missed**" if lo >= 1.01 else "not resolved (interval wider than ±1%)")
        row(4, f"same work, {name}", f"wall {ms(median(x))}; work {ms(median(w))}; CPU {ms(median(c))}",
            f"wall {fmt_ratio(r, lo, hi)}; work {fmt_ratio(median(w) / median(wbase), *ratio_ci(wbase, w))}; "
            f"CPU {fmt_ratio(median(c) / median(cbase), *ratio_ci(cbase, c))}", target, met)

