#!/usr/bin/env bash
# What jmagent costs the process it lives in (issue 6): start-up, the time of
# one sample, the agent's own memory, the throughput of a native-allocation
# heavy workload, jmcmd against jcmd, trim=auto against the JDK's
# -XX:TrimNativeHeapInterval. Prints one markdown table (stdout) and notes
# measured in the same run; progress and the tools' own output go to stderr
# and target/bench/.
#
#   scripts/bench.sh            # ~9 minutes on 2 cores
#   scripts/bench.sh --quick    # ~2.5 minutes, fewer runs and samples
#
# Tools: hyperfine (installed with apt-get when missing), /usr/bin/time -v
# (package time), python3 (statistics, JSON, /proc), the JDK's java and jcmd
# (JAVA_HOME, default /usr/lib/jvm/java-17-openjdk-amd64), and the harnesses
# in examples/src/io/jmagent/examples/bench/. Ratios compare commands
# measured side by side in the same run: hyperfine runs them in rounds
# (every command once per round, several rounds), so load that comes and
# goes hits them alike; brackets are 95% bootstrap intervals of the ratio of
# medians. The agent and jmcmd are copied to target/bench/bin first, so a
# concurrent rebuild of target/release does not change them mid-run.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
for arg in "$@"; do
    case $arg in
        --quick) quick=1 ;;
        -h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench.sh: unknown argument '$arg' (accepted: --quick)" >&2; exit 2 ;;
    esac
done

java_home=${JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}
java=$java_home/bin/java
jcmd=$java_home/bin/jcmd
out=$PWD/target/bench
say() { echo "bench: $*" >&2; }

# --- tools -------------------------------------------------------------------
need_pkg() { # command package
    command -v "$1" >/dev/null 2>&1 && return 0
    say "installing $2 (apt-get)"
    local sudo=
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get install -y -q "$2" >&2 || { $sudo apt-get update -q >&2 && $sudo apt-get install -y -q "$2" >&2; }
}
need_pkg hyperfine hyperfine
[ -x /usr/bin/time ] || need_pkg /usr/bin/time time
command -v python3 >/dev/null || { echo "bench.sh: python3 is needed" >&2; exit 1; }
[ -x "$java" ] || { echo "bench.sh: no JDK at $java_home (set JAVA_HOME)" >&2; exit 1; }

# --- build ---------------------------------------------------------------------
built_from="git $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- native java-agent examples tests/native Cargo.toml Cargo.lock 2>/dev/null || echo ' + uncommitted changes in native/, java-agent/, examples/ or Cargo files')"
rm -rf "$out"
mkdir -p "$out/bin" "$out/classes" "$out/logs" "$out/hf"
say "cargo build --release --workspace"
if ! cargo build --release -q --workspace >&2; then
    say "the workspace does not build; building the agent alone (-p jmagent)"
    cargo build --release -q -p jmagent >&2
