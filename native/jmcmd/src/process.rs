//! What `/proc` says about a target process: whether it is a JVM, whether
//! jmagent is loaded, its credentials, its pid inside its own PID namespace
//! and whether it sees the same files as jmcmd.
//!
//! Paths inside the target (its `/tmp`, its working directory) are always
//! reached through `/proc/<pid>/root` and `/proc/<pid>/cwd`: for a JVM in a
//! container they resolve in the container's mount namespace, and for a JVM
//! on the host they are the ordinary paths.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::perfdata::PerfData;

/// A process jmcmd may attach to.
#[derive(Debug, Clone)]
pub struct Target {
    /// Pid in jmcmd's PID namespace.
    pub pid: u32,
    /// Pid the JVM sees for itself (last `NSpid` field): it names the
    /// attach socket and trigger file.
    pub nspid: u32,
    /// Effective uid and gid: HotSpot accepts attach peers with these (or root).
    pub uid: u32,
    pub gid: u32,
    /// `/proc/<pid>/root`: the target's `/` as jmcmd reaches it.
    pub root: PathBuf,
    /// The target sees a different file system tree than jmcmd (another
    /// mount namespace or a chroot): jmcmd's paths mean nothing there.
    pub foreign_root: bool,
    /// `libjmagent*.so` as mapped by the target (its own path), if loaded.
    pub agent: Option<String>,
    /// Main class or jar and its arguments.
    pub command: String,
    /// The JVM's performance counters (`hsperfdata`), unless disabled.
    pub perf: Option<PerfData>,
}

impl Target {
    /// `/tmp` of the target as jmcmd reaches it.
    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// The JVM's Java specification version ("17"), when known.
    pub fn java_version(&self) -> Option<String> {
        self.perf
            .as_ref()
            .and_then(|p| p.string("java.property.java.vm.specification.version"))
    }
}

/// Errors of opening `/proc/<pid>/...`: ENOENT/ESRCH mean the process is gone.
fn proc_error(pid: u32, what: &str, e: std::io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ESRCH) => {
            Error::NoSuchProcess(format!("no such process: {pid}"))
        }
        Some(libc::EACCES) | Some(libc::EPERM) => Error::PermissionDenied(format!(
            "cannot read /proc/{pid}/{what} ({e}): run jmcmd as the JVM's user or as root"
        )),
        _ => Error::Other(format!("cannot read /proc/{pid}/{what}: {e}")),
    }
}

fn read_proc(pid: u32, what: &str) -> Result<String> {
    std::fs::read(format!("/proc/{pid}/{what}"))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| proc_error(pid, what, e))
}

/// Fields of `/proc/<pid>/status` jmcmd needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub euid: u32,
    pub egid: u32,
    /// Pids from jmcmd's namespace down to the process's own.
    pub nspids: Vec<u32>,
    /// Process state letter (`T`: stopped).
    pub state: char,
    pub threads: u64,
    pub rss_kib: u64,
}

