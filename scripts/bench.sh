#!/usr/bin/env bash
# What jmagent costs the process it lives in (issue 6): start-up, the time of
# one sample, the agent's own memory, the throughput of a native-allocation
# heavy workload, jmcmd against jcmd, trim=auto against the JDK's
# -XX:TrimNativeHeapInterval, a real server (Tomcat 10 under wrk load, agent
# vs none, interleaved runs). Prints one markdown table (stdout) and notes
# measured in the same run; progress and the tools' own output go to stderr
# and target/bench/.
#
#   scripts/bench.sh            # ~9 minutes on 2 cores
#   scripts/bench.sh --quick    # ~2.5 minutes, fewer runs and samples
#   scripts/bench.sh --only=tomcat [--quick]   # figure 7 alone (~5.5 / ~1.5 min)
#   scripts/bench.sh --only=2 [--quick]        # figure 2 alone: one sample at 256 MiB-8 GiB RSS and
#                                              # with over 400,000 free chunks (~5 / ~2.5 min)
#   scripts/bench.sh --only=8 [--quick]        # figure 8 alone: malloc latency beside the sampler (~2 / ~1 min)
#   scripts/bench.sh --only=1 [--quick]        # figure 1 alone: start-up and the report at exit
#   scripts/bench.sh --only=3 [--quick]        # figure 3 alone: the agent's own memory, pretouched heaps (~4-6 / ~1.5 min)
#   BENCH_AGENT=/path/libjmagent.so scripts/bench.sh ...  # that agent (and a jmcmd beside it), no cargo build
#   BENCH_DIR=bench-b scripts/bench.sh ...     # results in target/bench-b/: a second run at the same time
#
# Tools: hyperfine, wrk and tomcat10 (installed with apt-get when missing),
# /usr/bin/time -v (package time), python3 (statistics, JSON, /proc), the
# JDK's java and jcmd (JAVA_HOME, default
# /usr/lib/jvm/java-17-openjdk-amd64), and the harnesses
# in examples/src/io/jmagent/examples/bench/. Ratios compare commands
# measured side by side in the same run: hyperfine runs them in rounds
# (every command once per round, several rounds), so load that comes and
# goes hits them alike; brackets are 95% bootstrap intervals of the ratio of
# medians. The agent and jmcmd are copied to target/bench/bin first, so a
# concurrent rebuild of target/release does not change them mid-run.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0 only=
for arg in "$@"; do
    case $arg in
        --quick) quick=1 ;;
        --only=tomcat | --only=7) only=tomcat ;;
        --only=2 | --only=sample-cost) only=2 ;;
        --only=8 | --only=malloc-latency) only=8 ;;
        --only=3 | --only=own-memory) only=3 ;;
        --only=1 | --only=startup) only=1 ;;
        -h | --help) sed -n '2,/^set /{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench.sh: unknown argument '$arg' (accepted: --quick, --only=1, --only=2, --only=3, --only=tomcat, --only=8)" >&2; exit 2 ;;
    esac
done

