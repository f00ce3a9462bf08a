//! HotSpot's performance counters (`/tmp/hsperfdata_<user>/<pid>`), the
//! file jcmd and jps read to list JVMs.
//!
//! jmcmd reads three things from it: the main class and arguments
//! (`sun.rt.javaCommand`), the Java version, and whether the JVM accepts
//! attach at all (`sun.rt.jvmCapabilities`, whose first character is `0`
//! under `-XX:+DisableAttachMechanism`), so an attach-disabled JVM is
//! recognised without sending it a SIGQUIT it would answer with a thread
//! dump on its stdout.
//!
//! Layout (HotSpot `perfMemory.hpp`): a prologue (magic `0xcafec0c0`
//! big-endian, byte order, version, used bytes, entry offset and count),
//! then entries, each with its length, name offset, vector length, type
//! (`B` byte array, `J` long) and data offset.

use std::collections::HashMap;
use std::path::Path;

/// One counter's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Long(i64),
    Text(String),
}

/// The counters of one JVM, by name.
#[derive(Debug, Clone, Default)]
pub struct PerfData {
    pub values: HashMap<String, Value>,
}

impl PerfData {
    pub fn string(&self, name: &str) -> Option<String> {
        match self.values.get(name)? {
            Value::Text(s) => Some(s.clone()),
            Value::Long(_) => None,
        }
    }

    /// `Some(false)` when the JVM reports that attach is disabled.
    pub fn attach_supported(&self) -> Option<bool> {
        let caps = self.string("sun.rt.jvmCapabilities")?;
        Some(caps.starts_with('1'))
    }
}

/// Parses a performance-counter file; `None` if it is not one.
pub fn parse(data: &[u8]) -> Option<PerfData> {
    if data.get(0..4)? != [0xca, 0xfe, 0xc0, 0xc0] {
        return None;
    }
    let little = *data.get(4)? == 1;
    let i32_at = |off: usize| -> Option<i32> {
        let b: [u8; 4] = data.get(off..off + 4)?.try_into().ok()?;
        Some(if little {
            i32::from_le_bytes(b)
        } else {
            i32::from_be_bytes(b)
        })
    };
    let i64_at = |off: usize| -> Option<i64> {
        let b: [u8; 8] = data.get(off..off + 8)?.try_into().ok()?;
        Some(if little {
            i64::from_le_bytes(b)
        } else {
            i64::from_be_bytes(b)
        })
    };
    let c_string = |bytes: &[u8]| -> String {
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        String::from_utf8_lossy(&bytes[..end]).into_owned()
    };
    let entry_offset = usize::try_from(i32_at(24)?).ok()?;
    let entries = usize::try_from(i32_at(28)?).ok()?;
    let mut values = HashMap::new();
    let mut at = entry_offset;
    for _ in 0..entries {
        let length = usize::try_from(i32_at(at)?).ok()?;
        if length == 0 || at + length > data.len() {
            break;
        }
        let name_offset = usize::try_from(i32_at(at + 4)?).ok()?;
        let vector_length = usize::try_from(i32_at(at + 8)?).ok()?;
        let kind = *data.get(at + 12)?;
        let data_offset = usize::try_from(i32_at(at + 16)?).ok()?;
        let name = c_string(data.get(at + name_offset..at + length)?);
        let value = match (kind, vector_length) {
            (b'J', 0) => i64_at(at + data_offset).map(Value::Long),
            (b'B', n) if n > 0 => data
                .get(at + data_offset..at + data_offset + n)
                .map(|b| Value::Text(c_string(b))),
            _ => None,
        };
        if let Some(v) = value {
            values.insert(name, v);
        }
        at += length;
    }
    Some(PerfData { values })
}

/// The counters of the JVM whose own pid is `nspid`, looked up in every
/// `hsperfdata_*` directory of its `/tmp` (the user name inside a
/// container need not exist on the host).
pub fn find(tmp: &Path, nspid: u32) -> Option<PerfData> {
    let dirs = std::fs::read_dir(tmp).ok()?;
    for d in dirs.flatten() {
        if !d.file_name().to_string_lossy().starts_with("hsperfdata_") {
            continue;
        }
        if let Ok(bytes) = std::fs::read(d.path().join(nspid.to_string())) {
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

    /// Builds a little-endian file with the given entries, as HotSpot lays it out.
    fn file(entries: &[(&str, Value)]) -> Vec<u8> {
        let mut out = vec![0xca, 0xfe, 0xc0, 0xc0, 1, 2, 0, 1];
        out.extend_from_slice(&[0; 24]);
        let mut body = Vec::new();
        for (name, value) in entries {
            let name_offset = 20;
            let mut name_bytes = name.as_bytes().to_vec();
            name_bytes.push(0);
            while (name_offset + name_bytes.len()) % 8 != 0 {
                name_bytes.push(0);
            }
            let data_offset = name_offset + name_bytes.len();
            let (kind, vector, data) = match value {
                Value::Long(v) => (b'J', 0, v.to_le_bytes().to_vec()),
                Value::Text(s) => {
                    let mut d = s.as_bytes().to_vec();
                    d.resize(s.len() + 8, 0);
                    (b'B', d.len(), d)
                }
            };
            let length = data_offset + data.len();
            body.extend_from_slice(&(length as i32).to_le_bytes());
            body.extend_from_slice(&(name_offset as i32).to_le_bytes());
            body.extend_from_slice(&(vector as i32).to_le_bytes());
            body.extend_from_slice(&[kind, 0, 5, 1]);
            body.extend_from_slice(&(data_offset as i32).to_le_bytes());
            body.extend_from_slice(&name_bytes);
            body.extend_from_slice(&data);
        }
        out[24..28].copy_from_slice(&32i32.to_le_bytes());
        out[28..32].copy_from_slice(&(entries.len() as i32).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn reads_strings_and_longs() {
        let data = file(&[
            ("sun.rt.javaCommand", Value::Text("io.x.Main a b".into())),
            ("sun.rt.jvmCapabilities", Value::Text("01000000".into())),
            ("java.threads.live", Value::Long(12)),
        ]);
        let p = parse(&data).unwrap();
        assert_eq!(
            p.string("sun.rt.javaCommand").as_deref(),
            Some("io.x.Main a b")
        );
        assert_eq!(p.values.get("java.threads.live"), Some(&Value::Long(12)));
        assert_eq!(p.attach_supported(), Some(false));
    }

    #[test]
    fn rejects_other_files() {
        assert!(parse(b"not a perf file at all, not at all").is_none());
        assert!(parse(&[0xca, 0xfe]).is_none());
    }

    #[test]
    fn reads_a_live_jvm_file_if_one_is_around() {
        // Real files are checked by the integration tests; this only makes
        // sure a truncated file never panics.
        let data = file(&[("a", Value::Long(1))]);
        for n in 0..data.len() {
            let _ = parse(&data[..n]);
        }
    }
}
