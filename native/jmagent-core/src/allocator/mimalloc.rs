//! Microsoft's mimalloc: statistics through `mi_process_info` and its
//! statistics text.

use std::ffi::{c_char, c_void, CStr};

use super::{required, symbol, Allocator, AllocatorKind, AllocatorStats, Result};

/// Microsoft's mimalloc (`libmimalloc.so.2`).
pub(super) struct Mimalloc;

impl Allocator for Mimalloc {
    fn kind(&self) -> AllocatorKind {
        AllocatorKind::Mimalloc
    }
    fn api_symbols(&self) -> &'static [&'static CStr] {
        &[c"mi_process_info", c"mi_version"]
    }
    fn library_prefixes(&self) -> &'static [&'static str] {
        &["libmimalloc"]
    }
    fn stats(&self) -> Result<AllocatorStats> {
        mimalloc_stats()
    }
    fn trim(&self) -> Result<()> {
        let f = required(c"mi_collect", AllocatorKind::Mimalloc, "not a mimalloc")?;
        // SAFETY: `f` is mimalloc's `void mi_collect(bool force)`, callable
        // from any thread (collects the calling thread's heap and the
        // abandoned segments).
        let f: unsafe extern "C" fn(bool) = unsafe { std::mem::transmute(f) };
        // SAFETY: see above.
        unsafe { f(true) };
        Ok(())
    }
}

// ---------------------------------------------------------------------------

type MiProcessInfoFn = unsafe extern "C" fn(
    *mut libc::size_t,
    *mut libc::size_t,
    *mut libc::size_t,
    *mut libc::size_t,
    *mut libc::size_t,
    *mut libc::size_t,
    *mut libc::size_t,
    *mut libc::size_t,
);

/// Output callback of `mi_stats_print_out`: appends to the `String` in `arg`.
extern "C" fn mi_collect_output(msg: *const c_char, arg: *mut c_void) {
    if msg.is_null() || arg.is_null() {
        return;
    }
    // SAFETY: `arg` is the `&mut String` passed by `mimalloc_stats_text`, alive
    // for the duration of the mi_stats_print_out call that invokes us on the
    // same thread; `msg` is a NUL-terminated string from mimalloc.
    let (out, msg) = unsafe { (&mut *(arg as *mut String), CStr::from_ptr(msg)) };
    out.push_str(&msg.to_string_lossy());
}

/// `mi_stats_print_out`'s text (it also merges the calling thread's stats).
fn mimalloc_stats_text() -> Option<String> {
    let f = symbol(c"mi_stats_print_out")?;
    type Out = extern "C" fn(*const c_char, *mut c_void);
    // SAFETY: mimalloc's `void mi_stats_print_out(mi_output_fun* out, void* arg)`.
    let print: unsafe extern "C" fn(Out, *mut c_void) = unsafe { std::mem::transmute(f) };
    let mut text = String::new();
    // SAFETY: the callback only appends to `text`, which outlives the call.
    unsafe { print(mi_collect_output, (&mut text as *mut String).cast()) };
    Some(text)
}

/// Parses an amount as mimalloc prints it: `0`, `123`, `1.5 KiB`,
/// `160.0 MiB`, or older builds' `1.5 kb`/`1.5 mb`.
fn mi_amount(number: &str, unit: Option<&str>) -> Option<(u64, bool)> {
    let value: f64 = number.parse().ok()?;
    let mult = match unit.map(|u| u.to_ascii_lowercase()) {
        Some(u) if u == "kib" || u == "kb" || u == "k" => 1u64 << 10,
        Some(u) if u == "mib" || u == "mb" || u == "m" => 1 << 20,
        Some(u) if u == "gib" || u == "gb" || u == "g" => 1 << 30,
        Some(u) if u == "tib" || u == "tb" || u == "t" => 1 << 40,
        Some(u) if u == "b" || u == "bytes" => 1,
        _ => return Some((value as u64, false)),
    };
    Some(((value * mult as f64) as u64, true))
}

