//! HotSpot's performance counters (PerfData): the memory jstat, jps and
//! jcmd read from `/tmp/hsperfdata_<user>/<pid>`, and that the agent reads
//! in its own process (through `PerfMemory`, found by VMStructs).
//!
//! Layout (HotSpot `perfMemory.hpp`): a prologue (magic `0xcafec0c0`
//! big-endian, byte order, version, used bytes, entry offset and count),
//! then entries, each with its length, name offset, vector length, type
//! (`B` byte array, `J` long) and data offset.
//!
//! Which counters HotSpot updates when matters to readers: thread counts
//! as threads start and end, heap capacities when the collector resizes a
//! space (at a GC), heap `used` figures by the 50 ms sampler or at a GC,
//! metaspace figures only at the end of a GC.

use std::collections::HashMap;

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

/// Size of the prologue; entries start after it.
pub const PROLOGUE_SIZE: usize = 32;

impl PerfData {
    pub fn string(&self, name: &str) -> Option<String> {
        self.text(name).map(str::to_string)
    }

    /// A string counter, borrowed.
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.values.get(name)? {
            Value::Text(s) => Some(s),
            Value::Long(_) => None,
        }
    }

    /// A long counter.
    pub fn long(&self, name: &str) -> Option<i64> {
        match self.values.get(name)? {
            Value::Long(v) => Some(*v),
            Value::Text(_) => None,
        }
    }

    /// A long counter that is a size or a count (never negative).
    pub fn bytes(&self, name: &str) -> Option<u64> {
        self.long(name).and_then(|v| u64::try_from(v).ok())
    }

    /// `Some(false)` when the JVM reports that attach is disabled
    /// (`sun.rt.jvmCapabilities` starts with `0` under
    /// `-XX:+DisableAttachMechanism`).
    pub fn attach_supported(&self) -> Option<bool> {
        let caps = self.text("sun.rt.jvmCapabilities")?;
        Some(caps.starts_with('1'))
    }

    /// Parses the text `jcmd <pid> PerfCounter.print` prints (`name=value`
    /// lines, strings in double quotes): how test fixtures are captured.
    pub fn from_jcmd_text(text: &str) -> PerfData {
        let mut values = HashMap::new();
        for line in text.lines() {
            let Some((name, value)) = line.split_once('=') else {
                continue;
            };
            let value = match value.strip_prefix('"') {
                Some(s) => Value::Text(s.strip_suffix('"').unwrap_or(s).to_string()),
                None => match value.trim().parse() {
                    Ok(v) => Value::Long(v),
                    Err(_) => continue,
                },
            };
            values.insert(name.trim().to_string(), value);
        }
        PerfData { values }
    }
}

/// The number of bytes of a PerfData region that hold entries, from its
/// prologue (`used`); `None` if `prologue` is not one.
pub fn used_bytes(prologue: &[u8]) -> Option<usize> {
    let r = Reader::new(prologue)?;
    usize::try_from(r.i32_at(8)?).ok()
}

/// Reads fields in the byte order the prologue declares.
struct Reader<'a> {
    data: &'a [u8],
    little: bool,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Option<Reader<'a>> {
        if data.get(0..4)? != [0xca, 0xfe, 0xc0, 0xc0] {
            return None;
        }
        Some(Reader {
            data,
            little: *data.get(4)? == 1,
        })
    }

    fn i32_at(&self, off: usize) -> Option<i32> {
        let b: [u8; 4] = self.data.get(off..off.checked_add(4)?)?.try_into().ok()?;
        Some(if self.little {
            i32::from_le_bytes(b)
        } else {
            i32::from_be_bytes(b)
        })
    }

    fn i64_at(&self, off: usize) -> Option<i64> {
        let b: [u8; 8] = self.data.get(off..off.checked_add(8)?)?.try_into().ok()?;
        Some(if self.little {
            i64::from_le_bytes(b)
        } else {
            i64::from_be_bytes(b)
        })
    }

    fn usize_at(&self, off: usize) -> Option<usize> {
        usize::try_from(self.i32_at(off)?).ok()
    }
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Parses a PerfData region (a `hsperfdata` file, or the JVM's own
/// memory); `None` if it is not one. A truncated or damaged entry ends the
/// walk: the counters before it are returned.
pub fn parse(data: &[u8]) -> Option<PerfData> {
    let r = Reader::new(data)?;
    let entry_offset = r.usize_at(24)?;
    let entries = r.usize_at(28)?;
    let mut values = HashMap::with_capacity(entries.min(4096));
    let mut at = entry_offset;
    for _ in 0..entries {
        let Some((name, value, length)) = entry(&r, at) else {
            break;
        };
        if let Some(v) = value {
            values.insert(name, v);
        }
        at += length;
    }
    Some(PerfData { values })
}

/// The entry at `at`: its name, its value when it is a long or a string,
/// and its length.
fn entry(r: &Reader, at: usize) -> Option<(String, Option<Value>, usize)> {
    let data = r.data;
    let length = r.usize_at(at)?;
    if length == 0 || at.checked_add(length)? > data.len() {
        return None;
    }
    let name_offset = r.usize_at(at + 4)?;
    let vector_length = r.usize_at(at + 8)?;
    let kind = *data.get(at + 12)?;
    let data_offset = r.usize_at(at + 16)?;
    let name = c_string(data.get(at.checked_add(name_offset)?..at + length)?);
    let start = at.checked_add(data_offset)?;
    let value = match (kind, vector_length) {
        (b'J', 0) => r.i64_at(start).map(Value::Long),
        (b'B', n) if n > 0 => data
            .get(start..start.checked_add(n)?)
            .map(|b| Value::Text(c_string(b))),
        _ => None,
    };
    Some((name, value, length))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a little-endian region with the given entries, as HotSpot lays it out.
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
        let used = (32 + body.len()) as i32;
        out[8..12].copy_from_slice(&used.to_le_bytes());
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
        assert_eq!(p.long("java.threads.live"), Some(12));
        assert_eq!(p.bytes("java.threads.live"), Some(12));
        assert_eq!(p.long("sun.rt.javaCommand"), None, "a string is not a long");
        assert_eq!(p.text("java.threads.live"), None);
        assert_eq!(p.attach_supported(), Some(false));
        assert_eq!(used_bytes(&data), Some(data.len()));
    }

    #[test]
    fn rejects_other_files() {
        assert!(parse(b"not a perf file at all, not at all").is_none());
        assert!(parse(&[0xca, 0xfe]).is_none());
        assert_eq!(used_bytes(b"nope"), None);
    }

    #[test]
    fn a_truncated_region_never_panics() {
        let data = file(&[("a", Value::Long(1)), ("b", Value::Text("x".into()))]);
        for n in 0..data.len() {
            let _ = parse(&data[..n]);
        }
    }

    #[test]
    fn reads_jcmd_text() {
        let p = PerfData::from_jcmd_text(
            "java.threads.live=6\njava.property.java.vm.name=\"OpenJDK 64-Bit Server VM\"\n6885:\n",
        );
        assert_eq!(p.long("java.threads.live"), Some(6));
        assert_eq!(
            p.text("java.property.java.vm.name"),
            Some("OpenJDK 64-Bit Server VM")
        );
        assert_eq!(p.values.len(), 2);
    }
}
