//! Where reports are written: the JVM's stderr or a log file.
//!
//! A log file is opened once, in append mode, created with mode 0600 (it
//! shows the process's memory layout), and with `O_NOFOLLOW` so that a
//! symbolic link planted at the path (e.g. in /tmp) is refused, not followed.
//!
//! A log file is bounded by `log_max`: when the next report would make it
//! larger, it is renamed to `<path>.1` (replacing an older one) and a new
//! `<path>` is opened, so a report is never split across two files. The
//! size is the open file's length from `fstat`, not a count of bytes
//! written, because logrotate's `copytruncate` empties the file in place
//! while the agent holds it: in append mode the next report then lands at
//! the new end (offset 0), and the limit counts from there.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

use jmagent_core::options::LogTarget;

pub enum Sink {
    Stderr,
    File(LogFile),
}

/// A log file, rotated to `<path>.1` before it would outgrow `max_bytes`.
pub struct LogFile {
    path: String,
    file: File,
    /// `None`: unbounded (`log_max=0`).
    max_bytes: Option<u64>,
    /// A failed rotation is reported once, not at every report after it.
    rotation_error_reported: bool,
}

/// Opens `path` for appending: created 0600, never through a symbolic link.
fn open_log(path: &str) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

fn open_error(path: &str, e: io::Error) -> String {
    let why = if e.raw_os_error() == Some(libc::ELOOP) {
        "it is a symbolic link, which is not followed".to_string()
    } else {
        e.to_string()
    };
    format!("cannot open log file '{path}' ({why}): give log= a writable file path, or log=stderr")
}

impl Sink {
    /// Opens the target; the error names the path and the fix. `max_bytes`
    /// bounds a log file (`None`: unbounded); stderr is never bounded.
    pub fn open(target: &LogTarget, max_bytes: Option<u64>) -> Result<Sink, String> {
        let Some(path) = target.path_for_pid(std::process::id()) else {
            return Ok(Sink::Stderr);
        };
        let file = open_log(&path).map_err(|e| open_error(&path, e))?;
        Ok(Sink::File(LogFile {
            path,
            file,
            max_bytes,
            rotation_error_reported: false,
        }))
    }

    /// Writes one report; it ends with exactly one newline.
    pub fn write(&mut self, report: &str) -> io::Result<()> {
        let mut buf = String::with_capacity(report.len() + 1);
        buf.push_str(report.trim_end_matches('\n'));
        buf.push('\n');
        match self {
            // One write call per report, so lines of concurrent writers do not interleave.
            Sink::Stderr => io::stderr().lock().write_all(buf.as_bytes()),
            Sink::File(log) => log.write(buf.as_bytes()),
        }
    }

    pub fn describe(&self) -> &str {
        match self {
            Sink::Stderr => "stderr",
            Sink::File(log) => &log.path,
        }
    }
}

impl LogFile {
    /// Rotates first if `report` would push the file past its limit, then
    /// appends `report` in one write call.
    fn write(&mut self, report: &[u8]) -> io::Result<()> {
        if self.is_full(report.len() as u64) {
            if let Err(e) = self.rotate() {
                if !self.rotation_error_reported {
                    self.rotation_error_reported = true;
                    eprintln!("jmagent: {e}; reports go on in the current file (reported once)");
                }
            }
        }
        self.file.write_all(report)
    }

    /// Whether appending `report_len` bytes would exceed the limit. An empty
    /// file takes any report, so a report larger than the limit is written
    /// whole rather than rotated over and over.
    fn is_full(&self, report_len: u64) -> bool {
        let Some(max) = self.max_bytes else {
            return false;
        };
        // The length as it is now (fstat), which copytruncate may have reset.
        let Ok(len) = self.file.metadata().map(|m| m.len()) else {
            return false;
        };
        len > 0 && len.saturating_add(report_len) > max
    }

    /// Renames the file to `<path>.1` and opens a new `<path>`. On error the
    /// current file stays open, so no report is lost.
    fn rotate(&mut self) -> Result<(), String> {
        let rotated = format!("{}.1", self.path);
        // When the path no longer names the open file (someone moved it
        // away, or an earlier rotation renamed it but could not reopen),
        // renaming would move someone else's file: only reopen the path.
        if self.path_names_open_file() {
            std::fs::rename(&self.path, &rotated).map_err(|e| {
                format!(
                    "cannot rotate log file '{}' to '{rotated}' ({e})",
                    self.path
                )
            })?;
        }
        self.file = open_log(&self.path).map_err(|e| {
            format!(
                "cannot open a new log file after rotation: {}",
                open_error(&self.path, e)
            )
        })?;
        Ok(())
    }

