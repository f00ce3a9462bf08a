//! Running a jmagent action in a JVM: the attach `load` command with the
//! agent library, `true` (an absolute path) and the option string
//! `action=<a>,<options>,out=<file>`.
//!
//! No socket is opened in the target for the answer: the agent writes the
//! action's output (or its error) to `out`, a file it creates with
//! `O_CREAT|O_EXCL|O_NOFOLLOW` and mode 0600, in a directory jmcmd creates
//! with mode 0700 under the target's uid in the target's `/tmp`. jmcmd
//! reads it and removes both.
//!
//! The library path is the one the target sees: the path it already has
//! mapped (so the dynamic linker hands back the loaded library and the
//! agent is never loaded twice), else jmcmd's own library, else, when the
//! target cannot reach that file (another mount namespace, a chroot, or
//! a directory its user may not read), a copy placed in the target's
//! `/tmp/jmagent-<uid>/`, as async-profiler's launcher does.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::attach::{self, Reply};
use crate::cli::Action;
use crate::error::{Error, Result};
use crate::process::Target;

/// Where `libjmagent.so` is when the target does not have it yet.
#[derive(Debug, Clone)]
pub struct AgentFile {
    pub path: PathBuf,
}

impl AgentFile {
    /// `--agent PATH`, or `libjmagent.so` next to the jmcmd binary.
    pub fn locate(explicit: Option<&Path>) -> Result<AgentFile> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => {
                let exe = std::env::current_exe().map_err(|e| {
                    Error::AgentNotFound(format!("cannot find jmcmd's own path: {e}"))
                })?;
                exe.parent().unwrap_or(Path::new("/")).join("libjmagent.so")
            }
        };
        let path = std::fs::canonicalize(&path).map_err(|e| {
            Error::AgentNotFound(format!(
                "agent library {} not found ({e}): put libjmagent.so next to jmcmd or give --agent PATH",
                path.display()
            ))
        })?;
        if !path.is_file() {
            return Err(Error::AgentNotFound(format!(
                "agent library {} is not a file",
                path.display()
            )));
        }
        Ok(AgentFile { path })
    }

    fn read(&self) -> Result<Vec<u8>> {
        std::fs::read(&self.path)
            .map_err(|e| Error::AgentNotFound(format!("cannot read {}: {e}", self.path.display())))
    }
}

/// A random lowercase hex string, for names nobody can predict.
fn random_hex() -> String {
    let mut b = [0u8; 8];
    // SAFETY: b is a valid writable buffer of its length.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        // Unpredictability is a bonus here (O_EXCL and 0700 are the
        // protection); fall back to time and pid.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        b = (t ^ u64::from(std::process::id()) << 32).to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A private directory in the target's `/tmp` (mode 0700, created under the
/// target's uid) holding the agent's output file; removed when dropped.
pub struct OutDir {
    /// As jmcmd reaches it (through `/proc/<pid>/root`).
    here: PathBuf,
    /// As the target sees it.
    there: PathBuf,
}

impl OutDir {
    pub fn create(target: &Target) -> Result<OutDir> {
        for _ in 0..8 {
            let name = format!("jmcmd-{}-{}", std::process::id(), random_hex());
            let here = target.tmp().join(&name);
            match std::fs::DirBuilder::new().mode(0o700).create(&here) {
                Ok(()) => {
                    return Ok(OutDir {
                        here,
                        there: Path::new("/tmp").join(name),
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(Error::os(
                        format!(
                            "cannot create a private directory in {}",
                            target.tmp().display()
                        ),
                        e,
                    ))
                }
            }
        }
        Err(Error::Other(
            "cannot create a private output directory".into(),
        ))
    }

    /// The output file as the target sees it (the `out=` option).
    pub fn file_for_target(&self) -> String {
        self.there.join("out").display().to_string()
    }

    /// The output file's content, if the agent wrote one.
    pub fn read(&self) -> Result<Option<String>> {
        let path = self.here.join("out");
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::os(format!("cannot read {}", path.display()), e)),
        };
        let mut text = String::new();
        use std::io::Read;
        (&file)
            .read_to_string(&mut text)
            .map_err(|e| Error::Other(format!("cannot read {}: {e}", path.display())))?;
        Ok(Some(text))
    }
}

impl Drop for OutDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.here.join("out"));
        let _ = std::fs::remove_dir(&self.here);
    }
}

