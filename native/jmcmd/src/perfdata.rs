//! HotSpot's performance counters (`/tmp/hsperfdata_<user>/<pid>`), the
//! file jcmd and jps read to list JVMs. The parser is jmagent-core's
//! ([`jmagent_core::perfdata`]), which the agent also uses on its own
//! process; this module only finds the file.
//!
//! jmcmd reads three things from it: the main class and arguments
//! (`sun.rt.javaCommand`), the Java version, and whether the JVM accepts
//! attach at all (`sun.rt.jvmCapabilities`, whose first character is `0`
//! under `-XX:+DisableAttachMechanism`), so an attach-disabled JVM is
//! recognised without sending it a SIGQUIT it would answer with a thread
//! dump on its stdout.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

pub use jmagent_core::perfdata::{parse, PerfData};

/// The counters of the JVM whose own pid is `nspid` and whose effective
/// uid is `uid`, looked up in every `hsperfdata_*` directory of its `/tmp`
/// (the user name inside a container need not exist on the host). HotSpot
/// creates the file as the JVM's user, and replaces a stale one only in its
/// own user's directory: a file of the same pid owned by another uid is
/// left by an ended process whose pid was reused, and is not this JVM's.
pub fn find(tmp: &Path, nspid: u32, uid: u32) -> Option<PerfData> {
    let dirs = std::fs::read_dir(tmp).ok()?;
    for d in dirs.flatten() {
        if !d.file_name().to_string_lossy().starts_with("hsperfdata_") {
            continue;
        }
        let path = d.path().join(nspid.to_string());
        if !std::fs::metadata(&path).is_ok_and(|m| m.uid() == uid) {
            continue;
        }
        if let Ok(bytes) = std::fs::read(&path) {
            if let Some(p) = parse(&bytes) {
                return Some(p);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nothing_in_an_empty_tmp() {
        let dir = std::env::temp_dir().join(format!("jmcmd-perf-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("hsperfdata_nobody")).unwrap();
        std::fs::write(dir.join("hsperfdata_nobody/42"), b"not perf data").unwrap();
        // SAFETY: geteuid cannot fail.
        let me = unsafe { libc::geteuid() };
        assert!(find(&dir, 42, me).is_none());
        assert!(find(&dir, 43, me).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
