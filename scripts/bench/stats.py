"""Statistics and the formatting of figures: medians, percentiles, bootstrap
intervals of ratios of medians, and the verdict of a ratio target."""
import glob
import json
import math
import os
import random

from results import OUT

MIB = 1 << 20


def median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def pct(xs, p):
    """Nearest-rank percentile."""
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def ratio_ci(base, other, n=4000):
    rnd = random.Random(6)
    rs = []
    for _ in range(n):
        b = median([rnd.choice(base) for _ in base])
        o = median([rnd.choice(other) for _ in other])
        rs.append(o / b)
    rs.sort()
    return rs[int(0.025 * n)], rs[int(0.975 * n) - 1]


def pooled(prefix):
    """Times (s) per command name over every round's hyperfine JSON."""
    times = {}
    for path in sorted(glob.glob(os.path.join(OUT, "hf", prefix + "-*.json"))):
        for r in json.load(open(path))["results"]:
            times.setdefault(r["command"], []).extend(r["times"])
    return times


def ms(x):
    return f"{x * 1000:.1f} ms" if x < 10 else f"{x:.2f} s"


def verdict(lo, hi, target):
    """A ratio target against the ratio's 95% interval."""
    if hi <= target:
        return "met"
    if lo > target:
        return "**missed**"
    return "not resolved (the interval straddles the target)"


def fmt_ratio(r, lo, hi):
    return f"{r:.3f}× [{lo:.3f}–{hi:.3f}]"