fi
# Copies: others may rebuild target/release while the benchmark runs.
cp target/release/libjmagent.so "$out/bin/"
[ -x target/release/jmcmd ] && cp target/release/jmcmd "$out/bin/"
agent=$out/bin/libjmagent.so
say "javac --release 11 (examples)"
"$java_home/bin/javac" --release 11 -d "$out/classes" \
    examples/src/io/jmagent/examples/Workload.java examples/src/io/jmagent/examples/bench/*.java
if [ -f examples/src/io/jmagent/examples/scenarios/Fragmentation.java ]; then
    "$java_home/bin/javac" --release 11 -d "$out/classes" examples/src/io/jmagent/examples/scenarios/*.java >&2 ||
        say "the scenarios do not compile (figure 6 will be skipped)"
fi
inc=$java_home/include
gcc -shared -fPIC -O2 -I"$inc" -I"$inc/linux" -o "$out/bin/libjmagent_testlib.so" tests/native/testlib.c
cp=$out/classes

if [ $quick = 1 ]; then
    start_rounds=5 start_runs=4          # 20 runs each
    sample_count=50                      # samples per case (figure 2)
    own_samples=1000 jit_samples=1000    # figure 3
    churn_rounds=400 tp_rounds=8 tp_runs=1
    client_runs=10 rss_runs=3
    frag_seconds=40
else
    start_rounds=10 start_runs=3         # 30 runs each
    sample_count=300
    own_samples=10000 jit_samples=2000
    churn_rounds=2000 tp_rounds=12 tp_runs=1
    client_runs=20 rss_runs=5
    frag_seconds=130
fi

cat >"$out/bench.py" <<'PY'
"""Statistics and process handling for scripts/bench.sh (stdlib only)."""
import ctypes, glob, json, math, os, random, re, signal, subprocess, sys, threading, time

OUT = os.environ["BENCH_OUT"]
ROWS = os.path.join(OUT, "rows.md")
NOTES = os.path.join(OUT, "notes.md")
MIB = 1 << 20


def row(*cells):
    with open(ROWS, "a") as f:
        f.write("| " + " | ".join(str(c) for c in cells) + " |\n")


def note(text):
    with open(NOTES, "a") as f:
        f.write("- " + text + "\n")
    print("bench: " + text, file=sys.stderr)


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


def read_reports(path):
    reports = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    reports.append(json.loads(line))
                except ValueError:
                    pass  # a line cut by the process's end
    return reports


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def vmrss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def read_time(path, runs=20):
    """Median seconds one read of a /proc file takes (open, read all, close)."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        with open(path, "rb") as f:
            f.read()
        times.append(time.perf_counter() - t)
    return median(times)


def wait_line(proc, prefix, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"process {proc.pid} ended before printing '{prefix}'")
        if line.startswith(prefix):
            return line
    raise RuntimeError(f"no '{prefix}' from {proc.pid} in {timeout} s")


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def sample_cost(label, count, target):
    """Figure 2: runs the command after '--' until `count` samples (after the
    workload is ready, the first 3 skipped) are in the log, then reads the
    JVM's smaps from here to time it."""
    argv = sys.argv[sys.argv.index("--") + 1:]
    log = [a for a in argv if "log=" in a][0].split("log=")[1].split(",")[0]
    # JMAGENT_DEBUG_TIMING (when the agent has it): one line per sample on
    # stderr with the time of each collection phase.
    err_path = log + ".stderr"
    err = open(err_path, "w")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True,
                            env=dict(os.environ, JMAGENT_DEBUG_TIMING="1"))
    try:
        ready = wait_line(proc, "ready")
        parts = ready.split()
        ready_ms = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        deadline = time.time() + 30 + count * 1.0
        while time.time() < deadline:
            rs = [r for r in read_reports(log) if r["timestamp_ms"] >= ready_ms and not r["final"]]
            if len(rs) >= count + 3:
                break
            time.sleep(0.25)
        smaps = read_time(f"/proc/{proc.pid}/smaps")
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
    finally:
        stop(proc)
        err.close()
    rs = [r for r in read_reports(log) if r["timestamp_ms"] >= ready_ms and not r["final"]][3:3 + count]
    phase_lines = [l.split("sample phases:", 1)[1] for l in open(err_path) if "sample phases:" in l]
    phase_lines = phase_lines[-(count + 1):-1]  # the samples measured, not the final report
    phases = {}
    for l in phase_lines:
        for part in l.split(","):
            m = re.match(r"\s*(\S+) (\d+)us", part)
            if m:
                phases.setdefault(m.group(1), []).append(int(m.group(2)))
    if phases:
        note(f"figure 2, {label}: where a sample's time goes (JMAGENT_DEBUG_TIMING, median per phase over "
             f"{len(phase_lines)} samples): " + ", ".join(f"{k} {median(v) / 1000:.2f} ms" for k, v in phases.items()) +
             " (jvm = attaching the sampler thread, the MXBean probe and NMT)")
    if not rs:
        row(2, f"one sample, {label}", "no samples in the log", "", "", "")
        return
    us = [r["sample_micros"] for r in rs]
    chunks = median([r["allocator"]["free_chunks"] or 0 for r in rs])
    arenas = median([r["allocator"]["arenas"] or 0 for r in rs])
    p50, p99 = pct(us, 50) / 1000, pct(us, 99) / 1000
    met = ""
    if target:
        met = "met" if p50 <= target else "**missed**"
    row(2, f"one sample, {label} (glibc: {chunks:,.0f} free chunks, {arenas:.0f} arenas; RSS {rss / MIB:.0f} MiB)",
        f"p50 {p50:.2f} ms, p99 {p99:.2f} ms (n={len(us)})", "", f"p50 ≤ {target} ms" if target else "", met)
    note(f"figure 2, {label}: reading this JVM's /proc/PID/smaps ({mappings} mappings, RSS {rss / MIB:.0f} MiB) "
         f"from outside takes {smaps * 1000:.2f} ms, and the {len(tasks)} threads' /proc/PID/task/*/syscall "
         f"{syscall * 1000:.2f} ms (medians of 20 reads)")


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


