"""Figure 7: a real server. Tomcat 10 (Debian's tomcat10, CATALINA_HOME
/usr/share/tomcat10) serving a small JSP under wrk load, with jmagent
interval=1s and without, in interleaved runs (none, agent, none, agent, ...).
Every run is a fresh Tomcat in its own CATALINA_BASE under
target/bench/tomcat/, on a free port of 127.0.0.1 with the shutdown port
disabled, warmed up by a short wrk run that is not counted, then measured by
one time-bounded wrk run, then stopped (SIGTERM; also on an error or an
interrupt, and by the kernel if this process dies: PR_SET_PDEATHSIG)."""
import ctypes
import glob
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

from procs import read_reports, stop, vmrss
from results import OUT, note, row
from stats import MIB, fmt_ratio, median, pct, ratio_ci

HOME = "/usr/share/tomcat10"
CONF = os.path.join(HOME, "etc")  # the package's pristine conf (what /etc/tomcat10 starts as)
WRK_THREADS, WRK_CONNECTIONS = 2, 32

# Real work per request: a JSP (compiled by Jasper on the first request)
# that builds a ~7 KB HTML table from a sorted map and formatted numbers.
JSP = r"""<%@ page contentType="text/html; charset=UTF-8" session="false" import="java.util.*" %>
<%
    TreeMap<String, Long> rows = new TreeMap<>();
    long x = System.nanoTime();
    for (int i = 0; i < 120; i++) {
        x = x * 6364136223846793005L + 1442695040888963407L;
        rows.put(Long.toHexString(x >>> 20), x >>> 44);
    }
%><!DOCTYPE html>
<html><head><title>jmagent bench</title></head><body>
<p>Served by <%= application.getServerInfo() %> at <%= new Date() %> for <%= request.getRemoteAddr() %></p>
<table>
<% for (Map.Entry<String, Long> e : rows.entrySet()) { %>
<tr><td><%= e.getKey() %></td><td><%= e.getValue() %></td><td><%= String.format("%.4f", Math.sqrt(e.getValue())) %></td></tr>
<% } %>
</table></body></html>
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_base(base, port):
    """A CATALINA_BASE: the package's conf with the HTTP connector moved to
    127.0.0.1:port (the shutdown port is already -1 in Debian's server.xml,
    checked), and its own logs/, work/, temp/, webapps/ROOT/index.jsp."""
    shutil.rmtree(base, ignore_errors=True)
    for d in ("conf", "logs", "work", "temp", "lib", "webapps/ROOT"):
        os.makedirs(os.path.join(base, d))
    for f in os.listdir(CONF):
        if f != "server.xml":
            shutil.copy(os.path.join(CONF, f), os.path.join(base, "conf", f))
    xml = re.sub(r"<!--.*?-->", "", open(os.path.join(CONF, "server.xml")).read(), flags=re.S)
    if not re.search(r'<Server port="-1"', xml):
        xml = re.sub(r'<Server port="\d+"', '<Server port="-1"', xml)
    xml, n = re.subn(r'<Connector port="8080"', f'<Connector address="127.0.0.1" port="{port}"', xml)
    connectors = re.findall(r"<Connector\b", xml)
    if n != 1 or len(connectors) != 1 or '<Server port="-1"' not in xml:
        raise RuntimeError(f"{CONF}/server.xml: expected one HTTP connector on 8080 and a Server element "
                           f"(found {len(connectors)} connectors, {n} on 8080)")
    with open(os.path.join(base, "conf", "server.xml"), "w") as f:
        f.write(xml)
    with open(os.path.join(base, "webapps", "ROOT", "index.jsp"), "w") as f:
        f.write(JSP)


def _pdeathsig():
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: kept across exec (catalina.sh, java)


def start(java, base, opts):
    env = dict(os.environ, JAVA_HOME=os.path.dirname(os.path.dirname(os.path.realpath(java))),
               CATALINA_HOME=HOME, CATALINA_BASE=base, CATALINA_TMPDIR=os.path.join(base, "temp"),
               CATALINA_OPTS=" ".join(opts), JAVA_OPTS="-Djava.awt.headless=true")
    for k in ("CATALINA_PID", "CATALINA_OUT", "JRE_HOME", "JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS"):
        env.pop(k, None)
    out = open(os.path.join(base, "logs", "catalina.out"), "w")
    # catalina.sh run execs java: the pid is the JVM's.
    return subprocess.Popen([os.path.join(HOME, "bin", "catalina.sh"), "run"], env=env, cwd=base,
                            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                            preexec_fn=_pdeathsig)


def wait_ready(proc, port, timeout=120):
    """Until the JSP answers 200 (its first request compiles it)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Tomcat (pid {proc.pid}) exited with {proc.returncode} before serving")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
                body = r.read()
                if r.status == 200 and b"</table>" in body:
                    return len(body)
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"Tomcat on 127.0.0.1:{port} did not serve the JSP in {timeout} s")


UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def sampler_cpu(pid):
    """CPU seconds (user+sys) of the agent's sampler thread so far (0 without the agent)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            if open(task + "/comm").read().strip() == "jmagent-sampler":
                fields = open(task + "/stat").read().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            pass  # a thread that ended
    return total


def wrk(port, seconds, log):
    """One bounded wrk run; (requests/s, p99 latency in s, wrk's output)."""
    cmd = ["wrk", f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s", "--latency",
           f"http://127.0.0.1:{port}/"]
    text = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=seconds + 60, check=True, preexec_fn=_pdeathsig).stdout
    with open(log, "w") as f:
        f.write(" ".join(cmd) + "\n" + text)
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M)
    if not rps or not p99:
        raise RuntimeError(f"cannot parse wrk's output ({log}):\n{text}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if bad:
        raise RuntimeError(f"{bad.group(1)} non-2xx/3xx responses from Tomcat ({log})")
    return float(rps.group(1)), float(p99.group(1)) * UNITS[p99.group(2)], text


def one_run(java, agent, i, with_agent, seconds, warmup):
    name = f"run-{i}-{'agent' if with_agent else 'none'}"
    base = os.path.join(OUT, "tomcat", name)
    port = free_port()
    make_base(base, port)
    log = os.path.join(base, "logs", "jmagent.json")
    opts = ["-Xms256m", "-Xmx256m"]  # the same heap for both, not sized by the machine's load
    if with_agent:
        opts.append(f"-agentpath:{agent}=interval=1s,format=json,log={log}")
    started = time.time()
    proc = start(java, base, opts)
    try:
        size = wait_ready(proc, port)
        ready = time.time() - started
        wrk(port, warmup, os.path.join(base, "logs", "wrk-warmup.txt"))
        cpu0, t0 = sampler_cpu(proc.pid), time.time() * 1000
        rps, p99, text = wrk(port, seconds, os.path.join(base, "logs", "wrk.txt"))
        cpu1, t1 = sampler_cpu(proc.pid), time.time() * 1000
        rss = vmrss(proc.pid)
    finally:
        stop(proc)
    samples = []
    if with_agent:
        samples = [r["sample_micros"] for r in read_reports(log) if not r.get("final") and t0 <= r["timestamp_ms"] <= t1]
    errors = re.search(r"Socket errors:.*", text)
    access = [os.path.join(base, "logs", f) for f in os.listdir(os.path.join(base, "logs")) if f.startswith("localhost_access_log")]
    for f in access:  # ~10 MB a run: only whether requests were logged matters
        os.remove(f)
    print(f"bench: figure 7, {name} (127.0.0.1:{port}, serving after {ready:.1f} s): {rps:.0f} req/s, p99 {p99 * 1000:.2f} ms, "
          f"RSS {rss / MIB:.0f} MiB" + (f", {errors.group(0)}" if errors else ""), file=sys.stderr)
    return {"name": name, "rps": rps, "p99": p99, "rss": rss, "samples": samples, "size": size,
            "sampler_cpu": (cpu1 - cpu0) / ((t1 - t0) / 1000),
            "errors": errors.group(0) if errors else ""}


def noise(xs):
    """Run-to-run noise of single runs: coefficient of variation (stdev/mean)."""
    return statistics.stdev(xs) / statistics.mean(xs) if len(xs) > 1 else float("nan")


def paired_ci(base, other, n=4000):
    """The runs are interleaved pairs (none, agent): the median of the
    per-pair ratios agent/none, and its 95% bootstrap interval over pairs.
    Load that drifts over the whole run cancels within a pair."""
    ratios = [o / b for b, o in zip(base, other)]
    rnd = random.Random(7)
    rs = sorted(median([rnd.choice(ratios) for _ in ratios]) for _ in range(n))
    return median(ratios), rs[int(0.025 * n)], rs[int(0.975 * n) - 1]


RULE = ("met when the 95% interval of the paired ratio agent/none contains 1 and the paired ratio differs from 1 "
        "by less than the run-to-run noise (the coefficient of variation, stdev/mean, of the no-agent runs); "
        "**missed** when the interval excludes 1 on the agent's worse side; not resolved otherwise")


def verdict(base, other, worse_above):
    """RULE, for a ratio that is worse above 1 (latency) or below 1 (throughput)."""
    if len(base) < 2:
        return "not resolved (one pair)"
    r, lo, hi = paired_ci(base, other)
    cv = noise(base)
    if lo <= 1 <= hi:
        if abs(r - 1) < cv:
            return f"met (interval contains 1; |{r:.3f} − 1| < CV {cv:.1%})"
        return f"not resolved (interval contains 1, but |{r:.3f} − 1| ≥ CV {cv:.1%})"
    if (lo > 1) == worse_above:
        return "**missed** (the paired interval excludes 1)"
    return "not resolved (the paired interval excludes 1 on the agent's better side)"


def tomcat(pairs, seconds):
    java, agent = sys.argv[4], os.path.abspath(sys.argv[5])  # Tomcat runs in its CATALINA_BASE
    warmup = max(3, seconds // 5)
    # SIGTERM (e.g. from a killed bench.sh) ends this process through the finally blocks.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    runs = {False: [], True: []}
    for i in range(pairs):
        for with_agent in (False, True):
            runs[with_agent].append(one_run(java, agent, i + 1, with_agent, seconds, warmup))
    none, withj = runs[False], runs[True]
    what = (f"Tomcat 10 (`tomcat10` {HOME}, JSP of {none[0]['size'] / 1024:.1f} KB per request), "
            f"`wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{seconds}s` on 127.0.0.1, {pairs} interleaved pairs")
    for key, label, fmt, worse_above in (("rps", "throughput (requests/s)", lambda v: f"{v:.0f} req/s", False),
                                         ("p99", "p99 latency (wrk --latency)", lambda v: f"{v * 1000:.2f} ms", True)):
        a, b = [r[key] for r in none], [r[key] for r in withj]
        row(7, f"{what}, no agent: {label}",
            f"{fmt(median(a))} (median of {len(a)}; runs {fmt(min(a))}–{fmt(max(a))}, CV {noise(a):.1%})",
            "1", "", "")
        row(7, f"same, jmagent interval=1s: {label}",
            f"{fmt(median(b))} (median of {len(b)}; runs {fmt(min(b))}–{fmt(max(b))}, CV {noise(b):.1%})",
            f"paired {fmt_ratio(*paired_ci(a, b))}; ratio of medians {fmt_ratio(median(b) / median(a), *ratio_ci(a, b))}",
            "within run-to-run noise", verdict(a, b, worse_above))
    note(f"figure 7: target rule: {RULE}. Paired ratio: the median of the per-pair ratios, 95% bootstrap interval "
         "over the pairs; ratio of medians: stats.ratio_ci, runs resampled unpaired. Per-pair ratios agent/none in run "
         "order: throughput " +
         ", ".join(f"{b['rps'] / a['rps']:.3f}" for a, b in zip(none, withj)) + "; p99 " +
         ", ".join(f"{b['p99'] / a['p99']:.3f}" for a, b in zip(none, withj)))
    us = [s for r in withj for s in r["samples"]]
    if us:
        note(f"figure 7: the agent's own sample time during the measured load (JSON log, sample_micros): median "
             f"{median(us) / 1000:.2f} ms, p99 {pct(us, 99) / 1000:.2f} ms over {len(us)} samples in {len(withj)} runs "
             f"(wall time, the median is {median(us) / 1e4:.2f}% of each 1 s interval); the sampler thread's CPU time "
             f"(user+sys, /proc) during the load: median {median([r['sampler_cpu'] for r in withj]) * 1000:.1f} ms "
             "per second")
    else:
        note("figure 7: no agent samples in the measured windows (see " + os.path.join(OUT, "tomcat", "run-*-agent", "logs", "jmagent.json") + ")")
    note(f"figure 7: Tomcat's RSS at the end of the load (VmRSS, -Xms256m -Xmx256m), medians: no agent "
         f"{median([r['rss'] for r in none]) / MIB:.0f} MiB, jmagent {median([r['rss'] for r in withj]) / MIB:.0f} MiB; "
         f"warm-up {warmup} s of wrk per server, not counted" +
         "".join(f"; {r['name']}: {r['errors']}" for r in none + withj if r["errors"]))
