"""Figure 3: the agent's own memory, and what its start-up difference and
its growth are made of."""
import os
import re
import subprocess
import sys
import time

from procs import count_lines, read_reports, stop, vmrss, wait_line
from results import OUT, note, row
from stats import MIB, pct


def own_memory(samples, jmcmd):
    """Figure 3: the idle Workload without and with the agent, side by side;
    VmRSS of both read at the same instants. The agent starts at interval=1s
    (MXBean registered after 1 s); once start-up is over both JVMs get an
    attach listener (a diagnostic command through jmcmd) and the first
    figure is read; then jmcmd switches the agent to interval=1ms and the
    difference is read again as the samples add up."""
    java, agent, cp = sys.argv[2], sys.argv[3], sys.argv[4]
    log = os.path.join(OUT, "logs", "own-memory.json")
    opts = f"format=json,log={log},jmx_delay=1s"
    wl = ["io.jmagent.examples.Workload", "seconds=3600"]
    first = "interval=1s" if jmcmd else "interval=1ms"
    base = subprocess.Popen([java, "-cp", cp] + wl, stdout=subprocess.PIPE, text=True)
    withp = subprocess.Popen([java, f"-agentpath:{agent}={first},{opts}", "-cp", cp] + wl,
                             stdout=subprocess.PIPE, text=True)
    launched = time.time()
    marks = sorted({samples // 10, samples // 2, samples})
    seen = []
    try:
        wait_line(base, "ready")
        wait_line(withp, "ready")
        while time.time() < launched + 5 or count_lines(log) < 3:
            time.sleep(0.1)
        if jmcmd:
            for pid in (base.pid, withp.pid):
                subprocess.run([jmcmd, str(pid), "VM.version"], stdout=subprocess.DEVNULL, check=True)
            time.sleep(1)
        n0, r0b, r0a = count_lines(log), vmrss(base.pid), vmrss(withp.pid)
        if jmcmd:
            subprocess.run([jmcmd, str(withp.pid), "start", "interval=1ms"] + opts.split(","),
                           stdout=subprocess.DEVNULL, check=True)
        t0 = time.time()
        deadline = t0 + max(300, samples * 0.03)
        for m in marks:
            while count_lines(log) < n0 + m and time.time() < deadline:
                time.sleep(0.1)
            seen.append((count_lines(log) - n0, vmrss(base.pid), vmrss(withp.pid)))
        elapsed = time.time() - t0
    finally:
        stop(withp)
        stop(base)
    reports = [r for r in read_reports(log) if not r["final"]]
    done, r1b, r1a = seen[-1]
    d0, d1 = (r0a - r0b) / MIB, (r1a - r1b) / MIB
    how = ("after start-up: 5 s, reports every 1 s, MXBean registered, attach listener in both" if jmcmd else
           "3 s after start-up at interval=1ms (no jmcmd to switch the interval later)")
    row(3, f"agent's own memory {how} (VmRSS with agent − without, idle `Workload`)",
        f"{d0:+.1f} MiB ({r0a / MIB:.1f} vs {r0b / MIB:.1f} MiB)", "", "≤ 2 MiB", "met" if d0 <= 2 else "**missed**")
    row(3, f"agent's own memory after {done:,} more samples at interval=1ms",
        f"{d1:+.1f} MiB ({r1a / MIB:.1f} vs {r1b / MIB:.1f} MiB)", "", "≤ 2 MiB", "met" if d1 <= 2 else "**missed**")
    grow = d1 - d0
    row(3, f"growth of the difference over those {done:,} samples", f"{grow:+.1f} MiB", "", "flat (≤ 0.5 MiB)",
        "met" if grow <= 0.5 else "**missed**")
    note("figure 3: difference (with − without) after " +
         ", ".join(f"{n:,} samples {(a - b) / MIB:+.1f} MiB" for n, b, a in [(0, r0b, r0a)] + seen) +
         f"; {done:,} samples took {elapsed:.0f} s")

    def buckets(r):
        return {b["id"]: b["bytes"] or 0 for b in r["buckets"]}
    if len(reports) >= n0 >= 1:
        ra, rb = reports[n0 - 1], reports[min(n0 + done, len(reports)) - 1]
        a, b = buckets(ra), buckets(rb)
        parts = [f"{k} {a.get(k, 0) / MIB:.1f} -> {b.get(k, 0) / MIB:.1f}" for k in
                 ("java_heap", "code_cache", "metaspace", "malloc_in_use", "malloc_retained_free", "thread_stacks", "file_private", "file_mapped")]
        note(f"figure 3: the agent's own reports (JVM with the agent), report {ra['sequence']} -> {rb['sequence']}, buckets in MiB: "
             f"{', '.join(parts)}; RSS {ra['rss_bytes'] / MIB:.1f} -> {rb['rss_bytes'] / MIB:.1f}; Java heap used "
             f"{ra['jvm']['heap_used_bytes'] / MIB:.1f} -> {rb['jvm']['heap_used_bytes'] / MIB:.1f} of "
             f"{rb['jvm']['heap_committed_bytes'] / MIB:.0f} committed (garbage the agent's Java probe leaves until a GC)")


def smaps_groups(pid, heap):
    """Resident KiB of a process by kind of mapping: the Java heap (the
    address range `heap`), file mappings by file name, [heap] (glibc's main
    arena), executable anonymous memory (code cache), other anonymous."""
    groups, cur = {}, None
    for line in open(f"/proc/{pid}/smaps"):
        m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$", line)
        if m:
            path = m.group(4).strip()
            lo, hi = int(m.group(1), 16), int(m.group(2), 16)
            if heap and heap[0] <= lo and hi <= heap[1]:
                cur = "Java heap"
            elif path.startswith("/"):
                cur = os.path.basename(path.split(" (deleted)")[0])
            elif path:
                cur = path
            elif "x" in m.group(3):
                cur = "anonymous executable (code cache)"
            else:
                cur = "other anonymous (malloc arenas, metaspace, GC, stacks)"
            continue
        if line.startswith("Rss:") and cur is not None:
            groups[cur] = groups.get(cur, 0) + int(line.split()[1])
    return groups


def own_memory_why():
    """Figure 3, what the start-up difference is made of: the same pair of
    JVMs, both with NMT summary, compared by NMT category (jcmd) and by kind
    of mapping (smaps) 6 s after launch."""
    java, jcmd, agent, cp = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
    wl = ["-XX:NativeMemoryTracking=summary", "-cp", cp, "io.jmagent.examples.Workload", "seconds=3600"]
    log = os.path.join(OUT, "logs", "own-memory-nmt.json")
    base = subprocess.Popen([java] + wl, stdout=subprocess.PIPE, text=True)
    withp = subprocess.Popen([java, f"-agentpath:{agent}=interval=1s,format=json,log={log},jmx_delay=1s"] + wl,
                             stdout=subprocess.PIPE, text=True)
    try:
        wait_line(base, "ready")
        wait_line(withp, "ready")
        time.sleep(6)
        nmt = {}
        for p in (base, withp):
            text = subprocess.run([jcmd, str(p.pid), "VM.native_memory", "summary"], stdout=subprocess.PIPE, text=True).stdout
            cats = {}
            for m in re.finditer(r"^-\s+(.+?) \(reserved=\d+KB, committed=(\d+)KB\)", text, re.M):
                cats[m.group(1).strip()] = int(m.group(2))
            t = re.search(r"^Total: reserved=\d+KB, committed=(\d+)KB", text, re.M)
            cats["Total"] = int(t.group(1)) if t else 0
            nmt[p.pid] = cats
        sm = {}
        for p in (base, withp):
            text = subprocess.run([jcmd, str(p.pid), "GC.heap_info"], stdout=subprocess.PIPE, text=True).stdout
            m = re.search(r"\[(0x[0-9a-f]+), (0x[0-9a-f]+)\)", text)
            sm[p.pid] = smaps_groups(p.pid, (int(m.group(1), 16), int(m.group(2), 16)) if m else None)
        rss = {p.pid: vmrss(p.pid) for p in (base, withp)}
    finally:
        stop(withp)
        stop(base)

    def diff(a, b, top=6):
        d = sorted(((b.get(k, 0) - a.get(k, 0), k) for k in set(a) | set(b)), reverse=True)
        return ", ".join(f"{k} {v / 1024:+.1f}" for v, k in d[:top] if v >= 100)
    note(f"figure 3, what the start-up difference is made of (a second pair of JVMs, both with NMT summary, 6 s after "
         f"launch; RSS difference {(rss[withp.pid] - rss[base.pid]) / MIB:+.1f} MiB): by NMT category, committed MiB: "
         f"{diff(nmt[base.pid], nmt[withp.pid])}; by kind of mapping, resident MiB: {diff(sm[base.pid], sm[withp.pid], 7)}")


def own_memory_jit(samples):
    """Figure 3, what the growth is made of: the agent at interval=1ms in
    three JVMs side by side, with the default JIT (C1 and C2), C1 only, and
    the interpreter only; each one's own reports at sample 5 and `samples`."""
    java, agent, cp = sys.argv[2], sys.argv[3], sys.argv[4]
    cases = [("default JIT (C1+C2)", []), ("C1 only (-XX:TieredStopAtLevel=1)", ["-XX:TieredStopAtLevel=1"]),
             ("interpreter only (-Xint)", ["-Xint"])]
    procs = []
    for i, (name, flags) in enumerate(cases):
        log = os.path.join(OUT, "logs", f"own-memory-jit-{i}.json")
        p = subprocess.Popen([java] + flags + [f"-agentpath:{agent}=interval=1ms,format=json,log={log},jmx_delay=1s",
                                               "-cp", cp, "io.jmagent.examples.Workload", "seconds=3600"],
                             stdout=subprocess.DEVNULL)
        procs.append((name, p, log))
    deadline = time.time() + max(120, samples * 0.05)
    try:
        for _, p, log in procs:
            while count_lines(log) < samples + 1 and time.time() < deadline:
                time.sleep(0.2)
    finally:
        for _, p, _ in procs:
            stop(p)
    parts = []
    for name, _, log in procs:
        rs = [r for r in read_reports(log) if not r["final"]]
        if len(rs) < 6:
            continue
        a, b = rs[4], rs[min(samples, len(rs)) - 1]

        def get(r, k):
            return next((x["bytes"] or 0 for x in r["buckets"] if x["id"] == k), 0) / MIB
        parts.append(f"{name}: malloc_retained_free {get(a, 'malloc_retained_free'):.1f} -> {get(b, 'malloc_retained_free'):.1f}, "
                     f"java_heap {get(a, 'java_heap'):.1f} -> {get(b, 'java_heap'):.1f}, code_cache "
                     f"{get(a, 'code_cache'):.1f} -> {get(b, 'code_cache'):.1f}, RSS {a['rss_bytes'] / MIB:.1f} -> {b['rss_bytes'] / MIB:.1f} "
                     f"(sample_micros p50 {pct([r['sample_micros'] for r in rs[5:b['sequence']]], 50) / 1000:.2f} ms)")
    note(f"figure 3, what the growth is made of: the agent's own reports at sample 5 and sample {samples:,} (interval=1ms, "
         f"three JVMs side by side), MiB: " + "; ".join(parts))