java_home=${JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}
java=$java_home/bin/java
jcmd=$java_home/bin/jcmd
bench_dir=${BENCH_DIR:-bench} # a plain name under target/ (removed and refilled by every run)
case $bench_dir in '' | .* | */*) echo "bench.sh: BENCH_DIR must be a plain name (a folder of target/)" >&2; exit 2 ;; esac
out=$PWD/target/$bench_dir
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
need_pkg wrk wrk || say "no wrk (figure 7 will be skipped)"
need_pkg /usr/share/tomcat10/bin/catalina.sh tomcat10 || say "no tomcat10 (figure 7 will be skipped)"
command -v python3 >/dev/null || { echo "bench.sh: python3 is needed" >&2; exit 1; }
[ -x "$java" ] || { echo "bench.sh: no JDK at $java_home (set JAVA_HOME)" >&2; exit 1; }

# --- build ---------------------------------------------------------------------
built_from="git $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- native java-agent examples tests/native Cargo.toml Cargo.lock 2>/dev/null || echo ' + uncommitted changes in native/, java-agent/, examples/ or Cargo files')"
rm -rf "$out"
mkdir -p "$out/bin" "$out/classes" "$out/logs" "$out/hf"
if [ -n "${BENCH_AGENT:-}" ]; then # an agent built earlier: no cargo build
    say "agent: $BENCH_AGENT (BENCH_AGENT)"
    built_from="BENCH_AGENT=$BENCH_AGENT ($(date -u -r "$BENCH_AGENT" +%Y-%m-%dT%H:%MZ))"
    cp "$BENCH_AGENT" "$out/bin/libjmagent.so"
    [ -x "$(dirname "$BENCH_AGENT")/jmcmd" ] && cp "$(dirname "$BENCH_AGENT")/jmcmd" "$out/bin/"
else
say "cargo build --release --workspace"
if ! cargo build --release -q --workspace >&2; then
    say "the workspace does not build; building the agent alone (-p jmagent)"
    cargo build --release -q -p jmagent >&2
fi
# Copies: others may rebuild target/release while the benchmark runs.
cp target/release/libjmagent.so "$out/bin/"
[ -x target/release/jmcmd ] && cp target/release/jmcmd "$out/bin/"
fi
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
    tomcat_pairs=2 tomcat_seconds=8      # figure 7: interleaved pairs, seconds of wrk per run
else
    start_rounds=10 start_runs=3         # 30 runs each
    sample_count=300
    own_samples=10000 jit_samples=2000
    churn_rounds=2000 tp_rounds=12 tp_runs=1
    client_runs=20 rss_runs=5
    frag_seconds=130
    tomcat_pairs=5 tomcat_seconds=20
fi

# The statistics and process handling are Python (scripts/bench/, one module
# per figure; main.py runs one command per step). Run from a copy in
# target/bench/py, like the agent: edits to scripts/ while the benchmark runs
# do not change it mid-run, and no __pycache__ lands in the source tree.
mkdir -p "$out/py"
cp scripts/bench/*.py "$out/py/"
export BENCH_OUT=$out
py() { python3 "$out/py/main.py" "$@"; }

# hyperfine in rounds: every command once per round, `rounds` rounds, all
# runs pooled (stats.pooled). Round 1 warms up every command.
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
# Figures 2 and 8: a glibc heap with over 400,000 free chunks (Fragment: every
# other block freed, 448,000; a few coalesce where threads share an arena).
frag_threads=16 frag_blocks=56000

if [ -z "$only" ] || [ "$only" = 1 ]; then # figure 1
# --- 1. start-up -----------------------------------------------------------------
say "figure 1: start-up ($((start_rounds * start_runs)) runs each)"
rounds startup "$start_rounds" "$start_runs" 3 -- \
    -n "no agent" "$java $hello" \
    -n "jmagent (default options)" "$java -agentpath:$agent $hello" \
    -n "NMT summary, no agent" "$java -XX:NativeMemoryTracking=summary $hello"
py startup
py startup-split $((start_rounds * start_runs)) "$java" "$agent" "$cp"
# What the agent does at exit: the final report is one full sample.
for i in $(seq 1 10); do
    "$java" -agentpath:"$agent=format=json,log=$out/logs/hello-$i.json" $hello >/dev/null
done
cat "$out"/logs/hello-*.json | py exit-sample

fi # figure 1
if [ -z "$only" ] || [ "$only" = 2 ]; then
# --- 2. one sample -------------------------------------------------------------------
# Against RSS: an idle JVM at ~256 MiB, 1 GiB and 8 GiB heaps pretouched
# (8 GiB without transparent huge pages: 4 KiB pages, the most to walk),
# each with NMT off and summary; the ratio is p50 over the 256 MiB case's
# with the same NMT. Then a glibc heap with over 400,000 free chunks: the
# allocator's part of a sample, amortised, against its budget.
# A sampling agent that reuses an expensive allocator reading reads again only
# after a while (the fragmented case waits, up to frag_wall s, for two readings).
if [ $quick = 1 ]; then big_count=30 big_wall=25 frag_wall=45; else big_count=150 big_wall=45 frag_wall=90; fi
say "figure 2: cost of one sample ($sample_count samples per case, $big_count at 1 and 8 GiB; interval=100ms)"
wl="-cp $cp io.jmagent.examples.Workload seconds=3600"
sample_log() { echo "-agentpath:$agent=interval=100ms,format=json,log=$out/logs/sample-$1.json"; }
for nmt in off summary; do
    py sample-cost "NMT $nmt, idle Workload, -Xms200m -Xmx200m -XX:+AlwaysPreTouch (~256 MiB RSS)" "$sample_count" 2 \
        p99x=3 id="256 MiB, NMT $nmt" -- \
        "$java" -XX:NativeMemoryTracking=$nmt -Xms200m -Xmx200m -XX:+AlwaysPreTouch "$(sample_log 256m-nmt-$nmt)" $wl
    py sample-cost "NMT $nmt, idle Workload, 1 GiB heap pretouched" "$big_count" 5 \
        p99x=3 base="256 MiB, NMT $nmt" wall=$big_wall -- \
        "$java" -XX:NativeMemoryTracking=$nmt -Xms1g -Xmx1g -XX:+AlwaysPreTouch "$(sample_log 1g-nmt-$nmt)" $wl
    py sample-cost "NMT $nmt, idle Workload, 8 GiB heap pretouched, no transparent huge pages" "$big_count" 5 \
        p99x=3 base="256 MiB, NMT $nmt" wall=$big_wall avail=12 nothp=1 -- \
        "$java" -XX:NativeMemoryTracking=$nmt -Xms8g -Xmx8g -XX:+AlwaysPreTouch -XX:-UseTransparentHugePages \
        "$(sample_log 8g-nmt-$nmt)" $wl
done
py sample-cost "NMT off, fragmented glibc heap (Fragment: $frag_threads threads x $frag_blocks blocks, every other freed)" \
    "$sample_count" "" alloc=10 chunks=400000 reads=2 wall=$frag_wall -- \
    "$java" "$(sample_log frag)" -cp "$cp" io.jmagent.examples.bench.Fragment threads=$frag_threads blocks=$frag_blocks seconds=3600
py malloc-walk $frag_threads $frag_blocks
fi # figure 2
if [ -z "$only" ] || [ "$only" = 3 ]; then
# --- 3. own memory ------------------------------------------------------------------
# Four idle Workloads side by side, all -Xms64m -Xmx64m -XX:+AlwaysPreTouch:
# none / jmx=off, and none / default options, both of these with the
# platform MBean server created by the Workload (mbeanserver=true).
say "figure 3: the agent's own memory ($own_samples samples at interval=1ms, pretouched heaps)"
jmcmd_bin=
[ -x "$out/bin/jmcmd" ] && jmcmd_bin=$out/bin/jmcmd
py own-memory "$java" "$agent" "$cp" "$own_samples" "$jmcmd_bin"
py own-memory-why "$java" "$jcmd" "$agent" "$cp" "$own_samples" "$jmcmd_bin"
py own-memory-jit "$java" "$agent" "$cp" "$jit_samples"
fi # figure 3
if [ -z "$only" ]; then # figures 4-6

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
fi # figures 4-6

if [ -z "$only" ] || [ "$only" = tomcat ]; then
# --- 7. a real server: Tomcat 10 under wrk ---------------------------------------------------
# Fresh Tomcat per run (CATALINA_BASE under target/bench/tomcat/, 127.0.0.1
# only), none and agent alternating; the python step stops every Tomcat it
# starts, also on an error or an interrupt.
if command -v wrk >/dev/null && [ -x /usr/share/tomcat10/bin/catalina.sh ]; then
    say "figure 7: Tomcat 10 under wrk, no agent vs jmagent interval=1s ($tomcat_pairs interleaved pairs, ${tomcat_seconds}s of load each)"
    py tomcat "$tomcat_pairs" "$tomcat_seconds" "$java" "$agent"
else
    say "figure 7 skipped: needs wrk and tomcat10 (apt-get install wrk tomcat10)"
    py row 7 "Tomcat 10 under wrk, jmagent interval=1s vs no agent" "skipped: no wrk or tomcat10" "" "within run-to-run noise" ""
fi
fi # figure 7

# --- 8. malloc latency beside the sampler ------------------------------------------------------
# MallocLatency: the heap of figure 2's fragmented case, and a native pthread
# (the test library's probe) timing every malloc and free of 2-64 KiB;
# runs with the agent (interval=1s) and without alternate.
if [ -z "$only" ] || [ "$only" = 8 ]; then
    if [ $quick = 1 ]; then lat_rounds=2 lat_seconds=6; else lat_rounds=3 lat_seconds=15; fi
    say "figure 8: malloc latency beside the sampler ($lat_rounds rounds of ${lat_seconds}s with and without the agent, interval=1s)"
    py malloc-latency "$lat_rounds" "$lat_seconds" 1s $frag_threads $frag_blocks "$java" "$agent" "$cp" "$out/bin/libjmagent_testlib.so"
fi

# --- the table --------------------------------------------------------------------------------
py note "run: $(date -u +%Y-%m-%dT%H:%MZ), $(( $(date +%s) - t_start )) s of measurement$([ $quick = 1 ] && echo ', --quick'); load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
jdk=$("$java" -version 2>&1 | sed -n 2p)
echo "Machine: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r), $jdk"
echo "Agent: built from $built_from"
echo
py table