/// `name.current` / `name.peak` of each statistic line of mimalloc's text,
/// by the column names of its header (rounded to 0.1 of the printed unit).
fn parse_mimalloc_stats(text: &str) -> Vec<(String, u64)> {
    let mut columns: Vec<String> = Vec::new();
    let mut previous = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name == "heap stats" {
            columns = rest.split_whitespace().map(str::to_string).collect();
            continue;
        }
        let full = if let Some(sub) = name.strip_prefix('-') {
            format!("{previous}.{sub}")
        } else {
            previous = name.to_string();
            name.to_string()
        };
        let tokens: Vec<&str> = rest.split_whitespace().collect();
        let mut values = Vec::new();
        let mut i = 0;
        while i < tokens.len() {
            match mi_amount(tokens[i], tokens.get(i + 1).copied()) {
                Some((v, used_unit)) => {
                    values.push(v);
                    i += if used_unit { 2 } else { 1 };
                }
                None => break,
            }
        }
        if values.len() < 2 {
            continue; // counters and free text, not a peak/total/... row
        }
        for (col, v) in columns.iter().zip(&values) {
            if col == "current" || col == "peak" {
                out.push((format!("stats.{full}.{col}"), *v));
            }
        }
    }
    out
}

fn mimalloc_stats() -> Result<AllocatorStats> {
    let f = required(
        c"mi_process_info",
        AllocatorKind::Mimalloc,
        "mimalloc older than 1.7",
    )?;
    // SAFETY: mimalloc's `void mi_process_info(size_t* elapsed_msecs, size_t*
    // user_msecs, size_t* system_msecs, size_t* current_rss, size_t* peak_rss,
    // size_t* current_commit, size_t* peak_commit, size_t* page_faults)`.
    let info: MiProcessInfoFn = unsafe { std::mem::transmute(f) };
    let mut v = [0 as libc::size_t; 8];
    let p = v.as_mut_ptr();
    // SAFETY: the eight pointers are distinct elements of `v`, writable.
    unsafe {
        info(
            p,
            p.add(1),
            p.add(2),
            p.add(3),
            p.add(4),
            p.add(5),
            p.add(6),
            p.add(7),
        )
    };
    let names = [
        "elapsed_msecs",
        "user_msecs",
        "system_msecs",
        "current_rss",
        "peak_rss",
        "current_commit",
        "peak_commit",
        "page_faults",
    ];
    let mut raw: Vec<(String, u64)> = names
        .iter()
        .zip(v)
        .map(|(n, v)| (format!("process_info.{n}"), v as u64))
        .collect();
    let parsed = mimalloc_stats_text()
        .map(|t| parse_mimalloc_stats(&t))
        .unwrap_or_default();
    let reserved = parsed
        .iter()
        .find(|(k, _)| k == "stats.reserved.current")
        .map(|(_, v)| *v);
    raw.extend(parsed);
    Ok(AllocatorStats {
        in_use: v[5] as u64,
        in_use_includes_free: true,
        retained_free: 0,
        releasable: None,
        metadata: None,
        mapped: reserved,
        resident: None,
        arenas: None,
        free_chunks: None,
        raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mimalloc_text_is_parsed_by_header_columns() {
        // Captured from Debian's libmimalloc 2.0.9 (mi_stats_print_out).
        let text = "heap stats:    peak      total      freed    current       unit      count   \n  reserved:  160.0 MiB  160.0 MiB      0      160.0 MiB                        \n committed:  160.0 MiB  160.0 MiB      0      160.0 MiB                        \n     reset:      0          0          0          0                            ok\n   touched:  321.2 KiB  321.2 KiB  160.6 KiB  160.6 KiB                        not all freed!\n  segments:      5          5          0          5                            not all freed!\n-abandoned:      0          0          0          0                            ok\n     mmaps:      0    \n  searches:     0.0 avg\nnuma nodes:       1\n   elapsed:       0.349 s\n   process: user: 0.020 s, system: 0.329 s, faults: 0, rss: 140.6 MiB, commit: 160.0 MiB\n";
        let got = parse_mimalloc_stats(text);
        let get = |k: &str| got.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
        assert_eq!(get("stats.reserved.current"), Some(160 << 20));
        assert_eq!(get("stats.committed.peak"), Some(160 << 20));
        assert_eq!(get("stats.reset.current"), Some(0));
        assert_eq!(get("stats.touched.current"), Some((160.6 * 1024.0) as u64));
        assert_eq!(get("stats.segments.current"), Some(5));
        assert_eq!(get("stats.segments.abandoned.current"), Some(0));
        assert_eq!(get("stats.mmaps.current"), None);
        assert_eq!(get("stats.process.current"), None);
    }
}
