//! Where reports are written: the JVM's stderr or a log file.
//!
//! A log file is opened once, in append mode, created with mode 0600 (it
//! shows the process's memory layout), and with `O_NOFOLLOW` so that a
//! symbolic link planted at the path (e.g. in /tmp) is refused, not followed.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;

use jmagent_core::options::LogTarget;

pub enum Sink {
    Stderr,
    File { path: String, file: File },
}

impl Sink {
    /// Opens the target; the error names the path and the fix.
    pub fn open(target: &LogTarget) -> Result<Sink, String> {
        let Some(path) = target.path_for_pid(std::process::id()) else {
            return Ok(Sink::Stderr);
        };
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| {
                let why = if e.raw_os_error() == Some(libc::ELOOP) {
                    "it is a symbolic link, which is not followed".to_string()
                } else {
                    e.to_string()
                };
                format!("cannot open log file '{path}' ({why}): give log= a writable file path, or log=stderr")
            })?;
        Ok(Sink::File { path, file })
    }

    /// Writes one report; it ends with exactly one newline.
    pub fn write(&mut self, report: &str) -> io::Result<()> {
        let mut buf = String::with_capacity(report.len() + 1);
        buf.push_str(report.trim_end_matches('\n'));
        buf.push('\n');
        match self {
            // One write call per report, so lines of concurrent writers do not interleave.
            Sink::Stderr => io::stderr().lock().write_all(buf.as_bytes()),
            Sink::File { file, .. } => file.write_all(buf.as_bytes()),
        }
    }

    pub fn describe(&self) -> &str {
        match self {
            Sink::Stderr => "stderr",
            Sink::File { path, .. } => path,
        }
    }
}
