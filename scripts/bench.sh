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
py note "figure 1: with the agent, the final report at JVM exit (VMDeath) is a full sample; in 5 hello-world runs it took $(cat "$out"/logs/hello-*.json | py exit-sample)"

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
