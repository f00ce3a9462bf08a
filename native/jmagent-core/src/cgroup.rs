//! The memory limit the kernel will OOM-kill this process at, and how close
//! it is.
//!
//! RSS alone does not say whether a JVM is in danger: the container's cgroup
//! limit does, and the cgroup's usage (which also counts page cache and
//! kernel memory charged to it) is what is compared against it.
//!
//! The controller is found the way the JDK's container support finds it:
//! `/proc/self/cgroup` names this process's cgroup in each hierarchy,
//! `/proc/self/mountinfo` says where that hierarchy is mounted and which of
//! its cgroups the mount shows at its root. cgroup v1 is preferred when a v1
//! hierarchy carries the `memory` controller: on hybrid hosts (like the
//! development machine) a `0::/...` line exists too, but the unified
//! hierarchy there has no memory controller.

use std::io;
use std::path::{Path, PathBuf};

/// Which cgroup interface the figures came from, since they are not quite the
/// same measure: v1 `memory.usage_in_bytes` is batched per CPU and documented
/// as approximate, v2 `memory.current` is exact at page granularity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    V1,
    V2,
}

/// Limit and usage of the memory cgroup that constrains this process, in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerMemory {
    pub version: CgroupVersion,
    /// The effective limit: the smallest one on the way from this process's
    /// cgroup up to the root visible in the mount. `None` = unlimited.
    pub limit: Option<u64>,
    /// Usage of the cgroup that sets `limit` (that is the figure the kernel
    /// compares with it), or of this process's cgroup when unlimited. If the
    /// limit is only known from v1's `hierarchical_memory_limit` (ancestors not
    /// mounted), this process's cgroup usage.
    pub usage: u64,
    /// This process's cgroup path as `/proc/self/cgroup` shows it (relative to
    /// the cgroup namespace root: `/` inside most containers).
    pub path: String,
}

impl ContainerMemory {
    /// Bytes left before the limit; `None` when unlimited. Saturates at 0,
    /// since v1 usage can briefly exceed the limit while the kernel reclaims.
    pub fn headroom(&self) -> Option<u64> {
        self.limit.map(|l| l.saturating_sub(self.usage))
    }
}

/// Why the container's memory figures could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CgroupError {
    /// A file exists but could not be read. Absence is not an error: it
    /// means no memory controller (or no accounting) at that place.
    #[error("cannot read {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A controller file held something other than a byte count (or `max`
    /// for a limit): reporting 0 or "unlimited" instead would mislead.
    #[error("{}: expected a byte count{}, found `{value}`", .path.display(), if *.limit { " or `max`" } else { "" })]
    BadValue {
        path: PathBuf,
        value: String,
        /// Whether the file is a limit (where `max` is valid).
        limit: bool,
    },
}

/// Limits above this many bytes mean "no limit".
///
/// v1 prints an unlimited `memory.limit_in_bytes` as `PAGE_COUNTER_MAX` ×
/// page size rounded down: 0x7FFF_FFFF_FFFF_F000 with 4 KiB pages,
/// 0x7FFF_FFFF_FFFF_0000 with 64 KiB pages (arm64, ppc64). No machine has
/// 4 EiB, so anything above 2^62 is such a sentinel whatever the page size.
/// Applied to v2 numbers as well, which print `max` instead.
pub const UNLIMITED_ABOVE: u64 = 1 << 62;

/// Reads the memory cgroup of this process; `None` when no memory
/// controller applies to it (no cgroup support, controller disabled or not
/// mounted, or the process sits in the v2 root cgroup, which has no limit).
pub fn read_self() -> Result<Option<ContainerMemory>, CgroupError> {
    Ok(read_self_with_source()?.map(|(m, _)| m))
}

/// [`read_self`], and the file its `usage` was read from.
fn read_self_with_source() -> Result<Option<(ContainerMemory, PathBuf)>, CgroupError> {
    let Some(cgroup) = read_optional(Path::new("/proc/self/cgroup"))? else {
        return Ok(None);
    };
    let mountinfo = read_optional(Path::new("/proc/self/mountinfo"))?.unwrap_or_default();
    read_from_with_source(Path::new("/"), &cgroup, &mountinfo)
}