/// Parses `/proc/<pid>/status`.
pub fn parse_status(text: &str) -> Option<Status> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    // Uid: real effective saved fs
    let nth = |name: &str, n: usize| -> Option<u32> {
        field(name)?.split_whitespace().nth(n)?.parse().ok()
    };
    let pid: u32 = field("Pid")?.parse().ok()?;
    let nspids = field("NSpid")
        .map(|l| {
            l.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .filter(|v: &Vec<u32>| !v.is_empty())
        .unwrap_or_else(|| vec![pid]);
    let kib = |name: &str| -> u64 {
        field(name)
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    Some(Status {
        euid: nth("Uid", 1)?,
        egid: nth("Gid", 1)?,
        nspids,
        state: field("State")?.chars().next()?,
        threads: kib("Threads"),
        rss_kib: kib("VmRSS"),
    })
}

pub fn status(pid: u32) -> Result<Status> {
    let text = read_proc(pid, "status")?;
    parse_status(&text).ok_or_else(|| Error::Other(format!("unreadable /proc/{pid}/status")))
}

/// Libraries of interest in a process's `/proc/<pid>/maps`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Libraries {
    pub libjvm: Option<String>,
    pub agent: Option<String>,
}

/// Finds `libjvm.so` and `libjmagent*.so` in a maps file. A path the kernel
/// marks ` (deleted)` is kept without the mark: the dynamic linker knows the
/// library by that name, so loading that path again reuses it.
pub fn parse_maps(text: &str) -> Libraries {
    let mut libs = Libraries::default();
    for line in text.lines() {
        // address perms offset dev inode path
        let Some(path) = line.splitn(6, ' ').nth(5).map(str::trim_start) else {
            continue;
        };
        if !path.starts_with('/') {
            continue;
        }
        let path = path.strip_suffix(" (deleted)").unwrap_or(path);
        let name = path.rsplit('/').next().unwrap_or(path);
        if libs.libjvm.is_none() && name == "libjvm.so" {
            libs.libjvm = Some(path.to_string());
        } else if libs.agent.is_none() && is_agent_name(name) {
            libs.agent = Some(path.to_string());
        }
    }
    libs
}

/// `libjmagent.so`, or a renamed copy `libjmagent-<version>.so` (but not
/// other libraries whose names merely start alike, such as a
/// `libjmagent_testlib.so`).
fn is_agent_name(name: &str) -> bool {
    name == "libjmagent.so"
        || name
            .strip_prefix("libjmagent-")
            .is_some_and(|rest| rest.ends_with(".so"))
}

pub fn libraries(pid: u32) -> Result<Libraries> {
    Ok(parse_maps(&read_proc(pid, "maps")?))
}

/// The arguments of a process (`/proc/<pid>/cmdline`).
pub fn cmdline(pid: u32) -> Result<Vec<String>> {
    let text = read_proc(pid, "cmdline")?;
    Ok(text
        .split('\0')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect())
}

/// Launcher options that take a value in the next argument.
const OPTIONS_WITH_VALUE: &[&str] = &[
    "-cp",
    "-classpath",
    "--class-path",
    "-p",
    "--module-path",
    "--upgrade-module-path",
    "--add-modules",
    "--limit-modules",
    "--add-reads",
    "--add-exports",
    "--add-opens",
    "--patch-module",
    "--enable-native-access",
];

/// Main class or jar and its arguments from a `java` command line, as jcmd
/// shows them (used when the JVM keeps no performance counters).
pub fn main_from_cmdline(args: &[String]) -> String {
    let mut i = 1;
    while i < args.len() {
        let a = args[i].as_str();
        if a == "-jar" || a == "-m" || a == "--module" {
            return args[i + 1..].join(" ");
        }
        if let Some(m) = a.strip_prefix("--module=") {
            let mut v = vec![m.to_string()];
            v.extend(args[i + 1..].iter().cloned());
            return v.join(" ");
        }
        if OPTIONS_WITH_VALUE.contains(&a) {
            i += 2;
            continue;
        }
        if !a.starts_with('-') {
            return args[i..].join(" ");
        }
        i += 1;
    }
    String::new()
}

/// Whether the JVM's own command line or launcher environment turns
/// `DisableAttachMechanism` on: the last setting wins, as in HotSpot.
pub fn attach_disabled_by_flags(args: &[String], environ: &str) -> Option<String> {
    let mut verdict = None;
    let env_opts = environ.split('\0').filter_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        matches!(
            k,
            "JAVA_TOOL_OPTIONS" | "JDK_JAVA_OPTIONS" | "_JAVA_OPTIONS"
        )
        .then_some((k, v))
    });
    let mut words: Vec<(String, &str)> = Vec::new();
    for (k, v) in env_opts {
        for w in v.split_whitespace() {
            words.push((w.to_string(), k));
        }
    }
    for a in args.iter().skip(1) {
        words.push((a.clone(), "command line"));
    }
    for (w, source) in words {
        if w == "-XX:+DisableAttachMechanism" {
            verdict = Some(format!("{w} on its {source}"));
        } else if w == "-XX:-DisableAttachMechanism" {
            verdict = None;
        }
    }
    verdict
}

