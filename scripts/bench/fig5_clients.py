"""Figure 5: jmcmd against jcmd, wall time (hyperfine rounds) and max RSS."""
from results import row
from stats import fmt_ratio, median, ms, pooled, ratio_ci, verdict


def clients(jmcmd_rss, jcmd_rss):
    t = pooled("clients")
    a, b = t["jmcmd report"], t["jcmd VM.native_memory summary"]
    r = median(a) / median(b)
    lo, hi = ratio_ci(b, a)
    row(5, "`jcmd <pid> VM.native_memory summary`, wall time", f"{ms(median(b))} (median of {len(b)})", "1", "", "")
    row(5, "`jmcmd <pid> report`, wall time", f"{ms(median(a))} (median of {len(a)})", fmt_ratio(r, lo, hi),
        "≤ 0.2×", verdict(lo, hi, 0.2))
    ja = [int(x) for x in jmcmd_rss.split(",")]
    jb = [int(x) for x in jcmd_rss.split(",")]
    mr = median(ja) / median(jb)
    row(5, "`jcmd` client, max RSS (`/usr/bin/time -v`)", f"{median(jb) / 1024:.1f} MiB (median of {len(jb)})", "1", "", "")
    row(5, "`jmcmd` client, max RSS", f"{median(ja) / 1024:.1f} MiB (median of {len(ja)})", f"{mr:.3f}×",
        "≤ 0.1×", "met" if mr <= 0.1 else "**missed**")