/// The memory cgroup of this process, found again every
/// [`CgroupWatch::RESOLVE_EVERY`] (the process may be moved, a limit
/// changed); in between, only its usage is read, from the file found.
#[derive(Debug, Default)]
pub struct CgroupWatch {
    found: Option<(Option<(ContainerMemory, PathBuf)>, std::time::Instant)>,
}

impl CgroupWatch {
    pub const RESOLVE_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

    /// As [`read_self`], at the cost of one file read between resolutions.
    pub fn read(&mut self) -> Result<Option<ContainerMemory>, CgroupError> {
        if let Some((found, at)) = &mut self.found {
            if at.elapsed() < Self::RESOLVE_EVERY {
                let Some((memory, usage_file)) = found else {
                    return Ok(None);
                };
                if let Some(usage) = read_usage(usage_file)? {
                    memory.usage = usage;
                    return Ok(Some(memory.clone()));
                }
            }
        }
        let found = read_self_with_source()?;
        let memory = found.as_ref().map(|(m, _)| m.clone());
        self.found = Some((found, std::time::Instant::now()));
        Ok(memory)
    }
}

/// Like [`read_self`], with the texts of `/proc/self/cgroup` and
/// `/proc/self/mountinfo` given and the mount points looked up under `root`
/// instead of `/`, so fixture trees can stand in for a container.
pub fn read_from(
    root: &Path,
    proc_self_cgroup: &str,
    mountinfo: &str,
) -> Result<Option<ContainerMemory>, CgroupError> {
    Ok(read_from_with_source(root, proc_self_cgroup, mountinfo)?.map(|(m, _)| m))
}

fn read_from_with_source(
    root: &Path,
    proc_self_cgroup: &str,
    mountinfo: &str,
) -> Result<Option<(ContainerMemory, PathBuf)>, CgroupError> {
    let mut v1_path = None;
    let mut v2_path = None;
    for line in proc_self_cgroup.lines() {
        // `hierarchy-id:controller-list:path`; the path itself may contain ':'.
        let mut it = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            v2_path = Some(path);
        } else if controllers.split(',').any(|c| c == "memory") {
            v1_path = Some(path);
        }
    }
    let mounts = parse_cgroup_mounts(mountinfo);

    // A controller is bound to exactly one hierarchy: if a v1 line lists
    // `memory`, the unified hierarchy cannot have it.
    if let Some(path) = v1_path {
        let candidates = mounts
            .iter()
            .filter(|m| !m.v2 && m.super_options.split(',').any(|o| o == "memory"));
        return match choose_mount(candidates, path) {
            Some(m) => read_hierarchy(root, CgroupVersion::V1, m, path),
            None => {
                log::debug!("memory cgroup {path} is not mounted; no container limit known");
                Ok(None)
            }
        };
    }
    if let Some(path) = v2_path {
        if let Some(m) = choose_mount(mounts.iter().filter(|m| m.v2), path) {
            return read_hierarchy(root, CgroupVersion::V2, m, path);
        }
    }
    Ok(None)
}

/// A cgroup filesystem mount from mountinfo.
#[derive(Debug)]
struct CgroupMount<'a> {
    v2: bool,
    /// The cgroup that appears at the mount point, e.g. `/` or `/docker/<id>`.
    root: String,
    mount_point: String,
    super_options: &'a str,
}

/// Keeps the `cgroup` and `cgroup2` lines of mountinfo.
///
/// Format: `id parent major:minor root mount-point options [optional...] -
/// fstype source super-options`, with spaces etc. in paths escaped as octal.
fn parse_cgroup_mounts(mountinfo: &str) -> Vec<CgroupMount<'_>> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let mut fields = line.split(' ');
        let (Some(_id), Some(_parent), Some(_dev), Some(root), Some(mount_point)) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            continue;
        };
        // Skip mount options and the variable number of optional fields.
        if !fields.by_ref().any(|f| f == "-") {
            continue;
        }
        let (Some(fstype), Some(_source), Some(super_options)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let v2 = match fstype {
            "cgroup2" => true,
            "cgroup" => false,
            _ => continue,
        };
        out.push(CgroupMount {
            v2,
            root: unescape_octal(root),
            mount_point: unescape_octal(mount_point),
            super_options,
        });
    }
    out
}