/// The login name of `uid` from `/etc/passwd`, for messages.
pub fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
    })
}

/// `readlink` of a `/proc/<pid>/...` link.
fn link(pid: u32, what: &str) -> Result<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/{what}")).map_err(|e| proc_error(pid, what, e))
}

/// Whether `pid` sees another file system tree than jmcmd: another mount
/// namespace, or a root that is not `/`.
pub fn foreign_root(pid: u32) -> Result<bool> {
    let mine = std::fs::read_link("/proc/self/ns/mnt")
        .map_err(|e| Error::Other(format!("cannot read /proc/self/ns/mnt: {e}")))?;
    let theirs = link(pid, "ns/mnt")?;
    let root = link(pid, "root")?;
    Ok(mine != theirs || root != Path::new("/"))
}

/// Inspects `pid`: fails unless it is a JVM jmcmd can see.
pub fn inspect(pid: u32) -> Result<Target> {
    let st = status(pid)?;
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    if me != 0 && me != st.euid {
        return Err(Error::PermissionDenied(format!(
            "process {pid} belongs to uid {}{}, jmcmd runs as uid {me}: run jmcmd as that user or as root",
            st.euid,
            user_name(st.euid).map(|n| format!(" ({n})")).unwrap_or_default()
        )));
    }
    let libs = libraries(pid)?;
    if libs.libjvm.is_none() {
        let exe = link(pid, "exe")
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "?".into());
        return Err(Error::NotAJvm {
            pid,
            why: format!("no libjvm.so in its memory map; it runs {exe}"),
        });
    }
    let nspid = *st.nspids.last().expect("at least one pid");
    let root = PathBuf::from(format!("/proc/{pid}/root"));
    let perf = crate::perfdata::find(&root.join("tmp"), nspid, st.euid);
    let command = match perf.as_ref().and_then(|p| p.string("sun.rt.javaCommand")) {
        Some(c) => c,
        None => main_from_cmdline(&cmdline(pid)?),
    };
    Ok(Target {
        pid,
        nspid,
        uid: st.euid,
        gid: st.egid,
        foreign_root: foreign_root(pid)?,
        root,
        agent: libs.agent,
        command,
        perf,
    })
}

/// The clock-tick count since boot at which a process started: field 22 of
/// `/proc/<pid>/stat`, counted after the command name, which may itself
/// hold spaces and parentheses.
pub fn parse_start_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// When `pid` started, on the wall clock: its start in clock ticks since
/// boot, placed by how long ago that was on the boot-time clock (which
/// counts suspended time too, as the kernel's start time does).
pub fn started(pid: u32) -> Option<std::time::SystemTime> {
    let ticks = parse_start_ticks(&read_proc(pid, "stat").ok()?)?;
    // SAFETY: sysconf only reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec to write.
    if hz <= 0 || unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) } != 0 {
        return None;
    }
    let since_boot = std::time::Duration::new(now.tv_sec as u64, now.tv_nsec as u32);
    let at = std::time::Duration::from_nanos(ticks.saturating_mul(1_000_000_000) / hz as u64);
    std::time::SystemTime::now().checked_sub(since_boot.checked_sub(at)?)
}

/// Whether `pid` still exists (as a process, not a zombie).
pub fn alive(pid: u32) -> bool {
    match status(pid) {
        Ok(st) => st.state != 'Z' && st.state != 'X',
        Err(Error::PermissionDenied(_)) => true,
        Err(_) => false,
    }
}

