"""Figure 8: how long the process's mallocs wait while the agent samples.

MallocLatency (examples/.../bench/MallocLatency.java) fragments the glibc
heap like Fragment, then runs the test library's probe: a native pthread
timing every malloc and free of 2 to 64 KiB (no tcache, so each takes its
arena's lock, which glibc's statistics calls hold while they walk that
arena's free chunks). Runs with and without the agent alternate (a round
is one of each, the order flipping every round), so load that comes and
goes on a shared machine hits both alike; the histograms of a case's runs
are merged.

A call is counted "not preempted" when the probe thread had no involuntary
context switch in its iteration (getrusage): on a busy machine the longest
calls are the thread losing its CPU, with or without the agent. A call
"blocked" when its iteration had a voluntary switch: glibc's arena lock
sleeps in the kernel as soon as it is contended, so a wait for an arena
the agent's statistics walk holds shows there (as does a wait for the
kernel's mmap lock). Stalls with neither (a virtual CPU the host did not
run) count as not preempted.

With an agent that reuses an expensive reading of the allocator's
statistics, only the samples that read them walk the heap; the probe starts
as soon as the heap is fragmented, so the agent's first look at it falls in
the probe, and the notes say how many readings did."""
import os
import subprocess
import sys
import time

from procs import read_reports, stop, vmrss, wait_line
from results import OUT, note, row
from stats import MIB, median, pct

SUB_BITS = 7  # the probe's histogram layout (tests/native/testlib.c, PROBE_SUB_BITS)


def bucket_high(i, sub_bits=SUB_BITS):
    """The largest value (ns) bucket i holds (probe_bucket_high in testlib.c)."""
    sub = 1 << sub_bits
    if i < sub:
        return i
    shift, m = divmod(i - sub, sub)
    return ((sub + m + 1) << shift) - 1