    fn path_names_open_file(&self) -> bool {
        match (std::fs::symlink_metadata(&self.path), self.file.metadata()) {
            (Ok(at_path), Ok(open)) => at_path.dev() == open.dev() && at_path.ino() == open.ino(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A new empty directory for one test.
    fn fresh_dir(name: &str) -> PathBuf {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "jmagent-sink-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn open(path: &Path, max_bytes: Option<u64>) -> Sink {
        Sink::open(&LogTarget::File(path.display().to_string()), max_bytes).unwrap()
    }

    /// A 40-byte report (39 characters and the newline).
    fn report(n: u32) -> String {
        format!("report {n:04} {}", "x".repeat(27))
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap_or_default()
    }

    fn numbers(text: &str) -> Vec<u32> {
        text.lines()
            .map(|l| {
                assert_eq!(l.len(), 39, "a whole report per line: {l:?}");
                l[7..11].parse().unwrap()
            })
            .collect()
    }

    fn rotation_error_reported(sink: &Sink) -> bool {
        match sink {
            Sink::File(log) => log.rotation_error_reported,
            Sink::Stderr => unreachable!(),
        }
    }

    #[test]
    fn rotates_before_a_report_would_exceed_the_limit() {
        let dir = fresh_dir("rotate");
        let path = dir.join("agent.log");
        let rotated = dir.join("agent.log.1");
        // 100 bytes hold two 40-byte reports; the third goes to a new file.
        let mut sink = open(&path, Some(100));
        for n in 1..=2 {
            sink.write(&report(n)).unwrap();
        }
        assert_eq!(numbers(&read(&path)), [1, 2]);
        assert!(!rotated.exists());
        sink.write(&report(3)).unwrap();
        assert_eq!(numbers(&read(&rotated)), [1, 2]);
        assert_eq!(numbers(&read(&path)), [3]);
        for n in 4..=7 {
            sink.write(&report(n)).unwrap();
        }
        // The older .1 was replaced; there is never a .2.
        assert_eq!(numbers(&read(&rotated)), [5, 6]);
        assert_eq!(numbers(&read(&path)), [7]);
        assert!(!dir.join("agent.log.2").exists());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the new file is private too");
        assert!(!rotation_error_reported(&sink));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_report_larger_than_the_limit_is_written_whole() {
        let dir = fresh_dir("large");
        let path = dir.join("agent.log");
        let mut sink = open(&path, Some(10));
        sink.write(&report(1)).unwrap();
        assert_eq!(numbers(&read(&path)), [1]);
        assert!(!dir.join("agent.log.1").exists(), "an empty file takes it");
        sink.write(&report(2)).unwrap();
        assert_eq!(numbers(&read(&dir.join("agent.log.1"))), [1]);
        assert_eq!(numbers(&read(&path)), [2]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unbounded_never_rotates() {
        let dir = fresh_dir("unbounded");
        let path = dir.join("agent.log");
        let mut sink = open(&path, None);
        for n in 1..=50 {
            sink.write(&report(n)).unwrap();
        }
        assert_eq!(numbers(&read(&path)).len(), 50);
        assert!(!dir.join("agent.log.1").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn copytruncate_resets_the_size() {
        let dir = fresh_dir("copytruncate");
        let path = dir.join("agent.log");
        let mut sink = open(&path, Some(100));
        sink.write(&report(1)).unwrap();
        sink.write(&report(2)).unwrap();
        // What logrotate's copytruncate does while the agent holds the file.
        std::fs::copy(&path, dir.join("copy")).unwrap();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        sink.write(&report(3)).unwrap();
        sink.write(&report(4)).unwrap();
        // Appended at the new end: no hole of NUL bytes, and the limit
        // counts from the truncation, so no rotation yet.
        assert_eq!(numbers(&read(&path)), [3, 4]);
        assert!(!dir.join("agent.log.1").exists());
        sink.write(&report(5)).unwrap();
        assert_eq!(numbers(&read(&dir.join("agent.log.1"))), [3, 4]);
        assert_eq!(numbers(&read(&path)), [5]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_rotation_keeps_writing_to_the_current_file() {
        let dir = fresh_dir("rotate-fails");
        let path = dir.join("agent.log");
        // A non-empty directory at <path>.1 cannot be replaced by rename.
        std::fs::create_dir_all(dir.join("agent.log.1/keep")).unwrap();
        let mut sink = open(&path, Some(100));
        for n in 1..=5 {
            sink.write(&report(n)).unwrap();
        }
        assert!(rotation_error_reported(&sink));
        assert_eq!(numbers(&read(&path)), [1, 2, 3, 4, 5]);
        assert!(dir.join("agent.log.1/keep").is_dir());
        // Once the obstacle is gone, the next report rotates.
        std::fs::remove_dir_all(dir.join("agent.log.1")).unwrap();
        sink.write(&report(6)).unwrap();
        assert_eq!(numbers(&read(&dir.join("agent.log.1"))), [1, 2, 3, 4, 5]);
        assert_eq!(numbers(&read(&path)), [6]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_moved_away_is_not_renamed_again() {
        let dir = fresh_dir("moved");
        let path = dir.join("agent.log");
        let mut sink = open(&path, Some(100));
        sink.write(&report(1)).unwrap();
        sink.write(&report(2)).unwrap();
        // Someone else (logrotate without copytruncate) moves the file and
        // puts another at the path: neither is renamed; the agent goes on
        // in the file at the path.
        std::fs::rename(&path, dir.join("moved")).unwrap();
        std::fs::write(&path, "").unwrap();
        std::fs::write(dir.join("agent.log.1"), "older\n").unwrap();
        sink.write(&report(3)).unwrap();
        assert_eq!(numbers(&read(&dir.join("moved"))), [1, 2]);
        assert_eq!(read(&dir.join("agent.log.1")), "older\n");
        assert_eq!(numbers(&read(&path)), [3]);
        assert!(!rotation_error_reported(&sink));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
