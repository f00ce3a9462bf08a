"""Figure 2: the time of one sample against RSS (256 MiB to 8 GiB, NMT off
and summary), and on a fragmented glibc heap (over 400,000 free chunks): the
allocator's part of it, amortised, and what makes it long."""
import ctypes
import glob
import json
import os
import re
import subprocess
import sys
import threading
import time

from procs import read_reports, read_time, stop, vmrss, wait_line
from results import OUT, note, row
from stats import MIB, fmt_ratio, median, pct, ratio_ci


SKIP = 5  # the first samples after the workload is ready: start-up (class loading, JIT)


def mem_available():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def rollup(pid, field):
    """A field of /proc/PID/smaps_rollup, bytes (0 when absent)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def phase_times(lines):
    """JMAGENT_DEBUG_TIMING lines ('sample phases: jvm 660us, status 12us,
    ...') as one {phase: us} per line, whatever the phases are called."""
    out = []
    for l in lines:
        d = {}
        for part in l.split("sample phases:", 1)[1].split(","):
            m = re.match(r"\s*(\S+) (\d+)us", part)
            if m:
                d[m.group(1)] = d.get(m.group(1), 0) + int(m.group(2))
        out.append(d)
    return out


def allocator_phase(phases):
    """The name of the allocator's phase: 'allocator', else the first one
    naming it ('alloc...')."""
    names = [k for d in phases for k in d]
    if "allocator" in names:
        return "allocator"
    return next((k for k in names if "alloc" in k), None)


def fresh_read(report):
    """Whether this sample read the allocator's statistics itself: an agent
    that reuses an expensive reading says how old it is (allocator.age_ms);
    one that does not reads them at every sample."""
    a = report.get("allocator") or {}
    return a.get("age_ms", 0) == 0


def amortised(xs, fresh):
    """The mean of the allocator phase per sample over whole reading cycles
    (from the first sample that read the statistics to the last, that one
    excluded): (mean, cycles, samples, exact). Over all samples when every
    sample read them. With one reading in the window, the mean from it to
    the end, an upper bound (its cycle goes on after the window; exact
    False). None when no sample read them."""
    idx = [i for i, f in enumerate(fresh) if f]
    if len(idx) == len(xs):
        return sum(xs) / len(xs), len(xs), len(xs), True
    if not idx:
        return None, 0, 0, False
    if len(idx) == 1:
        span = xs[idx[0]:]
        return sum(span) / len(span), 0, len(span), False
    span = xs[idx[0]:idx[-1]]
    return sum(span) / len(span), len(idx) - 1, len(span), True


def sample_cost(label, count, target):
    """Figure 2: runs the command after '--' until `count` samples (after the
    workload is ready, the first SKIP skipped) are in the log, then reads
    the JVM's smaps from here to time it. Options (key=value, between
    TARGET_MS and '--'):
      p99x=K        also target p99 <= K x p50
      id=NAME       keep this case's sample times (for base=)
      base=NAME     the ratio column: this p50 over case NAME's (95% bootstrap interval)
      avail=GIB     skip (a row says why) when MemAvailable is under GIB GiB
      nothp=1       no transparent huge pages for the JVM (prctl PR_SET_THP_DISABLE, inherited)
      alloc=MS      a second row: the allocator phase (JMAGENT_DEBUG_TIMING) amortised,
                    its mean over the samples, against MS
      chunks=N      the free chunks the case is meant to have (the label says when fewer)
      reads=K       with alloc=: also wait (up to wall=) until K samples after the skipped
                    ones read the allocator's statistics (an agent reusing an expensive
                    reading reads them only every so often), and use every sample that came
      wall=S        stop waiting for samples after S s (default 30 + COUNT s): n in the row says how many came"""
    argv = sys.argv[sys.argv.index("--") + 1:]
    opts = dict(a.split("=", 1) for a in sys.argv[5:sys.argv.index("--")])
    p99x = float(opts["p99x"]) if "p99x" in opts else None
    goal = []
    if target:
        goal.append(f"p50 ≤ {target:g} ms")
    if p99x:
        goal.append(f"p99 ≤ {p99x:g}× p50")
    goal = ", ".join(goal)
    if "avail" in opts and mem_available() < float(opts["avail"]) * (1 << 30):
        row(2, f"one sample, {label}",
            f"skipped: MemAvailable {mem_available() / (1 << 30):.1f} GiB, under the {opts['avail']} GiB this case needs",
            "", goal, "")
        return
    log = [a for a in argv if "log=" in a][0].split("log=")[1].split(",")[0]
    # JMAGENT_DEBUG_TIMING (when the agent has it): one line per sample on
    # stderr with the time of each collection phase.
    err_path = log + ".stderr"
    err = open(err_path, "w")
    pre = None
    if opts.get("nothp") == "1":
        libc = ctypes.CDLL(None, use_errno=True)
        pre = lambda: libc.prctl(41, 1, 0, 0, 0)  # PR_SET_THP_DISABLE: inherited by fork and execve
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True, preexec_fn=pre,
                            env=dict(os.environ, JMAGENT_DEBUG_TIMING="1"))
    try:
        ready = wait_line(proc, "ready")
        parts = ready.split()
        # Fragment prints when it was ready; Workload does not (now, then).
        ready_ms = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else int(time.time() * 1000) - 50
        deadline = time.time() + (float(opts["wall"]) if "wall" in opts else 30 + count * 1.0)
        reads = int(opts.get("reads", 0))
        while time.time() < deadline:
            rs = [r for r in read_reports(log) if r["timestamp_ms"] >= ready_ms and not r["final"]]
            if len(rs) >= count + SKIP and sum(map(fresh_read, rs[SKIP:])) >= reads:
                break
            time.sleep(0.25)
        big = vmrss(proc.pid) > (2 << 30)  # a read of an 8 GiB process's smaps is ~0.3 s: fewer
        smaps = read_time(f"/proc/{proc.pid}/smaps", 5 if big else 20)
        tasks = glob.glob(f"/proc/{proc.pid}/task/*/syscall")
        sc = []
        for _ in range(20):
            t = time.perf_counter()
            for path in tasks:
                try:
                    with open(path, "rb") as f:
                        f.read()
                except OSError:
                    pass
            sc.append(time.perf_counter() - t)
        syscall = median(sc)
        mappings = sum(1 for l in open(f"/proc/{proc.pid}/maps"))
        rss = vmrss(proc.pid)
        thp = rollup(proc.pid, "AnonHugePages")
    finally:
        stop(proc)
        err.close()
    reports = read_reports(log)
    picked = [i for i, r in enumerate(reports) if r["timestamp_ms"] >= ready_ms and not r["final"]][SKIP:]
    if not reads:
        picked = picked[:count]
    rs = [reports[i] for i in picked]
    phase_lines = [l for l in open(err_path) if "sample phases:" in l]
    if picked and len(phase_lines) in (len(reports), len(reports) + 1):
        # One phase line per report, in order (the final report's line may
        # be on stderr without its report in the log): the same samples.
        phase_lines = [phase_lines[i] for i in picked]
    else:
        phase_lines = phase_lines[-(count + 1):-1]  # about the samples measured, not the final report
    phases = phase_times(phase_lines)
    if phases:
        names = list(dict.fromkeys(k for d in phases for k in d))
        note(f"figure 2, {label}: where a sample's time goes (JMAGENT_DEBUG_TIMING, median per phase over "
             f"{len(phase_lines)} samples): " +
             ", ".join(f"{k} {median([d.get(k, 0) for d in phases]) / 1000:.2f} ms" for k in names) +
             " (jvm = attaching the sampler thread, the MXBean probe and NMT)")
    if not rs:
        row(2, f"one sample, {label}", "no samples in the log", "", goal, "")
        return
    us = [r["sample_micros"] for r in rs]
    # What the agent said last (its freshest reading of the allocator).
    last = rs[-1].get("allocator") or {}
    chunks, arenas, age = last.get("free_chunks") or 0, last.get("arenas") or 0, last.get("age_ms") or 0
    stale = f" as of {age / 1000:.1f} s before" if age > 1000 else ""
    freed = re.search(r"freed=(\d+)", ready)
    freed = f"; the harness freed {int(freed.group(1)):,} blocks" if freed else ""
    p50, p99 = pct(us, 50) / 1000, pct(us, 99) / 1000
    missed = []
    if target and p50 > target:
        missed.append("p50")
    if p99x and p99 > p99x * p50:
        missed.append(f"p99 = {p99 / p50:.1f}× p50")
    met = ("**missed** (" + "; ".join(missed) + ")" if missed else "met") if goal else ""
    ratio = ""
    keep = lambda name: os.path.join(OUT, "logs", "sample-cost-" + re.sub(r"[^A-Za-z0-9]+", "-", name) + ".json")
    if "id" in opts:
        with open(keep(opts["id"]), "w") as f:
            json.dump({"label": label, "us": us}, f)
    if "base" in opts and os.path.exists(keep(opts["base"])):
        base = json.load(open(keep(opts["base"])))
        lo, hi = ratio_ci(base["us"], us)
        ratio = fmt_ratio(median(us) / median(base["us"]), lo, hi) + f" p50 vs {opts['base']}"
    short = ""
    if "chunks" in opts and chunks < int(opts["chunks"]):
        short = f", fewer than the {int(opts['chunks']):,} asked for"
    row(2, f"one sample, {label} (glibc: {chunks:,.0f} free chunks{stale}{short}, {arenas:.0f} arenas{freed}; "
           f"RSS {rss / MIB:.0f} MiB)",
        f"p50 {p50:.2f} ms, p99 {p99:.2f} ms (n={len(us)})", ratio, goal, met)
    if "alloc" in opts:
        name = allocator_phase(phases)
        budget = float(opts["alloc"])
        if name is None:
            row(2, f"allocator part of one sample, amortised, {label}",
                "no allocator phase in the JMAGENT_DEBUG_TIMING lines" +
                (f" (phases: {', '.join(names)})" if phases else " (none printed)"), "", f"mean ≤ {budget:g} ms", "")
        else:
            xs = [d.get(name, 0) / 1000 for d in phases]
            fresh = [fresh_read(r) for r in rs] if len(phases) == len(rs) else [True] * len(xs)
            mean, cycles, n, exact = amortised(xs, fresh)
            read_ms = [(r.get("allocator") or {}).get("read_micros", 0) / 1000 for r, f in zip(rs, fresh) if f]
            spread = (f"p50 {pct(xs, 50):.2f} ms, p99 {pct(xs, 99):.2f} ms, max {max(xs):.2f} ms over {len(xs)} samples"
                      + (f"; {len(read_ms)} of them read the statistics (allocator.read_micros p50 "
                         f"{pct(read_ms, 50):.2f} ms)" if read_ms and len(read_ms) < len(xs) else ""))
            what = f"allocator part of one sample (phase `{name}`), amortised"
            if mean is None:
                row(2, f"{what}, {label} ({chunks:,.0f} free chunks)",
                    f"not measured: no sample read the statistics in the window ({spread}; the agent reused a "
                    f"reading {age / 1000:.1f} s old)", "", f"mean ≤ {budget:g} ms",
                    "not resolved (no reading in the window)")
            elif not exact:
                row(2, f"{what}: mean from the one reading in the window to its end ({n} samples; an upper bound, "
                       f"the reading's cycle goes on), {label} ({chunks:,.0f} free chunks)",
                    f"mean ≤ {mean:.2f} ms ({spread})", "", f"mean ≤ {budget:g} ms",
                    "met" if mean <= budget else "not resolved (an upper bound over the target)")
            else:
                over = f"{n} samples" if cycles == n else f"{cycles} whole reading cycle(s), {n} samples"
                row(2, f"{what}: mean over {over}, {label} ({chunks:,.0f} free chunks)",
                    f"mean {mean:.2f} ms ({spread})", "",
                    f"mean ≤ {budget:g} ms", "met" if mean <= budget else "**missed**")
    note(f"figure 2, {label}: reading this JVM's /proc/PID/smaps ({mappings} mappings, RSS {rss / MIB:.0f} MiB, "
         f"AnonHugePages {thp / MIB:.0f} MiB) from outside takes {smaps * 1000:.2f} ms (median of {5 if big else 20} "
         f"reads), and the {len(tasks)} threads' /proc/PID/task/*/syscall {syscall * 1000:.2f} ms (median of 20)")


