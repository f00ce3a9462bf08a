"""Figure 3: the agent's own memory, and what its start-up difference and
its drift are made of.

The criterion: VmRSS with the agent minus without ≤ 2 MiB after start-up
and flat (≤ 0.5 MiB drift) over 10,000 samples, measured with both heaps
pretouched so heap garbage cannot hide. Every JVM of the figure runs the
idle Workload with the same fixed, pretouched heap (HEAP), so garbage the
agent leaves in the Java heap can neither show up nor hide as heap growth
in one of them. Four JVMs run side by side with the same flags: two pairs
(no agent, agent), one without the platform MBean server and the agent at
jmx=off, one where the Workload creates the platform MBean server at start
(mbeanserver=true) and the agent has its default options (MXBean
registered): the second pair's difference is the agent's cost with its
MXBean but without the server's, which the two baselines' difference gives.
"""
import os
import re
import subprocess
import sys
import time

from procs import count_lines, read_reports, stop, vmrss, wait_line
from results import OUT, note, row
from stats import MIB, pct

HEAP = ["-Xms64m", "-Xmx64m", "-XX:+AlwaysPreTouch"]
WORKLOAD = ["io.jmagent.examples.Workload", "seconds=3600"]
# name, Workload arguments, agent options (None: no agent; "": the defaults)
JVMS = [
    ("none", [], None),
    ("jmx=off", [], "jmx=off"),
    ("none, MBean server", ["mbeanserver=true"], None),
    ("default", ["mbeanserver=true"], ""),
]
# label, baseline, with the agent
PAIRS = [
    ("jmx=off", "none", "jmx=off"),
    ("default options (MXBean registered; both JVMs with the platform MBean server)", "none, MBean server", "default"),
]
SHORT = {"jmx=off": "jmx=off", "default": "default (MXBean)"}
SETTLE_S = 5  # after launch: reports every 1 s until then


def slug(name):
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


class Four:
    """The four JVMs of JVMS side by side: `extra` JVM flags, each agent
    at `first` (interval=...) with `agent_extra` options."""

    def __init__(self, java, agent, cp, tag, first, extra=(), agent_extra=()):
        self.jvms = {}  # name -> (process, log or None, agent options for jmcmd start or None)
        self.launched = time.time()
        try:
            for name, args, aopts in JVMS:
                cmd = [java] + list(extra) + HEAP
                log = opts = None
                if aopts is not None:
                    log = os.path.join(OUT, "logs", f"{tag}-{slug(name)}.json")
                    opts = ["format=json", f"log={log}"] + list(agent_extra) + ([aopts] if aopts else [])
                    cmd.append(f"-agentpath:{agent}={','.join([first] + opts)}")
                err = open(os.path.join(OUT, "logs", f"{tag}-{slug(name)}.err"), "w")
                p = subprocess.Popen(cmd + ["-cp", cp] + WORKLOAD + args, stdout=subprocess.PIPE,
                                     stderr=err, text=True)
                err.close()
                self.jvms[name] = (p, log, opts)
        except BaseException:
            self.stop()
            raise

    def agents(self):
        return [(n, p, log, opts) for n, (p, log, opts) in self.jvms.items() if log]

    def pid(self, name):
        return self.jvms[name][0].pid

    def settle(self, attach):
        """Until SETTLE_S after launch and 3 reports from every agent; then
        `attach(pid)` in every JVM (an attach listener in all four) and 1 s."""
        for p, _, _ in self.jvms.values():
            wait_line(p, "ready")
        deadline = self.launched + 120
        while time.time() < self.launched + SETTLE_S or any(count_lines(log) < 3 for _, _, log, _ in self.agents()):
            if time.time() > deadline:
                raise RuntimeError("figure 3: an agent wrote fewer than 3 reports in 120 s (see the .err files in logs/)")
            time.sleep(0.1)
        for p, _, _ in self.jvms.values():
            attach(p.pid)
        time.sleep(1)

    def counts(self):
        return {n: count_lines(log) for n, _, log, _ in self.agents()}

    def rss(self):
        return {n: vmrss(p.pid) for n, (p, _, _) in self.jvms.items()}

    def switch(self, jmcmd, interval):
        for _, p, _, opts in self.agents():
            subprocess.run([jmcmd, str(p.pid), "start", interval] + opts, stdout=subprocess.DEVNULL, check=True)

    def wait_samples(self, n0, m, deadline):
        while any(count_lines(log) < n0[n] + m for n, _, log, _ in self.agents()) and time.time() < deadline:
            time.sleep(0.1)
        return {n: c - n0[n] for n, c in self.counts().items()}

    def stop(self):
        for p, _, _ in self.jvms.values():
            stop(p)


