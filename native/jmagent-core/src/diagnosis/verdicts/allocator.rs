//! The allocator's rule and information: fragmentation is memory held
//! beyond what the program re-used in the window; less is a cache.

use super::{mib, Context, Finding, Point, Verdict};

/// Free memory from which a sample counts as retaining it.
fn retained_floor(p: &Point) -> u64 {
    (32u64 << 20).max(p.rss / 10)
}

/// Allocator fragmentation: free memory retained through the window beyond
/// what the program re-used in it, while the bytes in use do not grow.
/// Memory an allocator keeps for the next burst — jemalloc's dirty pages
/// under decay, tcmalloc's and mimalloc's caches, glibc's free chunks that
/// the next burst fills — is at most the recent peak demand: what it holds
/// (in use plus free) above that peak ([`peak_and_excess`]) is excess, and
/// it counts once it reaches the retention floor, or when what it holds
/// grows steadily, to levels it did not hold in the window before, while
/// the bytes in use do not (a ratchet: each burst takes fresh memory and
/// leaves it free; a cache under decay refills to where it was).
pub(super) fn allocator_fragmentation(c: &Context) -> Option<Finding> {
    let (last, window_text) = (c.last, &c.window_text);
    let retaining = c
        .points
        .iter()
        .filter(|p| p.bucket("malloc_retained_free") >= retained_floor(p))
        .count();
    let in_use = c.trend(|p: &Point| p.allocator_in_use);
    let holds = |p: &Point| p.allocator_in_use + p.bucket("malloc_retained_free");
    let held = c.trend(holds);
    let retained = last.bucket("malloc_retained_free");
    let (peak, excess) = peak_and_excess(c);
    let ratchet = held.grows(c.threshold) && c.new_high(holds, &held);
    let beyond_demand = excess >= retained_floor(last) || ratchet;
    if !(retaining as f64 >= c.points.len() as f64 * 0.8
        && last.fragmentation >= 0.25
        && in_use.growth < c.threshold as i64
        && beyond_demand)
    {
        return None;
    }
    Some(Finding {
        title: format!("{} retains freed memory (fragmentation)", last.allocator),
        evidence: format!(
            "{} holds {} free (fragmentation {:.2}) for {} in use, {} beyond the most the program may have had in use {} ({}); what it holds changed by {} {window_text}; free memory stayed above {} in {} of {} samples, while in use changed by {}",
            last.allocator,
            mib(retained as i64),
            last.fragmentation,
            mib(last.bucket("malloc_in_use") as i64),
            mib(excess as i64),
            "over the last two windows",
            mib(peak as i64),
            mib(held.growth),
            mib(retained_floor(last) as i64),
            retaining,
            c.points.len(),
            mib(in_use.growth)
        ),
        advice: fragmentation_advice(c, retained),
    })
}

/// The most the program may have had in use recently (this window and
/// the one before it), and what the allocator holds now (in use plus
/// free) beyond it. Demand that swings between samples peaks between them
/// too: a burst shorter than the interval is seen at part of its height,
/// or not at all. So the peak is the largest reading plus the swing of the
/// readings (largest minus smallest): steady demand is taken as read,
/// bursty demand as possibly one swing higher than seen. Memory a program
/// used once, longer ago, and no more is excess.
fn peak_and_excess(c: &Context) -> (u64, u64) {
    let last = c.last;
    let in_use = || c.before.iter().chain(&c.points).map(|p| p.allocator_in_use);
    let (max, min) = (in_use().max().unwrap_or(0), in_use().min().unwrap_or(0));
    let peak = max + (max - min);
    let held = last.allocator_in_use + last.bucket("malloc_retained_free");
    (peak, held.saturating_sub(peak))
}

/// Free memory the allocator keeps for reuse, when it is large (at least
/// the retention floor) and within what the program had in use in the
/// window: a cache, not a finding, with the knob that bounds it.
pub(super) fn allocator_cache(c: &Context, verdicts: &[Verdict]) -> Option<String> {
    let last = c.last;
    let retained = last.bucket("malloc_retained_free");
    let (peak, excess) = peak_and_excess(c);
    if retained < retained_floor(last)
        || excess >= retained_floor(last)
        || verdicts.iter().any(|v| v.id == "allocator_fragmentation")
    {
        return None;
    }
    let knob = match last.allocator.as_str() {
        "jemalloc" => "jemalloc returns dirty pages to the OS over dirty_decay_ms (10 s by default; MALLOC_CONF=dirty_decay_ms:1000 returns them sooner, at some cost in page faults)".to_string(),
        "tcmalloc" => "tcmalloc releases free spans at TCMALLOC_RELEASE_RATE (default 1; higher releases sooner), and TCMALLOC_MAX_TOTAL_THREAD_CACHE_BYTES bounds its thread caches".to_string(),
        "mimalloc" => "mimalloc returns free pages after MIMALLOC_PURGE_DELAY ms (MIMALLOC_RESET_DELAY before mimalloc 2.1), checked when the owning thread allocates again".to_string(),
        _ => format!("glibc returns only free memory at the top of a heap above M_TRIM_THRESHOLD (MALLOC_TRIM_THRESHOLD_); `jmcmd {} trim` releases the rest", c.pid),
    };
    Some(format!(
        "{} keeps {} free for reuse, no more than the program re-uses: up to {} in use at the peak over the last two windows; {knob}",
        last.allocator,
        mib(retained as i64),
        mib(peak as i64),
    ))
}

fn fragmentation_advice(c: &Context, retained: u64) -> Vec<String> {
    let (pid, last) = (c.pid, c.last);
    let mut advice = vec![
        format!(
            "release it now: `jmcmd {pid} trim` (or the MXBean's trimNativeHeap); up to {} can go back to the OS",
            mib(retained as i64)
        ),
        "or let the agent do it: start with trim=auto".to_string(),
    ];
    if last.allocator == "glibc" {
        advice.push(
            "cap glibc's arenas: MALLOC_ARENA_MAX=2 in the JVM's environment (fewer arenas, less memory stranded between them)"
                .to_string(),
        );
        advice.push(
            "or use jemalloc, which returns free memory by itself: LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 (Debian package libjemalloc2)"
                .to_string(),
        );
        match &last.jdk_trim_interval {
            Some(v) => advice.push(format!(
                "or have the JVM trim periodically: -XX:TrimNativeHeapInterval=60000 (this JVM has the option; now {v})"
            )),
            None => advice.push(
                "newer JDKs (17.0.9+, 21.0.1+, 22+) can trim periodically with -XX:TrimNativeHeapInterval; this one cannot"
                    .to_string(),
            ),
        }
    }
    advice
}