/// What a `load` reply says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadReply {
    /// The library was loaded and `Agent_OnAttach` returned this code.
    Returned(i32),
    /// The JVM did not load the library or refused to; its message.
    NotLoaded { status: i32, message: String },
}

/// Reads a `load` reply. JDK 21+ answer status `0` and `return code: N`
/// (a failed load also answers `0`, with a message instead); JDK 11 and 17
/// answer status `0` and `N` after a load, and a non-zero status with a
/// message when the library cannot be loaded.
pub fn parse_load_reply(reply: &Reply) -> LoadReply {
    let message = reply.output.trim().to_string();
    if reply.status != 0 {
        return LoadReply::NotLoaded {
            status: reply.status,
            message,
        };
    }
    let first = message.lines().next().unwrap_or("").trim();
    if first.is_empty() {
        return LoadReply::Returned(0);
    }
    let code = first.strip_prefix("return code:").unwrap_or(first).trim();
    match code.parse() {
        Ok(n) => LoadReply::Returned(n),
        Err(_) => LoadReply::NotLoaded { status: 0, message },
    }
}

/// The library path the target will `dlopen`, copying the library into
/// the target's `/tmp` when it cannot reach jmcmd's. Runs with the target's
/// credentials; `bytes` were read before switching to them.
fn library_for_target(
    target: &Target,
    agent: Option<&AgentFile>,
    bytes: Option<&[u8]>,
) -> Result<String> {
    if let Some(loaded) = &target.agent {
        return Ok(loaded.clone());
    }
    let agent = agent.expect("located when the target has no agent");
    let readable = std::fs::File::open(&agent.path).is_ok();
    if !target.foreign_root && readable {
        return Ok(agent.path.display().to_string());
    }
    match bytes {
        Some(b) => stage_copy(target, b),
        None => stage_copy(target, &agent.read()?),
    }
}

/// Puts `bytes` at `/tmp/jmagent-<uid>/libjmagent.so` inside the target
/// (directory mode 0700, owned by the target's uid; replaced atomically, so
/// a JVM that mapped an older copy keeps it, and under a lock of the
/// directory, so concurrent runs agree on one copy) and returns that path.
fn stage_copy(target: &Target, bytes: &[u8]) -> Result<String> {
    let dir_name = format!("jmagent-{}", target.uid);
    let dir = target.tmp().join(&dir_name);
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::os(format!("cannot create {}", dir.display()), e)),
    }
    // A directory of that name made by someone else must not be used: its
    // owner could swap the library for another.
    let meta = std::fs::symlink_metadata(&dir)
        .map_err(|e| Error::os(format!("cannot check {}", dir.display()), e))?;
    if !meta.is_dir() || meta.uid() != target.uid || meta.permissions().mode() & 0o077 != 0 {
        return Err(Error::PermissionDenied(format!(
            "{} is not a directory private to uid {}: remove it",
            dir.display(),
            target.uid
        )));
    }
    // One jmcmd at a time compares and replaces the copy: two of them
    // replacing an older copy at once would each rename its own over the
    // other's, under a JVM that just mapped the first.
    let lock = std::fs::File::open(&dir)
        .map_err(|e| Error::os(format!("cannot open {}", dir.display()), e))?;
    // SAFETY: flock on a descriptor this function owns; the lock goes with
    // it when `lock` is dropped.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) } != 0 {
        return Err(Error::os(
            format!("cannot lock {}", dir.display()),
            std::io::Error::last_os_error(),
        ));
    }
    let final_path = dir.join("libjmagent.so");
    if std::fs::read(&final_path).is_ok_and(|old| old == bytes) {
        return Ok(format!("/tmp/{dir_name}/libjmagent.so"));
    }
    let tmp = dir.join(format!(".libjmagent.so.{}", random_hex()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o700)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        // Create-if-absent: two jmcmd runs staging the same library at once
        // must not replace the copy the first JVM just mapped.
        match std::fs::hard_link(&tmp, &final_path) {
            Ok(()) => std::fs::remove_file(&tmp),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if std::fs::read(&final_path).is_ok_and(|old| old == bytes) {
                    std::fs::remove_file(&tmp)
                } else {
                    std::fs::rename(&tmp, &final_path)
                }
            }
            Err(e) => Err(e),
        }
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::os(
            format!("cannot copy the agent to {}", final_path.display()),
            e,
        ));
    }
    Ok(format!("/tmp/{dir_name}/libjmagent.so"))
}

/// Output of an action that succeeded; `None` when the agent wrote none.
pub type ActionOutput = Option<String>;