def trim(seconds):
    """Figure 6: the Fragmentation scenario three ways, side by side
    (concurrently: it is paced, so its wall time is fixed; what differs is
    the RSS it ends with and the CPU time the same work took)."""
    java, agent, cp = sys.argv[3], sys.argv[4], sys.argv[5]
    cases = [
        ("no trimming", []),
        ("jmagent trim=auto (interval=10s)",
         [f"-agentpath:{agent}=trim=auto,interval=10s,format=json,log={os.path.join(OUT, 'logs', 'trim-auto.json')}"]),
        ("-XX:TrimNativeHeapInterval=1000", ["-XX:TrimNativeHeapInterval=1000"]),
    ]
    procs = []
    for i, (name, flags) in enumerate(cases):
        tv = os.path.join(OUT, "logs", f"trim-{i}.time")
        so = open(os.path.join(OUT, "logs", f"trim-{i}.out"), "w")
        p = subprocess.Popen(["/usr/bin/time", "-v", "-o", tv, java] + flags +
                             ["-cp", cp, "io.jmagent.examples.scenarios.Fragmentation", f"seconds={seconds}"],
                             stdout=so, stderr=subprocess.STDOUT)
        procs.append((name, p, tv, so.name))
    results = []
    for name, p, tv, so in procs:
        p.wait()
        text = open(tv).read()
        cpu = float(re.search(r"User time \(seconds\): ([\d.]+)", text).group(1)) + \
            float(re.search(r"System time \(seconds\): ([\d.]+)", text).group(1))
        maxrss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) * 1024
        lines = [l for l in open(so) if re.match(r"t=\d+s rss=", l)]
        end = float(re.search(r"rss=([\d.]+)MiB", lines[-1]).group(1)) if lines else float("nan")
        last_t = lines[-1].split()[0] if lines else "?"
        results.append((name, cpu, maxrss, end, last_t, p.returncode))
    base_cpu = results[0][1]
    for name, cpu, maxrss, end, last_t, rc in results:
        row(6, f"`Fragmentation seconds={seconds}`, {name}: RSS at the end ({last_t}); peak",
            f"{end:.0f} MiB; peak {maxrss / MIB:.0f} MiB" + ("" if rc == 0 else f" (exit {rc})"), "", "", "")
        row(6, f"`Fragmentation seconds={seconds}`, {name}: CPU time (user+sys) for the same paced work",
            f"{cpu:.2f} s", f"{cpu / base_cpu:.3f}×", "", "")
    auto = os.path.join(OUT, "logs", "trim-auto.json")
    trims = [r["auto_trim"] for r in read_reports(auto) if r.get("auto_trim")]
    if trims:
        note(f"figure 6: trim=auto trimmed {len(trims)} time(s): " + "; ".join(json.dumps(t, sort_keys=True) for t in trims))
    else:
        note("figure 6: trim=auto did not trim in this run (retained free stayed under its threshold, or under a minute since the last trim)")


