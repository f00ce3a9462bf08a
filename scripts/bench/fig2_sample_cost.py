"""Figure 2: the time of one sample, and what makes it long on a fragmented
glibc heap."""
import ctypes
import glob
import os
import re
import subprocess
import sys
import threading
import time

from procs import read_reports, read_time, stop, vmrss, wait_line
from results import note, row
from stats import MIB, median, pct


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