/// Runs `action` with `options` in the target through the agent.
/// `explicit` is `--agent`; the library is only looked for when the target
/// does not run the agent already.
pub fn run_action(
    target: &Target,
    action: Action,
    options: &str,
    explicit: Option<&Path>,
    timeout: Duration,
) -> Result<ActionOutput> {
    let agent = match target.agent {
        Some(_) => None,
        None => Some(AgentFile::locate(explicit)?),
    };
    // The library may not be readable under the target's uid: read it now.
    let bytes = match &agent {
        Some(a) if target.foreign_root || running_as_root() => Some(a.read()?),
        _ => None,
    };
    let (_creds, socket) = attach::open(target, timeout)?;
    let library = library_for_target(target, agent.as_ref(), bytes.as_deref())?;
    let out = OutDir::create(target)?;
    let mut option_text = format!("action={}", action.name());
    if !options.is_empty() {
        option_text.push(',');
        option_text.push_str(options);
    }
    option_text.push_str(",out=");
    option_text.push_str(&out.file_for_target());
    let reply = attach::execute(
        target,
        &socket,
        "load",
        [&library, "true", &option_text],
        timeout,
    )?;
    match parse_load_reply(&reply) {
        LoadReply::Returned(0) => Ok(out.read()?),
        LoadReply::Returned(code) => {
            let message = out.read()?.map(|m| one_line(&m)).filter(|m| !m.is_empty());
            Err(Error::CommandFailed(message.unwrap_or_else(|| {
                format!(
                    "the agent in JVM {} failed ({action}: return code {code}); its stderr says why",
                    target.pid,
                    action = action.name()
                )
            })))
        }
        LoadReply::NotLoaded { status, message } => {
            if message.contains("EnableDynamicAgentLoading")
                || message.contains("Dynamic agent loading is not enabled")
            {
                let advice = match &agent {
                    Some(a) => format!("start it with -agentpath:{} instead", a.path.display()),
                    // Started with -agentpath: attach 'load' is jmcmd's only way in.
                    None => "jmcmd reaches the agent it runs only through attach; use the agent's periodic log or its MXBean, or restart the JVM without -XX:-EnableDynamicAgentLoading".into(),
                };
                return Err(Error::DynamicLoadingRefused {
                    pid: target.pid,
                    advice,
                });
            }
            Err(Error::CommandFailed(format!(
                "JVM {} could not load {library} (status {status}): {}",
                target.pid,
                one_line(&message)
            )))
        }
    }
}

fn running_as_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A multi-line message on one line.
pub fn one_line(text: &str) -> String {
    text.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Runs a diagnostic command (what `jcmd <pid> <line>` runs) and returns its output.
pub fn diagnostic(target: &Target, line: &str, timeout: Duration) -> Result<String> {
    let (_creds, socket) = attach::open(target, timeout)?;
    let reply = attach::execute(target, &socket, "jcmd", [line, "", ""], timeout)?;
    if reply.status != 0 {
        return Err(Error::CommandFailed(one_line(&reply.output)));
    }
    Ok(reply.output)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: i32, output: &str) -> Reply {
        Reply {
            status,
            output: output.into(),
        }
    }

    #[test]
    fn load_replies_of_every_jdk() {
        // JDK 21+
        assert_eq!(
            parse_load_reply(&reply(0, "return code: 0\n")),
            LoadReply::Returned(0)
        );
        assert_eq!(
            parse_load_reply(&reply(0, "return code: -1\n")),
            LoadReply::Returned(-1)
        );
        // JDK 11, 17
        assert_eq!(parse_load_reply(&reply(0, "0\n")), LoadReply::Returned(0));
        assert_eq!(parse_load_reply(&reply(0, "-1\n")), LoadReply::Returned(-1));
        assert_eq!(parse_load_reply(&reply(0, "")), LoadReply::Returned(0));
        assert!(matches!(
            parse_load_reply(&reply(0, "Dynamic agent loading is not enabled. Use -XX:+EnableDynamicAgentLoading to launch target VM.\n")),
            LoadReply::NotLoaded { status: 0, .. }
        ));
        assert!(matches!(
            parse_load_reply(&reply(-1, "/x/libjmagent.so was not loaded.\n")),
            LoadReply::NotLoaded { status: -1, .. }
        ));
    }

    #[test]
    fn messages_fold_into_one_line() {
        assert_eq!(one_line("a\n  b \n\n"), "a; b");
    }
}