def table():
    print("| # | measurement | figure | ratio [95% CI] | target | target met? |")
    print("|---|---|---|---|---|---|")
    print(open(ROWS).read(), end="")
    if os.path.exists(NOTES):
        print("\nNotes (measured in the same run):\n")
        print(open(NOTES).read(), end="")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "row":
        row(*sys.argv[2:])
    elif cmd == "note":
        note(sys.argv[2])
    elif cmd == "startup":
        startup()
    elif cmd == "startup-split":
        startup_split(int(sys.argv[2]))
    elif cmd == "sample-cost":
        sample_cost(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]) if sys.argv[4] else None)
    elif cmd == "malloc-walk":
        malloc_walk(int(sys.argv[2]), int(sys.argv[3]))
    elif cmd == "own-memory":
        own_memory(int(sys.argv[5]), sys.argv[6])
    elif cmd == "own-memory-jit":
        own_memory_jit(int(sys.argv[5]))
    elif cmd == "own-memory-why":
        own_memory_why()
    elif cmd == "throughput":
        throughput()
    elif cmd == "clients":
        clients(sys.argv[2], sys.argv[3])
    elif cmd == "trim":
        trim(int(sys.argv[2]))
    elif cmd == "table":
        table()
    else:
        sys.exit(f"bench.py: unknown command {cmd}")
PY
export BENCH_OUT=$out
py() { python3 "$out/bench.py" "$@"; }

# hyperfine in rounds: every command once per round, `rounds` rounds, all
# runs pooled (bench.py). Round 1 warms up every command.
rounds() { # prefix rounds runs-per-round warmup  -- name command name command ...
    local prefix=$1 n=$2 runs=$3 warm=$4
    shift 5
    local i
    for ((i = 1; i <= n; i++)); do
        hyperfine -N --style basic --runs "$runs" --warmup $((i == 1 ? warm : 0)) \
            --export-json "$out/hf/$prefix-$i.json" "$@" >>"$out/hf/$prefix.txt" 2>&1 ||
            { say "hyperfine failed (see $out/hf/$prefix.txt)"; tail -5 "$out/hf/$prefix.txt" >&2; return 1; }
    done
}

t_start=$(date +%s)
say "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
hello="-cp $cp io.jmagent.examples.bench.Hello"

# --- 1. start-up -----------------------------------------------------------------
say "figure 1: start-up ($((start_rounds * start_runs)) runs each)"
rounds startup "$start_rounds" "$start_runs" 3 -- \
    -n "no agent" "$java $hello" \
    -n "jmagent (default options)" "$java -agentpath:$agent $hello" \
    -n "NMT summary, no agent" "$java -XX:NativeMemoryTracking=summary $hello"
py startup
py startup-split $((start_rounds * start_runs)) "$java" "$agent" "$cp"
# What the agent does at exit: the final report is one full sample.
for i in 1 2 3 4 5; do
    "$java" -agentpath:"$agent=format=json,log=$out/logs/hello-$i.json" $hello >/dev/null
done
py note "figure 1: with the agent, the final report at JVM exit (VMDeath) is a full sample; in 5 hello-world runs it took $(cat "$out"/logs/hello-*.json | python3 -c 'import json,sys; xs=sorted(json.loads(l)["sample_micros"] for l in sys.stdin); print("%.1f ms (median)" % (xs[len(xs)//2]/1000))')"

# --- 2. one sample -------------------------------------------------------------------
say "figure 2: cost of one sample ($sample_count samples per case, interval=100ms)"
wl="-cp $cp io.jmagent.examples.Workload seconds=3600"
py sample-cost "NMT off, idle Workload" "$sample_count" 1 -- \
    "$java" "-agentpath:$agent=interval=100ms,format=json,log=$out/logs/sample-nmt-off.json" $wl
py sample-cost "NMT summary, idle Workload" "$sample_count" "" -- \
    "$java" -XX:NativeMemoryTracking=summary "-agentpath:$agent=interval=100ms,format=json,log=$out/logs/sample-nmt-on.json" $wl
py sample-cost "NMT off, fragmented glibc heap (Fragment: 16 threads x 16000 blocks, every other freed)" "$sample_count" 1 -- \
    "$java" "-agentpath:$agent=interval=100ms,format=json,log=$out/logs/sample-frag.json" \
    -cp "$cp" io.jmagent.examples.bench.Fragment threads=16 blocks=16000 seconds=3600
py malloc-walk 16 16000