/// Pids of all processes jmcmd can see, ascending.
pub fn all_pids() -> Vec<u32> {
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    pids.sort_unstable();
    pids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_ticks_after_a_name_with_spaces_and_parentheses() {
        // /proc/<pid>/stat of a thread renamed "a) b (c", as the kernel writes it.
        let stat = "4242 (a) b (c) S 1 4242 4242 0 -1 4194560 120 0 0 0 1 0 0 0 20 0 1 0 987654 9183232 512 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        assert_eq!(parse_start_ticks(stat), Some(987654));
        assert_eq!(parse_start_ticks("4242 (java) S 1 2"), None);
        assert_eq!(parse_start_ticks("garbage"), None);
    }

    #[test]
    fn a_child_started_when_it_was_spawned() {
        let before = std::time::SystemTime::now();
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let after = std::time::SystemTime::now();
        let started = started(child.id()).expect("a start time");
        let _ = child.kill();
        let _ = child.wait();
        // Clock ticks are 10 ms; the two clocks are read a moment apart.
        let slack = std::time::Duration::from_millis(50);
        assert!(
            started + slack >= before && started <= after + slack,
            "started {started:?}, spawned between {before:?} and {after:?}"
        );
    }

    #[test]
    fn status_fields_and_nspid() {
        let text = "Name:\tjava\nState:\tS (sleeping)\nPid:\t4242\nUid:\t1000\t1001\t1001\t1001\nGid:\t50\t51\t51\t51\nNSpid:\t4242\t7\nThreads:\t23\nVmRSS:\t  123456 kB\n";
        let st = parse_status(text).unwrap();
        assert_eq!(
            st,
            Status {
                euid: 1001,
                egid: 51,
                nspids: vec![4242, 7],
                state: 'S',
                threads: 23,
                rss_kib: 123456
            }
        );
        // Kernels before 4.1 have no NSpid line.
        let old = "State:\tR (running)\nPid:\t9\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n";
        assert_eq!(parse_status(old).unwrap().nspids, vec![9]);
    }

    #[test]
    fn maps_find_libjvm_and_agent() {
        let text = "\
7f0000000000-7f0000001000 r--p 00000000 08:01 123 /usr/lib/jvm/java-17/lib/server/libjvm.so
7f0000002000-7f0000003000 r-xp 00000000 08:01 124 /tmp/jmagent-0/libjmagent.so (deleted)
7f0000004000-7f0000005000 rw-p 00000000 00:00 0 
7ffc00000000-7ffc00001000 rw-p 00000000 00:00 0                          [stack]
";
        let libs = parse_maps(text);
        assert_eq!(
            libs.libjvm.as_deref(),
            Some("/usr/lib/jvm/java-17/lib/server/libjvm.so")
        );
        assert_eq!(libs.agent.as_deref(), Some("/tmp/jmagent-0/libjmagent.so"));
        assert_eq!(parse_maps("").libjvm, None);
        let other = "7f0000002000-7f0000003000 r-xp 00000000 08:01 124 /x/libjmagent_testlib.so\n";
        assert_eq!(parse_maps(other).agent, None);
        let renamed = "7f0000002000-7f0000003000 r-xp 00000000 08:01 124 /opt/libjmagent-0.1.so\n";
        assert_eq!(
            parse_maps(renamed).agent.as_deref(),
            Some("/opt/libjmagent-0.1.so")
        );
    }

    #[test]
    fn main_class_or_jar_from_cmdline() {
        let args = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            main_from_cmdline(&args("java -Xmx1g -cp a.jar:b io.x.Main one two")),
            "io.x.Main one two"
        );
        assert_eq!(
            main_from_cmdline(&args("java -jar /app/app.jar --port 1")),
            "/app/app.jar --port 1"
        );
        assert_eq!(
            main_from_cmdline(&args("java --module=m/io.x.M a")),
            "m/io.x.M a"
        );
        assert_eq!(main_from_cmdline(&args("java -version")), "");
    }

    #[test]
    fn disable_attach_flag_last_wins() {
        let args = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
        assert!(
            attach_disabled_by_flags(&args("java -XX:+DisableAttachMechanism Main"), "").is_some()
        );
        assert!(attach_disabled_by_flags(
            &args("java -XX:-DisableAttachMechanism Main"),
            "JAVA_TOOL_OPTIONS=-XX:+DisableAttachMechanism\0"
        )
        .is_none());
        assert!(attach_disabled_by_flags(
            &args("java Main"),
            "PATH=/bin\0JDK_JAVA_OPTIONS=-Xmx1g -XX:+DisableAttachMechanism\0"
        )
        .is_some());
    }
}