/// Undoes the kernel's `\ooo` escaping of space, tab, newline and backslash.
fn unescape_octal(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = (oct[0] - b'0') as u32 * 64
                    + (oct[1] - b'0') as u32 * 8
                    + (oct[2] - b'0') as u32;
                if let Ok(byte) = u8::try_from(v) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Picks the mount that shows `cgroup_path`: the one whose root is the
/// longest prefix of it (a bind mount of the process's own cgroup beats the
/// whole hierarchy), else the first one, whose root is then taken to be the
/// process's cgroup (a container namespace).
fn choose_mount<'m, 'a>(
    candidates: impl Iterator<Item = &'m CgroupMount<'a>>,
    cgroup_path: &str,
) -> Option<&'m CgroupMount<'a>>
where
    'a: 'm,
{
    let mut first = None;
    let mut best: Option<&CgroupMount> = None;
    for m in candidates {
        first.get_or_insert(m);
        if relative_to_mount(&m.root, cgroup_path).is_some()
            && best.is_none_or(|b| m.root.len() > b.root.len())
        {
            best = Some(m);
        }
    }
    best.or(first)
}

/// Where `cgroup_path` lies below a mount whose root is `mount_root`, as a
/// relative path; `None` when the mount does not show it.
fn relative_to_mount<'p>(mount_root: &str, cgroup_path: &'p str) -> Option<&'p str> {
    // Inside a cgroup namespace, a process moved out of the namespace's root
    // sees `/../..`: joining that would escape the mount point.
    if cgroup_path.split('/').any(|c| c == "..") {
        return None;
    }
    if mount_root == "/" {
        return Some(cgroup_path.trim_start_matches('/'));
    }
    let rest = cgroup_path.strip_prefix(mount_root.trim_end_matches('/'))?;
    if rest.is_empty() || rest.starts_with('/') {
        Some(rest.trim_start_matches('/'))
    } else {
        None
    }
}

/// `abs` (an absolute path on the real system) below `root`.
fn under(root: &Path, abs: &str) -> PathBuf {
    root.join(abs.trim_start_matches('/'))
}

/// Reads limit and usage of the cgroup at `cgroup_path` in the hierarchy
/// mounted at `mount`, taking the limits of its visible ancestors into
/// account; `None` when no cgroup on the way has the usage file.
fn read_hierarchy(
    root: &Path,
    version: CgroupVersion,
    mount: &CgroupMount,
    cgroup_path: &str,
) -> Result<Option<(ContainerMemory, PathBuf)>, CgroupError> {
    let mount_dir = under(root, &mount.mount_point);
    let own_dir = own_cgroup_dir(&mount_dir, &mount.root, cgroup_path);
    let (limit_file, usage_file) = memory_files(version);
    let walk = walk_up_to_mount(&own_dir, &mount_dir, limit_file, usage_file)?;
    let Some((own_usage, own_file)) = walk.own_usage else {
        log::debug!("no {usage_file} from {} up", own_dir.display());
        return Ok(None);
    };
    let mut best = walk.tightest;

    // v1 containers often see only their own cgroup; the kernel still tells
    // the limit inherited from unseen ancestors (what the JDK reads too).
    if version == CgroupVersion::V1 {
        if let Some(h) = v1_hierarchical_limit(&own_dir)? {
            if h <= UNLIMITED_ABOVE && best.as_ref().is_none_or(|(b, _)| h < *b) {
                best = Some((h, None));
            }
        }
    }

    let limit = best.as_ref().map(|(l, _)| *l);
    let (usage, file) = best.and_then(|(_, u)| u).unwrap_or((own_usage, own_file));
    let memory = ContainerMemory {
        version,
        limit,
        usage,
        path: cgroup_path.to_owned(),
    };
    Ok(Some((memory, file)))
}

