"""Figure 1: start-up, from the hyperfine rounds and from interleaved runs
of Hello that print the wall clock at the end of `main`."""
import json
import subprocess
import sys
import time

from results import note, row
from stats import fmt_ratio, median, ms, pooled, ratio_ci, verdict


def startup():
    t = pooled("startup")
    base = t["no agent"]
    row(1, "start-up to end of hello-world `main` (process wall time), no agent",
        f"{ms(median(base))} (median of {len(base)})", "1", "", "")
    for name, target in (("jmagent (default options)", 1.05), ("NMT summary, no agent", None)):
        x = t[name]
        r = median(x) / median(base)
        lo, hi = ratio_ci(base, x)
        row(1, f"start-up, {name}", f"{ms(median(x))} (median of {len(x)})", fmt_ratio(r, lo, hi),
            f"≤ {target}×" if target else "", verdict(lo, hi, target) if target else "")


def startup_split(runs):
    """Figure 1, split: launch to the end of main (Hello prints the wall
    clock there) and end of main to the process's end, interleaved runs."""
    java, agent, cp = sys.argv[3], sys.argv[4], sys.argv[5]
    hello = ["-cp", cp, "io.jmagent.examples.bench.Hello", "clock"]
    cmds = [("no agent", [java] + hello), ("jmagent (default options)", [java, f"-agentpath:{agent}"] + hello),
            ("NMT summary, no agent", [java, "-XX:NativeMemoryTracking=summary"] + hello)]
    main, exit_ = {n: [] for n, _ in cmds}, {n: [] for n, _ in cmds}
    for _ in range(runs):
        for name, argv in cmds:
            t0 = time.time()
            out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=True).stdout
            t1 = time.time()
            end_main = int(out.split()[1]) / 1e6
            main[name].append(end_main - t0)
            exit_[name].append(t1 - end_main)
    base = main["no agent"]
    for name, target in (("jmagent (default options)", 1.05), ("NMT summary, no agent", None)):
        x = main[name]
        r = median(x) / median(base)
        lo, hi = ratio_ci(base, x)
        row(1, f"launch to end of `main` only (clock printed by `main`), {name}; no agent: {ms(median(base))}",
            f"{ms(median(x))} (median of {len(x)})", fmt_ratio(r, lo, hi), f"≤ {target}×" if target else "",
            verdict(lo, hi, target) if target else "")
    note("figure 1: end of `main` to the end of the process (median of %d interleaved runs): " % runs +
         ", ".join(f"{n} {ms(median(v))}" for n, v in exit_.items()))



def exit_sample():
    """Figure 1: the time of the final report at JVM exit (VMDeath), over the
    hello-world runs' JSON logs on stdin (one report each: interval=60s
    never came)."""
    xs = sorted(json.loads(l)["sample_micros"] / 1000 for l in sys.stdin)
    med = xs[len(xs) // 2]
    row(1, "the final report at JVM exit (VMDeath) of a hello-world, `sample_micros`",
        f"{med:.2f} ms (median of {len(xs)}; max {xs[-1]:.2f} ms)", "", "≤ 5 ms",
        "met" if med <= 5 else "**missed**")