def hist_pct(hist, q, maximum):
    """Nearest-rank percentile (ns) of a merged {bucket: count} histogram,
    as the bucket's upper bound, at most the largest value seen."""
    total = sum(hist.values())
    if not total:
        return 0
    rank = max(1, -(-round(q * 1000) * total // 100000))  # ceil(q / 100 * total), exact for q with 3 decimals
    seen = 0
    for i in sorted(hist):
        seen += hist[i]
        if seen >= rank:
            return min(bucket_high(i), maximum)
    return maximum


def parse_probe(line):
    """The probe's line (after 'probe '): {key: int}, the histograms as
    {bucket: count}, slowest as (kind, ns, epoch_ms, voluntary, involuntary)."""
    out = {}
    for field in line.split():
        k, _, v = field.partition("=")
        if k in ("hist", "np_hist"):
            out[k] = {int(a): int(b) for a, b in (x.split(":") for x in v.split(",") if x)}
        elif k == "slowest":
            out[k] = [(x.split(":")[0], *map(int, x.split(":")[1:])) for x in v.split(",") if x]
        else:
            out[k] = int(v)
    return out


def run_one(i, with_agent, seconds, interval, threads, blocks):
    java, agent, cp, lib = sys.argv[7], sys.argv[8], sys.argv[9], sys.argv[10]
    tag = f"malloc-latency-{i}-{'agent' if with_agent else 'none'}"
    log = os.path.join(OUT, "logs", tag + ".json")
    flags = [f"-agentpath:{agent}=interval={interval},format=json,log={log}"] if with_agent else []
    argv = [java] + flags + [f"-Djmagent.testlib={lib}", "-cp", cp, "io.jmagent.examples.bench.MallocLatency",
                             f"threads={threads}", f"blocks={blocks}", f"seconds={seconds:g}", "settle=0"]
    err = open(os.path.join(OUT, "logs", tag + ".stderr"), "w")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True,
                            env=dict(os.environ, JMAGENT_DEBUG_TIMING="1"))
    try:
        # The probe starts at once: the agent's first sample of the fragmented
        # heap (which reads the allocator's statistics, the expensive part)
        # falls in it.
        wait_line(proc, "ready")
        t0 = time.time()
        time.sleep(min(2.0, seconds / 2))  # the probe's own arena is fragmented too by then
        rss = vmrss(proc.pid)
        line = wait_line(proc, "probe ", timeout=seconds + 120)
        t1 = time.time()
        proc.wait(60)
    finally:
        stop(proc)
        err.close()
    r = parse_probe(line.split(" ", 1)[1])
    r.update(rss=rss, window=(t0 * 1000, t1 * 1000), log=log if with_agent else None, err=err.name)
    return r


def merge(runs, key):
    h = {}
    for r in runs:
        for b, c in r[key].items():
            h[b] = h.get(b, 0) + c
    return h


def summary(runs, prefix=""):
    """p50, p99.99 and max (ns) and the count over a case's runs."""
    hist = merge(runs, prefix + "hist")
    mx = max(r[prefix + "max_ns"] for r in runs)
    return {"p50": hist_pct(hist, 50, mx), "p9999": hist_pct(hist, 99.99, mx), "max": mx,
            "n": sum(hist.values()), "over2ms": sum(r[prefix + "over2ms"] for r in runs)}


def us(ns):
    return f"{ns / 1000:.1f} µs" if ns < 1_000_000 else f"{ns / 1e6:.2f} ms"


def cell(s):
    return f"p50 {us(s['p50'])}, p99.99 {us(s['p9999'])}, max {us(s['max'])}; {s['over2ms']} over 2 ms (n={s['n']:,})"


def samples_during(r):
    """The agent's samples that ran while the probe did, each (start, end) in
    epoch ms with its micros, and the phase lines of the same samples."""
    reports = read_reports(r["log"])
    lines = [l for l in open(r["err"]) if "sample phases:" in l]
    lo, hi = r["window"]
    out = []
    for i, rep in enumerate(reports):
        end = rep["timestamp_ms"]
        start = end - rep["sample_micros"] / 1000
        if rep.get("final") or end < lo or start > hi:
            continue
        phase = lines[i] if len(lines) in (len(reports), len(reports) + 1) else None
        out.append((start, end, rep, phase))
    return reports, out


def malloc_latency(rounds, seconds, interval, threads, blocks):
    """Figure 8: `rounds` rounds of one run with the agent (interval=`interval`)
    and one without, `seconds` of probing each."""
    from fig2_sample_cost import allocator_phase, fresh_read, phase_times  # the same parsing as figure 2
    runs = {True: [], False: []}
    for i in range(rounds):
        for with_agent in ((True, False) if i % 2 == 0 else (False, True)):
            runs[with_agent].append(run_one(i, with_agent, seconds, interval, threads, blocks))
    a, b = runs[True], runs[False]
    # What the agent saw and did in its runs.
    during, slow_in, slow_all = [], 0, 0
    for r in a:
        _, ds = samples_during(r)
        during += ds
        for kind, ns, at_ms, vol, invol in r["slowest"]:
            slow_all += 1
            if any(s - 1 <= at_ms <= e + 1 for s, e, _, _ in ds):
                slow_in += 1
    # The samples that read the allocator's statistics (walking the free
    # chunks with each arena locked) during the probes: none, and the runs
    # say nothing about that walk.
    reads = [rep for _, _, rep, _ in during if fresh_read(rep)]
    verdict = lambda ok: ("met" if ok else "**missed**") if reads else \
        "not resolved (no sample read the allocator's statistics during the probes)"
    rss = median([r["rss"] for r in a + b])
    fc = lambda rep: (rep.get("allocator") or {}).get("free_chunks") or 0
    chunks = max([fc(rep) for rep in reads] or [fc(rep) for _, _, rep, _ in during] or [0])
    where = (f"Fragment {threads}×{blocks} + the probe's own arena "
             f"({chunks:,} free chunks per the agent's allocator.free_chunks; RSS {rss / MIB:.0f} MiB)")
    name = f"malloc latency (native pthread, malloc/free 2–64 KiB, ring 256) in {where}, {rounds}×{seconds:g} s each"
    sa, sb = summary(a), summary(b)
    na, nb = summary(a, "np_"), summary(b, "np_")
    row(8, f"{name}: without the agent", cell(sb), "", "", "")
    ratio = f"{sa['p9999'] / sb['p9999']:.2f}× p99.99" if sb["p9999"] else ""
    row(8, f"{name}: with the agent, interval={interval}", cell(sa), ratio, "", "")
    d = sa["max"] - sb["max"]
    row(8, "longest malloc, with the agent − without (all calls)",
        f"{d / 1e6:+.2f} ms ({us(sa['max'])} vs {us(sb['max'])})", "", "≤ 2 ms", verdict(d <= 2e6))
    d = na["max"] - nb["max"]
    row(8, "longest malloc not preempted (no involuntary context switch), with the agent − without",
        f"{d / 1e6:+.2f} ms ({us(na['max'])} vs {us(nb['max'])})", "", "≤ 2 ms", verdict(d <= 2e6))
    # A wait for the arena lock lands on the next call, malloc or free; glibc's
    # lock sleeps in the kernel at once, so the wait is a voluntary switch.
    blocked = lambda rs: (max(max(r["blocked_max_ns"], r["free_blocked_max_ns"]) for r in rs),
                          sum(r["blocked"] + r["free_blocked"] for r in rs))
    (ba, ca), (bb, cb) = blocked(a), blocked(b)
    d = ba - bb
    row(8, "longest malloc or free that blocked (a voluntary context switch in its iteration: the arena lock, "
           "or the kernel's mmap lock), with the agent − without",
        f"{d / 1e6:+.2f} ms ({us(ba)}, {ca} calls blocked, vs {us(bb)}, {cb} calls)", "", "≤ 2 ms",
        verdict(d <= 2e6))
    d = sa["p9999"] - sb["p9999"]
    row(8, "malloc p99.99, with the agent vs without", f"{us(sa['p9999'])} vs {us(sb['p9999'])} ({d / 1000:+.1f} µs)",
        ratio.replace(" p99.99", ""), "≤ 2 ms more", verdict(d <= 2e6))
    # Notes: the noise, the agent's samples, the frees, where the slowest calls fell.
    per_run = lambda rs, k: ", ".join(us(r[k]) for r in rs)
    note(f"figure 8: longest malloc per run, without the agent: {per_run(b, 'max_ns')}; with: {per_run(a, 'max_ns')}. "
         f"Not preempted: without {per_run(b, 'np_max_ns')}; with {per_run(a, 'np_max_ns')}")
    note(f"figure 8: not preempted, malloc p50/p99.99/max: without {us(nb['p50'])}/{us(nb['p9999'])}/{us(nb['max'])}, "
         f"with {us(na['p50'])}/{us(na['p9999'])}/{us(na['max'])}")
    fmax = lambda rs, k: max(r[k] for r in rs)
    note(f"figure 8: free (timed too: it takes the arena lock as well): longest without the agent "
         f"{us(fmax(b, 'free_max_ns'))} (not preempted {us(fmax(b, 'free_np_max_ns'))}), with {us(fmax(a, 'free_max_ns'))} "
         f"(not preempted {us(fmax(a, 'free_np_max_ns'))}); {sum(r['free_over2ms'] for r in b)} vs "
         f"{sum(r['free_over2ms'] for r in a)} frees over 2 ms")
    note(f"figure 8: the probe thread blocked (voluntary context switches: a lock, the arena's or the kernel's mmap lock) "
         f"{sum(r['vcsw'] for r in b)} times without the agent and {sum(r['vcsw'] for r in a)} with; it was preempted "
         f"{sum(r['ivcsw'] for r in b)} and {sum(r['ivcsw'] for r in a)} times")
    if during:
        sm = [rep["sample_micros"] / 1000 for _, _, rep, _ in during]
        read_ms = [(rep.get("allocator") or {}).get("read_micros", 0) / 1000 for rep in reads]
        text = (f"figure 8: with the agent, {len(during)} samples ran during the probes: one sample p50 "
                f"{pct(sm, 50):.2f} ms, max {max(sm):.2f} ms; {len(reads)} of them read the allocator's statistics"
                + (f" (allocator.read_micros: {', '.join(f'{x:.1f}' for x in read_ms)} ms)" if read_ms and
                   len(reads) < len(during) else ""))
        phases = phase_times([p for _, _, _, p in during if p])
        pname = allocator_phase(phases) if phases else None
        if pname:
            xs = [d.get(pname, 0) / 1000 for d in phases]
            text += f"; its `{pname}` phase mean {sum(xs) / len(xs):.2f} ms, max {max(xs):.2f} ms"
        note(text + f". Of the {slow_all} slowest calls recorded in those runs (8 a run), {slow_in} began during a sample")
    else:
        note("figure 8: with the agent, no sample ran during the probes (is the agent loaded? see target/bench/logs/malloc-latency-*)")
