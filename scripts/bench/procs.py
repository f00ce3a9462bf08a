"""The processes a step starts and what it reads about them: the agent's JSON
log, /proc files, a line the harness prints when it is ready."""
import json
import signal
import subprocess
import time

from stats import median


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

