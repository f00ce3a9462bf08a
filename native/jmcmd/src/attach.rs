//! The HotSpot attach protocol, version 1, spoken over the JVM's Unix socket.
//!
//! One function per step, as in jattach: check for the socket, start the
//! attach listener, connect, write the request, read the reply. HotSpot
//! starts its attach listener lazily: on SIGQUIT it looks for a file
//! `.attach_pid<pid>` in its working directory or `/tmp`, and only if that
//! file exists (and belongs to its user or root) does it create
//! `/tmp/.java_pid<pid>` instead of printing a thread dump. `<pid>` is the
//! pid the JVM sees for itself, which differs from ours when it runs in a
//! container.
//!
//! The listener accepts a peer whose effective uid and gid are the JVM's
//! (or root), read with `SO_PEERCRED` at connect time: [`Credentials`]
//! switches to the target's before the trigger file is created and the
//! socket is connected, as the JDK's tools do.

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::process::{self, Target};
use crate::signals;

/// HotSpot's limits for a request (attachListener.hpp).
pub const MAX_COMMAND: usize = 16;
pub const MAX_ARGUMENT: usize = 1024;

/// A reply: the status line and the output that follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: i32,
    pub output: String,
}

/// The effective uid/gid jmcmd runs with while it talks to one target;
/// the original ones come back when this is dropped.
pub struct Credentials {
    saved: Option<(u32, u32)>,
}

impl Credentials {
    /// Takes the target's effective gid and uid when jmcmd runs as root and
    /// the target does not; otherwise changes nothing (HotSpot's own uid
    /// check then decides).
    pub fn assume(target: &Target) -> Result<Credentials> {
        // SAFETY: geteuid/getegid cannot fail.
        let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
        if euid != 0 || (target.uid == 0 && target.gid == egid) {
            return Ok(Credentials { saved: None });
        }
        // gid first: once the uid is not root, the gid can no longer change.
        // SAFETY: plain syscalls; glibc applies them to every thread.
        if unsafe { libc::setegid(target.gid) } != 0 {
            return Err(Error::os(
                format!("cannot switch to the JVM's gid {}", target.gid),
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: as above.
        if unsafe { libc::seteuid(target.uid) } != 0 {
            let e = std::io::Error::last_os_error();
            // SAFETY: we were root a moment ago; restore the gid.
            unsafe { libc::setegid(egid) };
            return Err(Error::os(
                format!("cannot switch to the JVM's uid {}", target.uid),
                e,
            ));
        }
        Ok(Credentials {
            saved: Some((euid, egid)),
        })
    }
}

impl Drop for Credentials {
    fn drop(&mut self) {
        if let Some((uid, gid)) = self.saved {
            // SAFETY: the saved set-user-ID is still root, so both succeed.
            unsafe {
                libc::seteuid(uid);
                libc::setegid(gid);
            }
        }
    }
}

/// The attach socket as jmcmd reaches it.
pub fn socket_path(target: &Target) -> PathBuf {
    target.tmp().join(format!(".java_pid{}", target.nspid))
}

/// Whether the listener's socket exists; it must belong to the JVM's user
/// (or root): anyone may create a file of that name in a shared `/tmp`.
fn socket_ready(target: &Target, path: &Path) -> Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if m.uid() != target.uid && m.uid() != 0 {
                return Err(Error::PermissionDenied(format!(
                    "{} belongs to uid {}, not to the JVM's uid {}: refusing to talk to it",
                    path.display(),
                    m.uid(),
                    target.uid
                )));
            }
            Ok(true)
        }
        Ok(_) => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::os(format!("cannot check {}", path.display()), e)),
    }
}

/// The trigger file `.attach_pid<pid>`; removed when dropped, on every path
/// out (success, error, timeout, interrupt), so none is left behind.
struct Trigger(PathBuf);

impl Trigger {
    /// Creates the trigger in the JVM's working directory, or in its `/tmp`
    /// when the working directory is not writable (HotSpot looks in both).
    fn create(target: &Target) -> Result<Trigger> {
        let name = format!(".attach_pid{}", target.nspid);
        let cwd = PathBuf::from(format!("/proc/{}/cwd", target.pid)).join(&name);
        let mut first_error = None;
        for path in [cwd, target.tmp().join(&name)] {
            match std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
            {
                Ok(_) => return Ok(Trigger(path)),
                Err(e) => {
                    first_error.get_or_insert((path, e));
                }
            }
        }
        let (path, e) = first_error.expect("two attempts");
        Err(Error::os(
            format!("cannot create the attach trigger {}", path.display()),
            e,
        ))
    }
}

