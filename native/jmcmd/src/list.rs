//! `jmcmd` without arguments: the JVMs jmcmd can see, like `jcmd -l`, with
//! whether jmagent is loaded in each. A process is a JVM when `libjvm.so`
//! is in its memory map; processes whose map jmcmd may not read (another
//! user's, unless jmcmd runs as root) are left out, as jcmd leaves them out.

use crate::error::{Error, Result};
use crate::process::{self, Target};

/// Every JVM jmcmd can inspect, by pid.
pub fn jvms() -> Vec<Target> {
    let me = std::process::id();
    process::all_pids()
        .into_iter()
        .filter(|&p| p != me)
        .filter_map(|p| process::inspect(p).ok())
        .collect()
}

/// The JVMs a selector names: a pid, or part of the main class or jar.
pub fn select(selector: &str) -> Result<Vec<Target>> {
    if let Ok(pid) = selector.parse::<u32>() {
        return Ok(vec![process::inspect(pid)?]);
    }
    let matching: Vec<Target> = jvms()
        .into_iter()
        .filter(|t| {
            t.command
                .split_whitespace()
                .next()
                .is_some_and(|main| main.contains(selector))
        })
        .collect();
    if matching.is_empty() {
        return Err(Error::NoSuchProcess(format!(
            "no JVM whose main class or jar contains '{selector}' (jmcmd without arguments lists them)"
        )));
    }
    Ok(matching)
}

/// The listing as text: a header line, then one line per JVM.
pub fn render(jvms: &[Target]) -> String {
    let mut out = format!(
        "{:<8} {:<4} {:<8} {}\n",
        "PID", "JDK", "JMAGENT", "MAIN CLASS OR JAR"
    );
    for t in jvms {
        let version = t.java_version().unwrap_or_else(|| "?".into());
        let agent = if t.agent.is_some() { "loaded" } else { "-" };
        out.push_str(&format!(
            "{:<8} {:<4} {:<8} {}\n",
            t.pid, version, agent, t.command
        ));
    }
    out
}
