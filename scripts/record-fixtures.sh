#!/usr/bin/env bash
# Records the diagnosis replay fixtures (tests/fixtures/replay/*.jsonl) again
# from the scenario workloads, with the agent of the working tree. Run it
# whenever a verdict rule changes on purpose: native/jmagent-core/tests/replay.rs
# requires each fixture's logged verdicts to be what the rules give.
#
#   scripts/record-fixtures.sh [--slow]
#
# The agent is built once and copied, so that a rebuild during the recording
# cannot replace the library under a running JVM. About 10 minutes; --slow
# also records the 12-minute log of SlowNativeLeak at its real 2 MiB/min
# (interval=5s, window=5m).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -q -p jmagent
agent=$(mktemp /tmp/libjmagent-fixtures.XXXXXX.so)
trap 'rm -f "$agent"' EXIT
cp target/release/libjmagent.so "$agent"
lib=/usr/lib/x86_64-linux-gnu

# record <Name> <fixture> <seconds> <allocator> [extra scenario arguments]
record() {
  local name=$1 fixture=$2 seconds=$3 alloc=$4
  shift 4
  local preload=
  case $alloc in
    jemalloc) preload=$lib/libjemalloc.so.2 ;;
    tcmalloc) preload=$lib/libtcmalloc_minimal.so.4 ;;
    mimalloc) preload=$lib/libmimalloc.so.2 ;;
  esac
  local out=tests/fixtures/replay/$fixture.jsonl
  rm -f "$out"
  JMAGENT_AGENT=$agent LD_PRELOAD=$preload scripts/scenario.sh "$name" \
    "interval=500ms,window=10s,format=json,jmx=off,log=$PWD/$out" -- "$@" "seconds=$seconds" >/dev/null
  echo "$fixture: $(wc -l < "$out") reports"
}

record Healthy healthy-glibc 24 glibc
record Sawtooth sawtooth-glibc 26 glibc
record HeapGrowth heap-growth-glibc 26 glibc
record DirectBufferGrowth direct-buffer-growth-glibc 34 glibc
record NativeLibraryGrowth native-library-growth-glibc 34 glibc
record RareCollections rare-collections-glibc 30 glibc
for alloc in glibc jemalloc tcmalloc mimalloc; do
  record Fragmentation "fragmentation-$alloc" 36 "$alloc"
  record NativeBursts "native-bursts-$alloc" 30 "$alloc"
done
if [ "${1:-}" = "--slow" ]; then
  out=tests/fixtures/replay/slow-native-leak-2mib-per-min-glibc.jsonl
  rm -f "$out"
  JMAGENT_AGENT=$agent scripts/scenario.sh SlowNativeLeak \
    "interval=5s,window=5m,format=json,jmx=off,log=$PWD/$out" -- seconds=720 >/dev/null
  echo "slow-native-leak-2mib-per-min-glibc: $(wc -l < "$out") reports"
fi