impl Drop for Trigger {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Takes the target's credentials and makes sure its attach listener runs:
/// what every attach starts with. A stale socket is removed first, with
/// jmcmd's own credentials (root may remove what the JVM's user may not).
pub fn open(target: &Target, timeout: Duration) -> Result<(Credentials, PathBuf)> {
    remove_stale_socket(target)?;
    let creds = Credentials::assume(target)?;
    let socket = start_listener(target, timeout)?;
    Ok((creds, socket))
}

/// A socket at the JVM's path that no listener holds: left by an ended
/// process that had the same pid (pids are reused, and a JVM in a container
/// is often pid 1 again after a restart with a kept `/tmp`). HotSpot does
/// not replace it and jcmd fails on it with "Connection refused"; jmcmd
/// removes it so that the JVM starts a listener of its own. A socket is
/// judged stale only when it is older than the process and refuses a
/// connection: a live listener's socket is never older than its JVM.
fn remove_stale_socket(target: &Target) -> Result<()> {
    let path = socket_path(target);
    let Ok(meta) = std::fs::symlink_metadata(&path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Ok(());
    }
    let Some(started) = process::started(target.pid) else {
        return Ok(());
    };
    let made = std::time::UNIX_EPOCH
        + Duration::new(meta.mtime().max(0) as u64, meta.mtime_nsec().max(0) as u32);
    if made >= started {
        return Ok(());
    }
    match UnixStream::connect(&path) {
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {}
        _ => return Ok(()),
    }
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::os(
            format!(
                "{} is a stale attach socket (older than process {}, and nothing listens on it) and cannot be removed; remove it as its owner (uid {}) or as root",
                path.display(),
                target.pid,
                meta.uid()
            ),
            e,
        )),
    }
}

/// Makes sure the JVM's attach listener runs, starting it if needed, within
/// `timeout`.
fn start_listener(target: &Target, timeout: Duration) -> Result<PathBuf> {
    let socket = socket_path(target);
    if socket_ready(target, &socket)? {
        return Ok(socket);
    }
    if let Some(false) = target.perf.as_ref().and_then(|p| p.attach_supported()) {
        return Err(Error::AttachDisabled {
            pid: target.pid,
            evidence: "its performance counters say so".into(),
        });
    }
    if let Some(evidence) = attach_disabled_by_flags(target.pid) {
        return Err(Error::AttachDisabled {
            pid: target.pid,
            evidence,
        });
    }
    let trigger = Trigger::create(target)?;
    // SAFETY: kill only sends a signal; SIGQUIT is what HotSpot listens for.
    if unsafe { libc::kill(target.pid as i32, libc::SIGQUIT) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ESRCH) {
            return Err(Error::NoSuchProcess(format!(
                "process {} exited",
                target.pid
            )));
        }
        return Err(Error::os(
            format!("cannot signal process {}", target.pid),
            e,
        ));
    }
    let started = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        signals::check()?;
        if socket_ready(target, &socket)? {
            drop(trigger);
            return Ok(socket);
        }
        if !process::alive(target.pid) {
            return Err(Error::NoSuchProcess(format!(
                "process {} exited while jmcmd waited for its attach listener",
                target.pid
            )));
        }
        if started.elapsed() >= timeout {
            let why = if target.perf.is_none() {
                "it may be hung, or run with -XX:+DisableAttachMechanism"
            } else {
                "it may be hung or too busy to answer"
            };
            return Err(Error::Timeout(format!(
                "JVM {} did not start its attach listener within {} ({}); raise --timeout to wait longer",
                target.pid,
                crate::cli::show_duration(timeout),
                stopped_or(target.pid, why)
            )));
        }
        std::thread::sleep(pause.min(timeout.saturating_sub(started.elapsed())));
        // Bounded back-off: a JVM usually answers within 10-200 ms.
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Why a JVM may not answer: stopped, if it is, else `otherwise`.
fn stopped_or(pid: u32, otherwise: &str) -> String {
    if process::status(pid).is_ok_and(|s| s.state == 'T') {
        "the process is stopped: SIGSTOP, or a debugger".into()
    } else {
        otherwise.into()
    }
}

