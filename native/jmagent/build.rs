//! Compiles the agent's Java classes (`java-agent/src/main/java`) with
//! `javac --release 11` and generates `classes.rs`, which embeds them in the
//! library, so the agent ships as one `.so` and nothing compiled is committed.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The ledger's bucket table, shared with jmagent-core: the MXBean's bucket
/// attributes are generated from it.
#[allow(dead_code)]
mod buckets {
    include!("../jmagent-core/src/buckets.rs");
}

/// `BucketAttributes.java`: one MXBean getter per bucket of the table, each
/// reading its figure by attribute name, so adding a bucket to the table
/// adds its attribute.
fn bucket_attributes() -> String {
    let mut java = String::from(
        "package io.jmagent;\n\n\
         /**\n * The ledger's buckets as MXBean attributes, in bytes. Generated at build time\n\
         \x20* from jmagent-core's bucket table (native/jmagent-core/src/buckets.rs).\n */\n\
         public interface BucketAttributes {\n",
    );
    for b in buckets::BUCKETS {
        let parent = b.parent.map_or(String::new(), |p| format!(", part of {p}"));
        java.push_str(&format!(
            "    /** {} (bucket {}{parent}; basis {}). */\n    default long get{}() {{\n        return NativeMemory.figure(\"{}\");\n    }}\n\n",
            b.label,
            b.id,
            b.basis.name(),
            b.attribute,
            b.attribute
        ));
    }
    java.truncate(java.trim_end().len());
    java.push_str("\n}\n");
    java
}

/// `FlightBuckets.java`: one field of the `jmagent.NativeMemory` JFR event
/// per bucket of the table (camelCase of its id), read from the figure of
/// its MXBean attribute.
fn flight_buckets() -> String {
    let mut java = String::from(
        "package io.jmagent;\n\n\
         /**\n * The ledger's buckets as fields of the jmagent.NativeMemory JFR event, in bytes.\n\
         \x20* Generated at build time from jmagent-core's bucket table\n\
         \x20* (native/jmagent-core/src/buckets.rs).\n */\n\
         final class FlightBuckets {\n\
         \x20   private FlightBuckets() {}\n\n\
         \x20   /** Per bucket: field name, label, description, MXBean attribute. */\n\
         \x20   static final String[][] FIELDS = {\n",
    );
    for b in buckets::BUCKETS {
        let mut field = String::new();
        let mut upper = false;
        for c in b.id.chars() {
            if c == '_' {
                upper = true;
            } else if upper {
                field.push(c.to_ascii_uppercase());
                upper = false;
            } else {
                field.push(c);
            }
        }
        let mut label = b.label.to_string();
        label[..1].make_ascii_uppercase();
        let parent = b.parent.map_or(String::new(), |p| format!(", part of {p}"));
        java.push_str(&format!(
            "        {{{field:?}, {label:?}, \"Bucket {}{parent} (basis {}); 0 when the sample has no such bucket\", {:?}}},\n",
            b.id,
            b.basis.name(),
            b.attribute
        ));
    }
    java.push_str("    };\n}\n");
    java
}

fn java_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            java_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "java") {
            out.push(path);
        }
    }
}

fn class_files(dir: &Path, root: &Path, out: &mut Vec<(String, PathBuf)>) {
    for entry in fs::read_dir(dir).expect("javac output directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            class_files(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "class") {
            let rel = path.strip_prefix(root).unwrap().with_extension("");
            out.push((rel.to_string_lossy().into_owned(), path));
        }
    }
}

/// `$JAVAC`, else `$JAVA_HOME/bin/javac`, else `javac` on the PATH.
fn javac() -> PathBuf {
    if let Some(j) = env::var_os("JAVAC") {
        return j.into();
    }
    if let Some(home) = env::var_os("JAVA_HOME") {
        let j = Path::new(&home).join("bin/javac");
        if j.exists() {
            return j;
        }
    }
    "javac".into()
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let src = manifest.join("../../java-agent/src/main/java");
    println!("cargo:rerun-if-changed={}", src.display());
    println!("cargo:rerun-if-env-changed=JAVAC");
    println!("cargo:rerun-if-env-changed=JAVA_HOME");
    let table = manifest.join("../jmagent-core/src/buckets.rs");
    println!("cargo:rerun-if-changed={}", table.display());
    let mut sources = Vec::new();
    java_sources(&src, &mut sources);
    sources.sort();
    for s in &sources {
        println!("cargo:rerun-if-changed={}", s.display());
    }

    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let generated = out.join("generated/io/jmagent/BucketAttributes.java");
    fs::create_dir_all(generated.parent().unwrap()).unwrap();
    fs::write(&generated, bucket_attributes()).unwrap();
    sources.push(generated);
    let generated = out.join("generated/io/jmagent/FlightBuckets.java");
    fs::write(&generated, flight_buckets()).unwrap();
    sources.push(generated);
    let classes = out.join("classes");
    let _ = fs::remove_dir_all(&classes);
    fs::create_dir_all(&classes).unwrap();
    let javac = javac();
    let status = Command::new(&javac)
        .args(["--release", "11", "-encoding", "UTF-8", "-Xlint:all", "-Werror", "-d"])
        .arg(&classes)
        .args(&sources)
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): install a JDK (apt-get install openjdk-17-jdk-headless) or set JAVAC",
                javac.display()
            )
        });
    assert!(status.success(), "javac failed on java-agent sources");

    let mut files = Vec::new();
    class_files(&classes, &classes, &mut files);
    files.sort();
    let mut rs = String::from("/// Embedded classes: (binary name with '/', class file bytes).\npub const CLASSES: &[(&str, &[u8])] = &[\n");
    for (name, path) in &files {
        rs.push_str(&format!(
            "    ({name:?}, include_bytes!({:?})),\n",
            path.display().to_string()
        ));
    }
    rs.push_str("];\n");
    fs::write(out.join("classes.rs"), rs).unwrap();
}