/// The directory of this process's cgroup below `mount_dir`.
///
/// The joined path is missing when the mount's root is really the
/// process's own cgroup although mountinfo says `/` (some runtimes bind
/// the container's cgroup over /sys/fs/cgroup): use the mount point then.
fn own_cgroup_dir(mount_dir: &Path, mount_root: &str, cgroup_path: &str) -> PathBuf {
    match relative_to_mount(mount_root, cgroup_path) {
        Some(rel) if !rel.is_empty() => {
            let d = mount_dir.join(rel);
            if d.is_dir() {
                d
            } else {
                log::debug!(
                    "{} does not exist; using the mount point {}",
                    d.display(),
                    mount_dir.display()
                );
                mount_dir.to_path_buf()
            }
        }
        _ => mount_dir.to_path_buf(),
    }
}

/// The names of the limit and usage files of each cgroup version.
fn memory_files(version: CgroupVersion) -> (&'static str, &'static str) {
    match version {
        CgroupVersion::V1 => ("memory.limit_in_bytes", "memory.usage_in_bytes"),
        CgroupVersion::V2 => ("memory.max", "memory.current"),
    }
}

/// What [`walk_up_to_mount`] found.
struct Walk {
    /// Usage of the lowest cgroup on the way that has a usage file, and
    /// that file.
    own_usage: Option<(u64, PathBuf)>,
    /// The smallest limit on the way, with the usage of the cgroup that sets
    /// it and its file (`None` if that cgroup has no usage file).
    tightest: Option<(u64, Option<(u64, PathBuf)>)>,
}

/// Reads usage and limit of `own_dir` and of each ancestor up to `mount_dir`.
///
/// A limit anywhere above us applies to us too (v2 is strictly
/// hierarchical; v1 since 5.x always is). Walk up to the mount point, the
/// highest cgroup we can see; ties go to the higher cgroup, whose usage
/// includes ours and so reaches the limit first.
fn walk_up_to_mount(
    own_dir: &Path,
    mount_dir: &Path,
    limit_file: &str,
    usage_file: &str,
) -> Result<Walk, CgroupError> {
    let mut walk = Walk {
        own_usage: None,
        tightest: None,
    };
    let mut dir = own_dir;
    loop {
        let file = dir.join(usage_file);
        let usage = read_usage(&file)?.map(|u| (u, file));
        // In v2 a cgroup without the controller enabled has no memory files
        // and is charged to the nearest ancestor that has them.
        if walk.own_usage.is_none() {
            walk.own_usage = usage.clone();
        }
        if let Some(Some(limit)) = read_limit(&dir.join(limit_file))? {
            if walk.tightest.as_ref().is_none_or(|(b, _)| limit <= *b) {
                walk.tightest = Some((limit, usage));
            }
        }
        if dir == mount_dir {
            break;
        }
        match dir.parent() {
            Some(p) if p.starts_with(mount_dir) => dir = p,
            _ => break,
        }
    }
    Ok(walk)
}

/// v1's `hierarchical_memory_limit` from the `memory.stat` of `own_dir`:
/// the limit including ancestors that are not mounted. `None` when the
/// file or the line is absent.
fn v1_hierarchical_limit(own_dir: &Path) -> Result<Option<u64>, CgroupError> {
    let stat = own_dir.join("memory.stat");
    let Some(text) = read_optional(&stat)? else {
        return Ok(None);
    };
    stat_value(&text, "hierarchical_memory_limit")
        .transpose()
        .map_err(|value| CgroupError::BadValue {
            path: stat,
            value,
            limit: true,
        })
}

/// Contents of a file, `None` if it does not exist.
fn read_optional(path: &Path) -> Result<Option<String>, CgroupError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// `None`: no such file. `Some(None)`: unlimited.
fn read_limit(path: &Path) -> Result<Option<Option<u64>>, CgroupError> {
    let Some(text) = read_optional(path)? else {
        return Ok(None);
    };
    let v = text.trim();
    if v == "max" {
        return Ok(Some(None));
    }
    match v.parse::<u64>() {
        Ok(n) if n > UNLIMITED_ABOVE => Ok(Some(None)),
        Ok(n) => Ok(Some(Some(n))),
        Err(_) => Err(CgroupError::BadValue {
            path: path.to_owned(),
            value: v.to_owned(),
            limit: true,
        }),
    }
}