fn attach_disabled_by_flags(pid: u32) -> Option<String> {
    let args = process::cmdline(pid).ok()?;
    let environ = std::fs::read(format!("/proc/{pid}/environ"))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    process::attach_disabled_by_flags(&args, &environ)
}

/// The request bytes: `1\0cmd\0a0\0a1\0a2\0`.
pub fn encode(command: &str, args: [&str; 3]) -> Result<Vec<u8>> {
    if command.len() > MAX_COMMAND || command.contains('\0') {
        return Err(Error::Usage(format!(
            "attach command '{command}' is longer than {MAX_COMMAND} bytes"
        )));
    }
    let mut out = b"1\0".to_vec();
    out.extend_from_slice(command.as_bytes());
    out.push(0);
    for a in args {
        if a.len() > MAX_ARGUMENT || a.contains('\0') {
            return Err(Error::Usage(format!(
                "attach argument is longer than {MAX_ARGUMENT} bytes: {}...",
                a.chars().take(60).collect::<String>()
            )));
        }
        out.extend_from_slice(a.as_bytes());
        out.push(0);
    }
    Ok(out)
}

/// Splits a reply into its status line and output.
pub fn decode(bytes: &[u8]) -> Result<Reply> {
    let text = String::from_utf8_lossy(bytes);
    let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let status = first.trim().parse::<i32>().map_err(|_| {
        Error::Other(format!(
            "the JVM answered something that is not an attach reply: {:?}",
            first.chars().take(80).collect::<String>()
        ))
    })?;
    Ok(Reply {
        status,
        output: rest.to_string(),
    })
}

/// Connects, sends one command and reads the reply to its end, each wait
/// bounded by `timeout`.
pub fn execute(
    target: &Target,
    socket: &Path,
    command: &str,
    args: [&str; 3],
    timeout: Duration,
) -> Result<Reply> {
    let request = encode(command, args)?;
    let mut stream = UnixStream::connect(socket).map_err(|e| match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => Error::Other(format!(
            "{} refuses connections: a stale socket of an ended JVM? ({e})",
            socket.display()
        )),
        _ => Error::os(format!("cannot connect to {}", socket.display()), e),
    })?;
    stream
        .set_write_timeout(Some(timeout))
        .and_then(|_| stream.write_all(&request))
        .map_err(|e| Error::os(format!("cannot send '{command}' to JVM {}", target.pid), e))?;
    let mut reply = Vec::new();
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 64 * 1024];
    loop {
        signals::check()?;
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::Timeout(format!(
                "JVM {} did not answer '{command}' within {} ({}); raise --timeout to wait longer",
                target.pid,
                crate::cli::show_duration(timeout),
                stopped_or(target.pid, "it may be hung or busy")
            )));
        }
        // Short slices so that an interrupt is noticed promptly.
        let slice = (deadline - now).min(Duration::from_millis(100));
        stream
            .set_read_timeout(Some(slice))
            .map_err(|e| Error::Other(format!("socket: {e}")))?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                return Err(Error::Other(format!(
                    "reading the reply of JVM {}: {e}",
                    target.pid
                )))
            }
        }
    }
    if reply.is_empty() {
        return Err(Error::Other(format!(
            "JVM {} closed the connection without answering '{command}'",
            target.pid
        )));
    }
    decode(&reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_layout() {
        assert_eq!(
            encode("load", ["/a/lib.so", "true", "x=1"]).unwrap(),
            b"1\0load\0/a/lib.so\0true\0x=1\0"
        );
        assert!(encode("a-command-that-is-too-long", ["", "", ""]).is_err());
        assert!(encode("jcmd", [&"x".repeat(1025), "", ""]).is_err());
        // Cut on a character boundary, never inside one.
        assert!(encode("jcmd", [&"é".repeat(600), "", ""]).is_err());
    }

    #[test]
    fn reply_status_and_output() {
        assert_eq!(
            decode(b"0\nreturn code: 0\n").unwrap(),
            Reply {
                status: 0,
                output: "return code: 0\n".into()
            }
        );
        assert_eq!(decode(b"-1").unwrap().status, -1);
        assert!(decode(b"HTTP/1.1 400\n").is_err());
    }
}
