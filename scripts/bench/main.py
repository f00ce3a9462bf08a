"""Statistics and process handling for scripts/bench.sh (stdlib only).

bench.sh runs one command per step, each in its own python3 process, with
BENCH_OUT naming the output folder (target/bench); rows and notes are
appended to files there and `table` prints them at the end:

    main.py row FIGURE CELL...                  main.py note TEXT
    main.py startup                             main.py startup-split RUNS JAVA AGENT CP
    main.py exit-sample < hello-*.json          main.py sample-cost LABEL COUNT TARGET_MS|'' -- COMMAND...
    main.py malloc-walk THREADS BLOCKS          main.py own-memory JAVA AGENT CP SAMPLES JMCMD|''
    main.py own-memory-why JAVA JCMD AGENT CP SAMPLES JMCMD|''
    main.py own-memory-jit JAVA AGENT CP SAMPLES
    main.py throughput                          main.py clients JMCMD_RSS_KIB,... JCMD_RSS_KIB,...
    main.py trim SECONDS JAVA AGENT CP          main.py table
    main.py tomcat PAIRS SECONDS JAVA AGENT
    main.py malloc-latency ROUNDS SECONDS INTERVAL THREADS BLOCKS JAVA AGENT CP TESTLIB
    (sample-cost takes OPTION=VALUE arguments before '--': see fig2_sample_cost.sample_cost)

The figure functions that start JVMs read JAVA, AGENT, CP (and JCMD) from
sys.argv at the positions above.
"""
import sys

from fig1_startup import exit_sample, startup, startup_split
from fig2_sample_cost import malloc_walk, sample_cost
from fig3_own_memory import own_memory, own_memory_jit, own_memory_why
from fig4_throughput import throughput
from fig5_clients import clients
from fig6_trim import trim
from fig7_tomcat import tomcat
from fig8_malloc_latency import malloc_latency
from results import note, row, table

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
    elif cmd == "exit-sample":
        exit_sample()
    elif cmd == "sample-cost":
        sample_cost(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]) if sys.argv[4] else None)
    elif cmd == "malloc-walk":
        malloc_walk(int(sys.argv[2]), int(sys.argv[3]))
    elif cmd == "own-memory":
        own_memory(int(sys.argv[5]), sys.argv[6])
    elif cmd == "own-memory-jit":
        own_memory_jit(int(sys.argv[5]))
    elif cmd == "own-memory-why":
        own_memory_why(int(sys.argv[6]), sys.argv[7])
    elif cmd == "throughput":
        throughput()
    elif cmd == "clients":
        clients(sys.argv[2], sys.argv[3])
    elif cmd == "trim":
        trim(int(sys.argv[2]))
    elif cmd == "tomcat":
        tomcat(int(sys.argv[2]), int(sys.argv[3]))
    elif cmd == "malloc-latency":
        malloc_latency(int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
    elif cmd == "table":
        table()
    else:
        sys.exit(f"scripts/bench/main.py: unknown command {cmd}")