def mxbean_instances(jmcmd, pid):
    """Instances of io.jmagent.NativeMemory (the registered MXBean) in the
    JVM's class histogram (a full GC: only once the figures are read)."""
    out = subprocess.run([jmcmd, str(pid), "GC.class_histogram"], stdout=subprocess.PIPE, text=True).stdout
    m = re.search(r"^\s*\d+:\s+(\d+)\s+\d+\s+io\.jmagent\.NativeMemory\s*$", out, re.M)
    return int(m.group(1)) if m else 0


def mib(x):
    return f"{x / MIB:+.2f}"


def own_memory(samples, jmcmd):
    """Figure 3: the four JVMs side by side, VmRSS of all read at the same
    instants. The agents start at interval=1s; once start-up is over (5 s)
    every JVM gets an attach listener (a diagnostic command through jmcmd)
    and the first figure is read; then jmcmd switches the agents to
    interval=1ms and the differences are read again as the samples add up."""
    java, agent, cp = sys.argv[2], sys.argv[3], sys.argv[4]
    first = "interval=1s" if jmcmd else "interval=1ms"
    four = Four(java, agent, cp, "own-memory", first)
    marks = sorted({m for m in (samples // 10, samples // 4, samples // 2, 3 * samples // 4, samples) if m > 0})
    seen = []
    try:
        four.settle(lambda pid: jmcmd and subprocess.run([jmcmd, str(pid), "VM.version"], stdout=subprocess.DEVNULL,
                                                         check=True))
        n0, r0 = four.counts(), four.rss()
        if jmcmd:
            four.switch(jmcmd, "interval=1ms")
        t0 = time.time()
        deadline = t0 + max(300, samples * 0.03)
        for m in marks:
            done = four.wait_samples(n0, m, deadline)
            seen.append((done, four.rss()))
        elapsed = time.time() - t0
        load = open("/proc/loadavg").read().split()[:3]
        beans = {n: mxbean_instances(jmcmd, p.pid) for n, p, _, _ in four.agents()} if jmcmd else {}
    finally:
        four.stop()

    how = (f"idle `Workload`, {' '.join(HEAP)} in both; after start-up: {SETTLE_S} s, reports every 1 s, attach listener in both"
           if jmcmd else f"idle `Workload`, {' '.join(HEAP)} in both; {SETTLE_S} s after launch at interval=1ms, no "
           "attach listener (no jmcmd to switch the interval later)")
    last_done, r1 = seen[-1]
    for label, b, a in PAIRS:
        d0, d1 = r0[a] - r0[b], r1[a] - r1[b]
        n = last_done[a]
        row(3, f"agent's own memory after start-up, {label}: VmRSS with the agent − without ({how})",
            f"{d0 / MIB:+.2f} MiB ({r0[a] / MIB:.1f} vs {r0[b] / MIB:.1f} MiB)", "", "≤ 2 MiB",
            "met" if d0 <= 2 * MIB else "**missed**")
        row(3, f"agent's own memory after {n:,} more samples at interval=1ms, {label}",
            f"{d1 / MIB:+.2f} MiB ({r1[a] / MIB:.1f} vs {r1[b] / MIB:.1f} MiB)", "", "≤ 2 MiB",
            "met" if d1 <= 2 * MIB else "**missed**")
        drifts = [(r[a] - r[b] - d0, k[a]) for k, r in seen]
        worst = max(drifts, key=lambda x: abs(x[0]))
        row(3, f"drift of that difference over the {n:,} samples, {label} (the largest change, up or down, at any "
               f"of {len(seen)} readings)",
            f"{(d1 - d0) / MIB:+.2f} MiB at the end; largest {worst[0] / MIB:+.2f} MiB (at {worst[1]:,} samples)", "",
            "flat (≤ 0.5 MiB)", "met" if abs(worst[0]) <= MIB / 2 else "**missed**")

    def diffs(r):
        return ", ".join(f"{SHORT[a]} {mib(r[a] - r[b])}" for _, b, a in PAIRS)
    rate = ", ".join(f"{SHORT[a]} {last_done[a] / elapsed:,.0f}/s" for _, _, a in PAIRS) if elapsed else "?"
    note("figure 3: difference with − without, MiB, after 0 samples at interval=1ms: " + diffs(r0) + "; " +
         "; ".join(f"{k[PAIRS[0][2]]:,} / {k[PAIRS[1][2]]:,} samples ({SHORT[PAIRS[0][2]]} / {SHORT[PAIRS[1][2]]}): "
                   f"{diffs(r)}" for k, r in seen) +
         f"; {last_done[PAIRS[0][2]]:,} samples took {elapsed:.0f} s ({rate}; load average {' '.join(load)})")
    s0, s1 = r0["none, MBean server"] - r0["none"], r1["none, MBean server"] - r1["none"]
    dflt = r1["default"] - r1["none, MBean server"]
    note(f"figure 3: the platform MBean server's own cost (no agent: Workload mbeanserver=true − without): "
         f"{mib(s0)} MiB after start-up, {mib(s1)} MiB at the end. An application that does not create the server "
         f"pays it too once the agent registers its MXBean (jmx=on, after jmx_delay, 15 s by default): with the "
         f"default options there, the agent costs ≈ {(dflt + s1) / MIB:.1f} MiB (its {dflt / MIB:+.2f} + the server's "
         f"{s1 / MIB:+.2f}); jmx=off avoids the server")
    if beans:
        note("figure 3: io.jmagent.NativeMemory instances (the registered MXBean) in the class histogram at the end: " +
             ", ".join(f"{SHORT[n]} {c}" for n, c in beans.items()) +
             ("" if beans.get("default") == 1 and beans.get("jmx=off") == 0 else " (**not as expected**: default 1, jmx=off 0)"))

    def buckets(r):
        return {x["id"]: x["bytes"] or 0 for x in r["buckets"]}
    for name, _, log, _ in four.agents():
        reports = [r for r in read_reports(log) if not r["final"]]
        first_i, last_i = n0[name] - 1, min(n0[name] + last_done[name], len(reports)) - 1
        if not 0 <= first_i < last_i:
            continue
        ra, rb = reports[first_i], reports[last_i]
        a, b = buckets(ra), buckets(rb)
        parts = [f"{k} {a.get(k, 0) / MIB:.2f} -> {b.get(k, 0) / MIB:.2f}" for k in
                 ("java_heap", "code_cache", "metaspace", "gc", "malloc_in_use", "malloc_retained_free", "thread_stacks",
                  "file_private", "file_mapped")]
        al, bl = ra.get("allocator") or {}, rb.get("allocator") or {}
        note(f"figure 3: the agent's own reports ({SHORT[name]}), report {ra['sequence']} -> {rb['sequence']}, buckets in MiB: "
             f"{', '.join(parts)}; RSS {ra['rss_bytes'] / MIB:.2f} -> {rb['rss_bytes'] / MIB:.2f}; Java heap used "
             f"{ra['jvm']['heap_used_bytes'] / MIB:.1f} -> {rb['jvm']['heap_used_bytes'] / MIB:.1f} of "
             f"{rb['jvm']['heap_committed_bytes'] / MIB:.0f} committed (pretouched: garbage does not change RSS); "
             f"glibc arenas {al.get('arenas')} -> {bl.get('arenas')}; sample_micros p50 "
             f"{pct([r['sample_micros'] for r in reports[first_i + 1:last_i + 1]], 50) / 1000:.2f} ms at interval=1ms")


MAP_STACK = "thread stacks (anonymous, below a guard)"
MAP_ARENA = "glibc thread arenas (anonymous, 64 MiB-aligned)"
MAP_META = "metaspace and class space"
MAP_OTHER = "other anonymous (GC structures, JVM mmaps, the agent's mmaps)"


def smaps_groups(pid, heap, meta=()):
    """Resident KiB of a process by kind of mapping: the Java heap (the
    address range `heap`), metaspace (the ranges `meta`), file mappings by
    file name (the agent's library by segment: code, read-only data,
    data), [heap] (glibc's main arena), executable anonymous memory
    (code cache), thread stacks (a read-write anonymous mapping right above
    a small inaccessible one: the guard pages), glibc's thread arenas
    (read-write, starting at a multiple of 64 MiB with the rest of the
    64 MiB inaccessible), other anonymous."""
    maps = []  # (lo, hi, perms, path, rss KiB)
    for line in open(f"/proc/{pid}/smaps"):
        m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$", line)
        if m:
            maps.append([int(m.group(1), 16), int(m.group(2), 16), m.group(3), m.group(4).strip(), 0])
        elif line.startswith("Rss:") and maps:
            maps[-1][4] = int(line.split()[1])
    groups = {}
    for i, (lo, hi, perms, path, kib) in enumerate(maps):
        prev = maps[i - 1] if i else None
        nxt = maps[i + 1] if i + 1 < len(maps) else None
        if heap and heap[0] <= lo and hi <= heap[1]:
            g = "Java heap"
        elif any(m0 <= lo and hi <= m1 for m0, m1 in meta):
            g = MAP_META
        elif path.startswith("/"):
            g = os.path.basename(path.split(" (deleted)")[0])
            if g.startswith("libjmagent"):  # the agent's own library, by segment
                g += {"r-x": " code", "r--": " read-only data", "rw-": " data"}.get(perms[:3], " " + perms)
        elif path:
            g = path
        elif "x" in perms:
            g = "anonymous executable (code cache)"
        elif perms.startswith("---"):
            continue
        elif prev and prev[1] == lo and not prev[3] and prev[2].startswith("---") and prev[1] - prev[0] <= 64 << 10:
            g = MAP_STACK
        elif lo % (64 << 20) == 0 and nxt and nxt[0] == hi and not nxt[3] and nxt[2].startswith("---") \
                and nxt[1] - lo == 64 << 20:
            g = MAP_ARENA
        else:
            g = MAP_OTHER
        groups[g] = groups.get(g, 0) + kib
    return groups


def nmt_summary(jcmd, pid):
    """Committed KiB by NMT category, and "Total"."""
    text = subprocess.run([jcmd, str(pid), "VM.native_memory", "summary"], stdout=subprocess.PIPE, text=True).stdout
    cats = {m.group(1).strip(): int(m.group(2)) for m in
            re.finditer(r"^-\s+(.+?) \(reserved=\d+KB, committed=(\d+)KB\)", text, re.M)}
    t = re.search(r"^Total: reserved=\d+KB, committed=(\d+)KB", text, re.M)
    cats["Total"] = int(t.group(1)) if t else 0
    return cats


def heap_range(jcmd, pid):
    text = subprocess.run([jcmd, str(pid), "GC.heap_info"], stdout=subprocess.PIPE, text=True).stdout
    m = re.search(r"\[(0x[0-9a-f]+), (0x[0-9a-f]+)\)", text)
    return (int(m.group(1), 16), int(m.group(2), 16)) if m else None


def metaspace_ranges(jcmd, pid):
    """The address ranges of the metaspace's virtual space nodes (class
    space included), from VM.metaspace vslist."""
    text = subprocess.run([jcmd, str(pid), "VM.metaspace", "vslist"], stdout=subprocess.PIPE, text=True).stdout
    return [(int(m.group(1), 16), int(m.group(1), 16) + int(float(m.group(2)) * 1024)) for m in
            re.finditer(r"node #\d+: base (0x[0-9a-f]+): reserved=([0-9.]+) KB", text)]


def top(d, n, floor_kib=64):
    """The n largest entries of {name: KiB} by size of change, as MiB."""
    items = sorted(((v, k) for k, v in d.items() if abs(v) >= floor_kib), key=lambda x: -abs(x[0]))
    return ", ".join(f"{k} {v / 1024:+.2f}" for v, k in items[:n]) or "nothing ≥ 0.06"


def sub(a, b):
    return {k: a.get(k, 0) - b.get(k, 0) for k in set(a) | set(b)}


def own_memory_why(samples, jmcmd):
    """Figure 3, what the differences and their drift are made of: four more
    JVMs as in own_memory, all with NMT summary (the agents with nmt=off, so
    they do what they do without NMT), compared by NMT category (jcmd) and
    by kind of mapping (smaps) after start-up and, when jmcmd can switch
    the agents to interval=1ms, after `samples` more samples."""
    java, jcmd, agent, cp = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
    four = Four(java, agent, cp, "own-memory-nmt", "interval=1s", extra=["-XX:NativeMemoryTracking=summary"],
                agent_extra=["nmt=off"])
    snaps = []

    def snapshot(done):
        nmt = {n: nmt_summary(jcmd, p.pid) for n, (p, _, _) in four.jvms.items()}
        sm = {n: smaps_groups(p.pid, heaps[n], metaspace_ranges(jcmd, p.pid)) for n, (p, _, _) in four.jvms.items()}
        snaps.append((done, four.rss(), nmt, sm))
    try:
        four.settle(lambda pid: subprocess.run([jcmd, str(pid), "VM.version"], stdout=subprocess.DEVNULL, check=True))
        heaps = {n: heap_range(jcmd, p.pid) for n, (p, _, _) in four.jvms.items()}
        n0 = four.counts()
        snapshot(None)
        if jmcmd:
            four.switch(jmcmd, "interval=1ms")
            snapshot(four.wait_samples(n0, samples, time.time() + max(300, samples * 0.03)))
    finally:
        four.stop()

    def made_of(s, b, a):
        _, rss, nmt, sm = s
        return rss[a] - rss[b], sub(nmt[a], nmt[b]), sub(sm[a], sm[b])
    parts = []
    for label, b, a in PAIRS:
        d, n, m = made_of(snaps[0], b, a)
        total = n.pop("Total", 0)
        parts.append(f"{SHORT[a]} − {b}: RSS {d / MIB:+.2f}; NMT committed, total {total / 1024:+.2f}: {top(n, 6)}; "
                     f"by kind of mapping, resident: {top(m, 10)}")
    note(f"figure 3, what the difference after start-up is made of (four more JVMs as above, all with "
         f"-XX:NativeMemoryTracking=summary, the agents with nmt=off; {SETTLE_S} s after launch, attach listener in all), "
         f"MiB: " + "; ".join(parts))
    if len(snaps) > 1:
        done = snaps[1][0]
        parts = []
        for label, b, a in PAIRS:
            d0, n0_, m0 = made_of(snaps[0], b, a)
            d1, n1, m1 = made_of(snaps[1], b, a)
            n, m = sub(n1, n0_), sub(m1, m0)
            total = n.pop("Total", 0)
            parts.append(f"{SHORT[a]} − {b} after {done[a]:,} samples: RSS {(d1 - d0) / MIB:+.2f} (difference "
                         f"{d1 / MIB:+.2f}); NMT committed, total {total / 1024:+.2f}: {top(n, 5)}; by kind of mapping: "
                         f"{top(m, 6)}")
        base = [f"{b} {(snaps[1][1][b] - snaps[0][1][b]) / MIB:+.2f}" for _, b, _ in PAIRS]
        note("figure 3, what the drift is made of (the same JVMs, change of the difference over the samples at "
             "interval=1ms), MiB: " + "; ".join(parts) + f"; the baselines' own RSS moved {', '.join(base)}")


def own_memory_jit(samples):
    """Figure 3, what the drift is made of by JIT: the agent at
    interval=1ms and jmx=off (its sampling alone, no MXBean or MBean
    server) in three JVMs side by side (heaps fixed and pretouched as
    above), with the default JIT (C1 and C2), C1 only, and the interpreter
    only; each one's own reports SETTLE_S after its first one (start-up
    over) and `samples` later."""
    java, agent, cp = sys.argv[2], sys.argv[3], sys.argv[4]
    cases = [("default JIT (C1+C2)", []), ("C1 only (-XX:TieredStopAtLevel=1)", ["-XX:TieredStopAtLevel=1"]),
             ("interpreter only (-Xint)", ["-Xint"])]
    procs = []
    try:
        for i, (name, flags) in enumerate(cases):
            log = os.path.join(OUT, "logs", f"own-memory-jit-{i}.json")
            p = subprocess.Popen([java] + flags + HEAP + [f"-agentpath:{agent}=interval=1ms,jmx=off,format=json,log={log}",
                                                          "-cp", cp] + WORKLOAD, stdout=subprocess.DEVNULL)
            procs.append((name, p, log))
        time.sleep(SETTLE_S + 1)
        start = {log: count_lines(log) for _, _, log in procs}
        deadline = time.time() + max(120, samples * 0.05)
        for _, p, log in procs:
            while count_lines(log) < start[log] + samples + 1 and time.time() < deadline:
                time.sleep(0.2)
    finally:
        for _, p, _ in procs:
            stop(p)
    parts = []
    for name, _, log in procs:
        rs = [r for r in read_reports(log) if not r["final"]]
        if len(rs) < 2:
            continue
        t = rs[0]["timestamp_ms"] + SETTLE_S * 1000
        i = next((j for j, r in enumerate(rs) if r["timestamp_ms"] >= t), len(rs) - 1)
        j = min(i + samples, len(rs) - 1)
        a, b = rs[i], rs[j]

        def get(r, k):
            return next((x["bytes"] or 0 for x in r["buckets"] if x["id"] == k), 0) / MIB
        parts.append(f"{name}, reports {a['sequence']:,} -> {b['sequence']:,}: " +
                     ", ".join(f"{k} {get(a, k):.2f} -> {get(b, k):.2f}" for k in
                               ("malloc_in_use", "malloc_retained_free", "code_cache", "metaspace")) +
                     f", RSS {a['rss_bytes'] / MIB:.2f} -> {b['rss_bytes'] / MIB:.2f} (sample_micros p50 "
                     f"{pct([r['sample_micros'] for r in rs[i + 1:j + 1]] or [0], 50) / 1000:.2f} ms)")
    note(f"figure 3, what the drift is made of by JIT: the agent's own reports {SETTLE_S} s after its first and "
         f"{samples:,} samples later (interval=1ms, jmx=off, three JVMs side by side, {' '.join(HEAP)}), MiB: " +
         "; ".join(parts))
