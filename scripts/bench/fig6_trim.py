"""Figure 6: trim=auto against the JDK's -XX:TrimNativeHeapInterval."""
import json
import os
import re
import subprocess
import sys

from procs import read_reports
from results import OUT, note, row
from stats import MIB


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

