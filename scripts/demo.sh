#!/usr/bin/env bash
# Builds the agent and runs an example JVM with it: the workload holds
# 128 MiB of direct buffers, 96 MiB malloc'd by a JNI library and 50 threads,
# and the agent prints a breakdown every 2 seconds and one at exit.
#   scripts/demo.sh [extra agent options, e.g. format=json]
set -euo pipefail
cd "$(dirname "$0")/.."
java_home=${JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}
cargo build --release -q -p jmagent
out=target/demo
mkdir -p "$out"
"$java_home/bin/javac" --release 11 -d "$out/classes" $(find examples/src -name '*.java')
inc="$java_home/include"
gcc -shared -fPIC -O2 -I"$inc" -I"$inc/linux" -o "$out/libjmagent_testlib.so" tests/native/testlib.c
opts="interval=2s${1:+,$1}"
exec "$java_home/bin/java" -agentpath:"$PWD/target/release/libjmagent.so=$opts" \
  -Xmx256m -Djava.library.path="$out" -cp "$out/classes" \
  io.jmagent.examples.Workload direct=128 jni=96 threads=50 seconds=5