# --- 3. own memory ------------------------------------------------------------------
say "figure 3: the agent's own memory ($own_samples samples at interval=1ms)"
jmcmd_bin=
[ -x "$out/bin/jmcmd" ] && jmcmd_bin=$out/bin/jmcmd
py own-memory "$java" "$agent" "$cp" "$own_samples" "$jmcmd_bin"
py own-memory-why "$java" "$jcmd" "$agent" "$cp"
py own-memory-jit "$java" "$agent" "$cp" "$jit_samples"

# --- 4. throughput --------------------------------------------------------------------
say "figure 4: throughput ($((tp_rounds * tp_runs)) runs each, NativeChurn rounds=$churn_rounds)"
# Each run also appends its CPU time (/usr/bin/time) and its work time (NativeChurn log=).
churn() { echo "/usr/bin/time -a -o $out/logs/cpu-$1.txt -f %U,%S $java ${2:-} -cp $cp io.jmagent.examples.bench.NativeChurn threads=4 rounds=$churn_rounds log=$out/logs/work-$1.txt"; }
rounds throughput "$tp_rounds" "$tp_runs" 0 -- \
    -n "no agent" "$(churn no-agent)" \
    -n "jmagent interval=1s" "$(churn jmagent-interval-1s -agentpath:$agent=interval=1s)" \
    -n "jmagent interval=100ms" "$(churn jmagent-interval-100ms -agentpath:$agent=interval=100ms)" \
    -n "NMT summary, no agent" "$(churn nmt-summary-no-agent -XX:NativeMemoryTracking=summary)"
py throughput

# --- 5. jmcmd vs jcmd ---------------------------------------------------------------------
if [ -x "$out/bin/jmcmd" ]; then
    say "figure 5: jmcmd report vs jcmd VM.native_memory summary ($client_runs runs each)"
    "$java" -XX:NativeMemoryTracking=summary -agentpath:"$agent" $wl >"$out/logs/clients.out" 2>&1 &
    target=$!
    for _ in $(seq 100); do grep -q ready "$out/logs/clients.out" 2>/dev/null && break; sleep 0.1; done
    rounds clients 2 $((client_runs / 2)) 2 -- \
        -n "jmcmd report" "$out/bin/jmcmd $target report" \
        -n "jcmd VM.native_memory summary" "$jcmd $target VM.native_memory summary"
    maxrss() { /usr/bin/time -v "$@" 2>&1 >/dev/null | sed -n 's/.*Maximum resident set size (kbytes): //p'; }
    a=() b=()
    for ((i = 0; i < rss_runs; i++)); do
        a+=("$(maxrss "$out/bin/jmcmd" $target report)")
        b+=("$(maxrss "$jcmd" $target VM.native_memory summary)")
    done
    kill "$target"
    wait "$target" || true
    py clients "$(IFS=,; echo "${a[*]}")" "$(IFS=,; echo "${b[*]}")"
else
    say "figure 5 skipped: no jmcmd binary (target/release/jmcmd; crate native/jmcmd)"
    py row 5 "jmcmd report vs jcmd VM.native_memory summary" "skipped: no target/release/jmcmd" "" "≤ 0.2× time, ≤ 0.1× memory" ""
fi

# --- 6. trim=auto vs TrimNativeHeapInterval -------------------------------------------------
if [ -f "$cp/io/jmagent/examples/scenarios/Fragmentation.class" ]; then
    say "figure 6: trim=auto vs -XX:TrimNativeHeapInterval=1000 (Fragmentation, ${frag_seconds}s, side by side)"
    py trim "$frag_seconds" "$java" "$agent" "$cp"
else
    say "figure 6 skipped: no examples/src/io/jmagent/examples/scenarios/Fragmentation.java"
    py row 6 "trim=auto vs -XX:TrimNativeHeapInterval=1000 (Fragmentation scenario)" "skipped: no Fragmentation scenario" "" "" ""
fi

# --- the table --------------------------------------------------------------------------------
py note "run: $(date -u +%Y-%m-%dT%H:%MZ), $(( $(date +%s) - t_start )) s of measurement$([ $quick = 1 ] && echo ', --quick'); load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
jdk=$("$java" -version 2>&1 | sed -n 2p)
echo "Machine: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r), $jdk"
echo "Agent: built from $built_from"
echo
py table