def malloc_walk(threads, blocks):
    """Times glibc's mallinfo2() and malloc_info() in this (python) process
    after fragmenting its heap the way Fragment.java does: the cost of the
    two calls the agent makes per sample, apart from everything else."""
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]

    class Mallinfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in
                    ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
    libc.mallinfo2.restype = Mallinfo2
    libc.fopen.restype = ctypes.c_void_p
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    kept = []
    barrier = threading.Barrier(threads)

    def work(tid):
        barrier.wait()  # all threads alive at once: one arena each
        ptrs = [libc.malloc(32 + (i * 7919 + tid * 131) % 481) for i in range(blocks)]
        for i in range(0, blocks, 2):
            libc.free(ptrs[i])
        kept.append(ptrs[1::2])
    ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()

    def timed(f, runs=15):
        xs = []
        for _ in range(runs):
            t = time.perf_counter()
            f()
            xs.append(time.perf_counter() - t)
        return median(xs)
    info = libc.mallinfo2()
    devnull = libc.fopen(b"/dev/null", b"w")
    t_info2 = timed(lambda: libc.mallinfo2())
    t_xml = timed(lambda: libc.malloc_info(0, devnull))
    libc.fclose(devnull)
    note(f"figure 2, cause: in a python process with the same fragmentation ({threads} threads x {blocks} blocks, "
         f"every other one freed; glibc reports {info.ordblks + info.smblks:,} free chunks), mallinfo2() takes "
         f"{t_info2 * 1000:.2f} ms and malloc_info() {t_xml * 1000:.2f} ms (medians of 15 calls): both walk every free chunk")