fn read_usage(path: &Path) -> Result<Option<u64>, CgroupError> {
    let Some(text) = read_optional(path)? else {
        return Ok(None);
    };
    let v = text.trim();
    v.parse().map(Some).map_err(|_| CgroupError::BadValue {
        path: path.to_owned(),
        value: v.to_owned(),
        limit: false,
    })
}

/// The value of `key` in a `key value` per line file such as memory.stat.
fn stat_value(text: &str, key: &str) -> Option<Result<u64, String>> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().map_err(|_| v.trim().to_owned()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cgroup");
    const MIB: u64 = 1 << 20;
    const V1_PATH: &str = "/process_api/899040fde7595317be74270bf154d485";

    fn texts(case: &str) -> (PathBuf, String, String) {
        let root = Path::new(FIX).join(case);
        let cg = std::fs::read_to_string(root.join("proc/self/cgroup")).unwrap();
        let mi = std::fs::read_to_string(root.join("proc/self/mountinfo")).unwrap();
        (root, cg, mi)
    }

    fn fixture(case: &str) -> Option<ContainerMemory> {
        let (root, cg, mi) = texts(case);
        read_from(&root, &cg, &mi).unwrap()
    }

    /// A scratch tree for cases not worth a checked-in fixture.
    struct TempTree(PathBuf);

    impl TempTree {
        fn new(name: &str, files: &[(&str, &str)]) -> Self {
            let dir =
                std::env::temp_dir().join(format!("jmagent-cg-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            for (path, content) in files {
                let p = dir.join(path);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, content).unwrap();
            }
            std::fs::create_dir_all(&dir).unwrap();
            TempTree(dir)
        }
    }

    impl Drop for TempTree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const V2_MOUNT: &str = "33 23 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";
    const V1_MOUNT: &str =
        "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n";

    #[test]
    fn v1_limited_on_this_machines_layout() {
        let m = fixture("v1-limited").unwrap();
        assert_eq!(
            m,
            ContainerMemory {
                version: CgroupVersion::V1,
                limit: Some(512 * MIB),
                usage: 302362624,
                path: V1_PATH.into(),
            }
        );
        assert_eq!(m.headroom(), Some(512 * MIB - 302362624));
    }

    #[test]
    fn v1_unlimited_sentinel_is_none() {
        let m = fixture("v1-unlimited").unwrap();
        assert_eq!(m.version, CgroupVersion::V1);
        assert_eq!(m.limit, None);
        assert_eq!(m.headroom(), None);
        assert_eq!(m.usage, 302362624);
        assert_eq!(m.path, V1_PATH);
    }

    #[test]
    fn v1_docker_mount_root_is_own_cgroup_and_limit_from_memory_stat() {
        let m = fixture("v1-hierarchical").unwrap();
        assert_eq!(m.version, CgroupVersion::V1);
        assert_eq!(m.limit, Some(1024 * MIB));
        assert_eq!(m.usage, 212340736);
        assert_eq!(
            m.path,
            "/docker/0f6a2c1b9e8d4c7a5b3e2f1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b"
        );
    }

    #[test]
    fn v1_combined_controllers() {
        let (root, _, _) = texts("v1-limited");
        let cg = format!("4:cpu,memory:{V1_PATH}\n");
        let mi = "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,cpu,memory\n";
        let m = read_from(&root, &cg, mi).unwrap().unwrap();
        assert_eq!((m.version, m.limit), (CgroupVersion::V1, Some(512 * MIB)));
        // A v1 memory line whose hierarchy is not mounted: nothing to read.
        assert_eq!(read_from(&root, &cg, "").unwrap(), None);
        // `name=`-only or non-memory hierarchies do not count.
        let mi_cpu = "32 31 0:29 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,cpu\n";
        assert_eq!(read_from(&root, &cg, mi_cpu).unwrap(), None);
    }

    #[test]
    fn v2_limited_kubernetes_container() {
        let m = fixture("v2-limited").unwrap();
        assert_eq!(m.version, CgroupVersion::V2);
        // The container's 512 MiB, not the pod's 1 GiB or kubepods' allocatable.
        assert_eq!(m.limit, Some(512 * MIB));
        assert_eq!(m.usage, 301989888);
        assert_eq!(m.headroom(), Some(512 * MIB - 301989888));
        assert!(m
            .path
            .starts_with("/kubepods.slice/kubepods-burstable.slice/"));
        assert!(m.path.ends_with(".scope"));
    }

    #[test]
    fn v2_limit_of_parent_applies_with_its_usage() {
        let m = fixture("v2-parent-limited").unwrap();
        assert_eq!(
            m,
            ContainerMemory {
                version: CgroupVersion::V2,
                limit: Some(2048 * MIB),
                usage: 1610612736,
                path: "/java.slice/orders.service".into(),
            }
        );
        assert_eq!(m.headroom(), Some(512 * MIB));
    }

    #[test]
    fn v2_unlimited_in_cgroup_namespace() {
        let m = fixture("v2-unlimited").unwrap();
        assert_eq!(
            m,
            ContainerMemory {
                version: CgroupVersion::V2,
                limit: None,
                usage: 157286400,
                path: "/".into(),
            }
        );
        assert_eq!(m.headroom(), None);
    }

    #[test]
    fn v2_mount_point_fallbacks() {
        let (root, _, mi) = texts("v2-unlimited");
        let expect = |cg: &str, mi: &str| {
            let m = read_from(&root, cg, mi).unwrap().unwrap();
            assert_eq!((m.limit, m.usage), (None, 157286400), "{cg}");
            assert_eq!(m.path, cg.trim_start_matches("0::").trim_end());
        };
        // Mount root `/` but the joined path does not exist: the mount is the own cgroup.
        expect("0::/system.slice/docker-9d2e4f.scope\n", &mi);
        // Mount root equals the cgroup path (bind mount of the own cgroup).
        let bind = mi.replace(
            "1290 1289 0:27 / /sys/fs/cgroup",
            "1290 1289 0:27 /system.slice/docker-9d2e4f.scope /sys/fs/cgroup",
        );
        assert_ne!(bind, mi);
        expect("0::/system.slice/docker-9d2e4f.scope\n", &bind);
        // Moved out of the namespace root: `..` must not climb out of the mount.
        expect("0::/../../user.slice\n", &mi);
    }

    #[test]
    fn v2_root_cgroup_or_no_controller_is_none() {
        // A host process in the root cgroup: no memory.max/current there.
        let (root, _, mi) = texts("v2-limited");
        assert_eq!(read_from(&root, "0::/\n", &mi).unwrap(), None);
        // This machine's unified hierarchy (no memory controller) without the v1 line.
        let (root, _, mi) = texts("v1-limited");
        assert_eq!(read_from(&root, "0::/\n", &mi).unwrap(), None);
        assert_eq!(read_from(&root, "", "").unwrap(), None);
        assert_eq!(read_from(&root, "garbage\n1:\n", &mi).unwrap(), None);
        // No cgroup2 mount at all.
        assert_eq!(read_from(&root, "0::/x\n", V1_MOUNT).unwrap(), None);
    }

    #[test]
    fn v2_cgroup_without_controller_is_charged_to_ancestor() {
        // `a/b` has no memory files (controller not enabled in `a`'s subtree_control).
        let t = TempTree::new(
            "inherit",
            &[
                ("sys/fs/cgroup/a/memory.max", "max\n"),
                ("sys/fs/cgroup/a/memory.current", "4096\n"),
                ("sys/fs/cgroup/a/b/cgroup.procs", "1\n"),
            ],
        );
        let m = read_from(&t.0, "0::/a/b\n", V2_MOUNT).unwrap().unwrap();
        assert_eq!((m.limit, m.usage, m.path.as_str()), (None, 4096, "/a/b"));
    }

    #[test]
    fn sentinel_threshold_and_bad_values() {
        let t = TempTree::new(
            "v1-64k",
            &[
                // PAGE_COUNTER_MAX with 64 KiB pages.
                (
                    "sys/fs/cgroup/memory/memory.limit_in_bytes",
                    "9223372036854710272\n",
                ),
                ("sys/fs/cgroup/memory/memory.usage_in_bytes", "1000\n"),
            ],
        );
        let m = read_from(&t.0, "4:memory:/\n", V1_MOUNT).unwrap().unwrap();
        assert_eq!((m.limit, m.usage), (None, 1000));
        // Just at the threshold still counts as a limit.
        let t = TempTree::new(
            "v2-edge",
            &[
                (
                    "sys/fs/cgroup/c/memory.max",
                    &format!("{UNLIMITED_ABOVE}\n"),
                ),
                ("sys/fs/cgroup/c/memory.current", "1\n"),
            ],
        );
        let m = read_from(&t.0, "0::/c\n", V2_MOUNT).unwrap().unwrap();
        assert_eq!(m.limit, Some(UNLIMITED_ABOVE));

        let t = TempTree::new(
            "bad",
            &[
                ("sys/fs/cgroup/c/memory.max", "lots\n"),
                ("sys/fs/cgroup/c/memory.current", "1\n"),
                ("sys/fs/cgroup/d/memory.max", "max\n"),
                ("sys/fs/cgroup/d/memory.current", "max\n"),
            ],
        );
        let e = read_from(&t.0, "0::/c\n", V2_MOUNT).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("c/memory.max") && msg.contains("`lots`") && msg.contains("or `max`"),
            "{msg}"
        );
        let e = read_from(&t.0, "0::/d\n", V2_MOUNT).unwrap_err();
        assert!(
            matches!(e, CgroupError::BadValue { limit: false, .. }),
            "{e}"
        );
        assert!(!e.to_string().contains("or `max`"), "{e}");
    }

    #[test]
    fn escaped_mount_point() {
        let t = TempTree::new(
            "esc",
            &[
                ("cg roup/memory.max", "1048576\n"),
                ("cg roup/memory.current", "2048\n"),
            ],
        );
        let mi = "30 23 0:27 / /cg\\040roup rw - cgroup2 cgroup2 rw\n";
        let m = read_from(&t.0, "0::/\n", mi).unwrap().unwrap();
        assert_eq!((m.limit, m.usage), (Some(MIB), 2048));
        assert_eq!(unescape_octal(r"a\134b\011c\0"), "a\\b\tc\\0");
        assert_eq!(unescape_octal(r"\777x\12"), "\\777x\\12");
    }

    #[test]
    fn headroom_saturates() {
        let m = ContainerMemory {
            version: CgroupVersion::V1,
            limit: Some(100),
            usage: 104,
            path: "/".into(),
        };
        assert_eq!(m.headroom(), Some(0));
    }

    #[test]
    fn watch_reads_what_read_self_reads_then_only_the_usage() {
        let mut watch = CgroupWatch::default();
        let first = watch.read().expect("first read");
        let again = watch.read().expect("second read");
        let direct = read_self().expect("read_self");
        match (&first, &again, &direct) {
            (Some(a), Some(b), Some(d)) => {
                for m in [b, d] {
                    assert_eq!((m.version, m.limit, &m.path), (a.version, a.limit, &a.path));
                    // Other tests allocate meanwhile: 256 MiB of slack.
                    assert!(m.usage.abs_diff(a.usage) < 256 << 20, "{a:?} vs {m:?}");
                }
            }
            (None, None, None) => println!("no memory cgroup here"),
            other => panic!("disagree: {other:?}"),
        }
    }

    #[test]
    fn read_self_on_this_machine() {
        let m = read_self().expect("read_self failed");
        println!(
            "read_self: {m:?} headroom {:?}",
            m.as_ref().and_then(|m| m.headroom())
        );
        let cg = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let v1_memory = cg.lines().any(|l| {
            l.split(':')
                .nth(1)
                .is_some_and(|c| c.split(',').any(|c| c == "memory"))
        });
        if let Some(m) = &m {
            assert!(m.usage > 0, "{m:?}");
            assert!(cg.contains(&m.path), "{m:?} not in {cg}");
        }
        if v1_memory && Path::new("/sys/fs/cgroup/memory/memory.usage_in_bytes").exists() {
            assert_eq!(m.unwrap().version, CgroupVersion::V1);
        }
    }
}
