//! The agent's option grammar: `key=value,key=value,...`.
//!
//! One grammar serves `-agentpath:libjmagent.so=<options>`, the CLI (which
//! forwards the same string through the attach `load` command) and the
//! documentation table, so [`OPTIONS`] is the single list of keys, accepted
//! values and defaults. The whole string is parsed before anything is
//! reported, and every problem is returned, so a user fixes all of them in
//! one go rather than one JVM start per typo.

use std::fmt;
use std::time::Duration;

/// Where periodic reports go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    /// The JVM's standard error.
    Stderr,
    /// A file, appended to; `%p` in the path is replaced by the process id.
    File(String),
}

impl LogTarget {
    /// The file path with `%p` expanded to `pid`; `None` for stderr.
    pub fn path_for_pid(&self, pid: u32) -> Option<String> {
        match self {
            LogTarget::Stderr => None,
            LogTarget::File(p) => Some(p.replace("%p", &pid.to_string())),
        }
    }
}

/// Report format of the periodic log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A table meant for people.
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// Unit used for sizes in text reports (JSON always uses bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    B,
    KB,
    MB,
    GB,
    /// Picks the unit per figure so that it reads as a short number.
    Auto,
}

/// Whether the agent asks the JVM for its Native Memory Tracking summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NmtMode {
    /// Use NMT when the JVM runs with `-XX:NativeMemoryTracking=summary|detail`.
    Auto,
    /// Never query NMT (its summary costs a safepoint-free walk, but still costs).
    Off,
}

/// What a dynamic load (`Agent_OnAttach`, used by `jmcmd`) asks the agent to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Start periodic logging (or apply new options to the running agent).
    Start,
    /// Stop periodic logging; the agent and its MXBean stay.
    Stop,
    /// Write one report to `out`.
    Report,
    /// Write the sample history (JSON) to `out`.
    History,
    /// Ask the allocator to return free memory, and write what RSS did.
    Trim,
    /// Write one sample as Prometheus text (format 0.0.4) to `out`.
    Metrics,
}

/// The parsed options of one agent load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Time between periodic reports; zero means only the final report at exit.
    pub interval: Duration,
    pub log: LogTarget,
    /// Largest size of a log file, in bytes, before it is rotated to
    /// `<path>.1`; `None` (`log_max=0`) means unbounded.
    pub log_max: Option<u64>,
    pub format: Format,
    pub scale: Scale,
    pub nmt: NmtMode,
    /// Whether the `jmagent:type=NativeMemory` MXBean is registered.
    pub jmx: bool,
    /// How long after start-up the MXBean waits to be registered, unless
    /// the platform MBean server exists before (see [`OPTIONS`]).
    pub jmx_delay: Duration,
    /// Whether the agent's JFR events are registered (when the runtime has JFR).
    pub jfr: bool,
    /// Time span the diagnosis (trends, verdicts) looks at.
    pub window: Duration,
    /// Whether the agent trims the native heap by itself (`trim=auto`).
    pub trim_auto: bool,
    /// Where the metrics endpoint listens (`metrics=`); `None`: no endpoint.
    pub metrics: Option<MetricsAddr>,
    /// Attach only: what to do.
    pub action: Action,
    /// Attach only: where the action's output (or error) is written.
    pub out: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            interval: Duration::from_secs(60),
            log: LogTarget::Stderr,
            log_max: Some(DEFAULT_LOG_MAX),
            format: Format::Text,
            scale: Scale::Auto,
            nmt: NmtMode::Auto,
            jmx: true,
            jmx_delay: Duration::from_secs(15),
            jfr: true,
            window: Duration::from_secs(300),
            trim_auto: false,
            metrics: None,
            action: Action::Start,
            out: None,
        }
    }
}

/// The address of the metrics endpoint: a host (a name, an IPv4 address or
/// an IPv6 one without brackets) and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsAddr {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for MetricsAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Default of `log_max`: 100 MiB.
pub const DEFAULT_LOG_MAX: u64 = 100 << 20;

/// One documented option: its key, the values it accepts and its default.
pub struct OptionSpec {
    pub key: &'static str,
    pub accepted: &'static str,
    pub default: &'static str,
    pub meaning: &'static str,
}

/// Every option the agent accepts, in documentation order.
pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        key: "interval",
        accepted: "a duration such as 500ms, 10s, 1m, 1h, or 0 (report only at exit)",
        default: "60s",
        meaning: "time between periodic reports",
    },
    OptionSpec {
        key: "log",
        accepted: "stderr, or a file path (%p is replaced by the pid)",
        default: "stderr",
        meaning: "where reports are written; a file is appended to, created with mode 0600, and never followed if it is a symbolic link",
    },
    OptionSpec {
        key: "log_max",
        accepted: "a size such as 500KB, 10MB, 1GB (KB = 1024 bytes), a number of bytes, or 0 (unbounded)",
        default: "100MB",
        meaning: "when a report would make the log file larger, the file is renamed to <path>.1 (replacing an older one) and a new one is started; ignored for stderr",
    },
    OptionSpec {
        key: "format",
        accepted: "text, json",
        default: "text",
        meaning: "a table for people, or one JSON object per line",
    },
    OptionSpec {
        key: "scale",
        accepted: "B, KB, MB, GB, auto",
        default: "auto",
        meaning: "unit of sizes in text reports (JSON is always in bytes)",
    },
    OptionSpec {
        key: "nmt",
        accepted: "auto, off",
        default: "auto",
        meaning: "auto: use the JVM's Native Memory Tracking summary when -XX:NativeMemoryTracking is on; off: never query it",
    },
    OptionSpec {
        key: "jmx",
        accepted: "on, off",
        default: "on",
        meaning: "register the jmagent:type=NativeMemory MXBean in the platform MBean server",
    },
    OptionSpec {
        key: "jmx_delay",
        accepted: "a duration such as 0, 5s, 1m",
        default: "15s",
        meaning: "wait this long after start-up before creating the platform MBean server to register the MXBean (creating it initialises java.util.logging, which breaks applications that install their own LogManager in main, such as WildFly); if the application or a JMX client created it earlier, the MXBean is registered at once",
    },
    OptionSpec {
        key: "jfr",
        accepted: "on, off",
        default: "on",
        meaning: "register the JFR events jmagent.NativeMemory (periodic, every interval unless the recording's settings say otherwise) and jmagent.Verdict; they are recorded only while a JFR recording runs",
    },
    OptionSpec {
        key: "window",
        accepted: "a duration such as 30s, 5m, 1h",
        default: "5m",
        meaning: "the time span trends and verdicts look at; a verdict needs the window mostly covered by samples (at least 6 samples spanning 80% of it)",
    },
    OptionSpec {
        key: "trim",
        accepted: "auto, off",
        default: "off",
        meaning: "auto: when the allocator retains more than max(64 MiB, 10% of RSS) of free memory, ask it to return it (at most once a minute) and log what RSS dropped by",
    },
    OptionSpec {
        key: "metrics",
        accepted: "PORT or HOST:PORT (HOST a name, an IPv4 address or [an IPv6 one])",
        default: "off",
        meaning: "serve GET /metrics (OpenMetrics or Prometheus text) on this address from the agent's own thread; PORT alone binds 127.0.0.1 only; another host is reachable by whoever can reach it, so protect it as a JMX port; a port in use stops the JVM with the cause",
    },
    OptionSpec {
        key: "action",
        accepted: "start, stop, report, trim, history, metrics",
        default: "start",
        meaning: "attach only (jmcmd): start or stop periodic logging, write one report, trim the native heap, write the sample history, or write one sample as Prometheus metrics",
    },
    OptionSpec {
        key: "out",
        accepted: "a file path that does not exist yet",
        default: "none",
        meaning: "attach only (jmcmd): where the action's output or error goes; created with mode 0600, never over an existing file or link",
    },
];

/// A problem with one option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OptionError {
    /// A key that is not in [`OPTIONS`].
    #[error("unknown option '{key}' (accepted options: {})", accepted_keys())]
    UnknownKey { key: String },
    /// A known key with a value it does not accept.
    #[error("bad value '{value}' for option '{key}' (accepted: {accepted})")]
    BadValue {
        key: String,
        value: String,
        accepted: &'static str,
    },
    /// An item without `=`.
    #[error(
        "option '{item}' has no value (write {item}=<value>; accepted options: {})",
        accepted_keys()
    )]
    MissingValue { item: String },
    /// The same key given twice, which would make one of them silently ignored.
    #[error("option '{key}' is given more than once")]
    Repeated { key: String },
}

fn accepted_keys() -> String {
    OPTIONS.iter().map(|o| o.key).collect::<Vec<_>>().join(", ")
}

fn spec(key: &str) -> &'static OptionSpec {
    OPTIONS
        .iter()
        .find(|o| o.key == key)
        .expect("every parsed key is in OPTIONS")
}

/// All problems found in one option string, in the order they appear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionErrors(pub Vec<OptionError>);

impl fmt::Display for OptionErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for OptionErrors {}

/// Parses a duration: `0`, or a whole number with one of `ms`, `s`, `m`, `h`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let millis = match unit {
        "ms" => n,
        "s" => n.checked_mul(1000)?,
        "m" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(millis))
}

/// Parses a size: a whole number of bytes, or one followed by `B`, `KB`,
/// `MB` or `GB` (any case; powers of 1024, as `scale` reads them).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let multiplier: u64 = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "KB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(multiplier)
}

/// Formats a duration the way [`parse_duration`] reads it back.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        "0".to_string()
    } else if ms % 3_600_000 == 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms % 60_000 == 0 {
        format!("{}m", ms / 60_000)
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

impl Options {
    /// Parses an option string. An empty string (or none at all) gives the defaults.
    pub fn parse(text: &str) -> Result<Options, OptionErrors> {
        let mut options = Options::default();
        let mut errors = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let Some((key, value)) = item.split_once('=') else {
                errors.push(OptionError::MissingValue {
                    item: item.to_string(),
                });
                continue;
            };
            let key = key.trim();
            let value = value.trim();
            if seen.contains(&key) {
                errors.push(OptionError::Repeated {
                    key: key.to_string(),
                });
                continue;
            }
            if !OPTIONS.iter().any(|o| o.key == key) {
                errors.push(OptionError::UnknownKey {
                    key: key.to_string(),
                });
                continue;
            }
            seen.push(key);
            if let Err(e) = options.set(key, value) {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            Ok(options)
        } else {
            Err(OptionErrors(errors))
        }
    }

    /// Sets one known option from its text value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), OptionError> {
        // Built only on failure: `spec` would panic for a key not in OPTIONS,
        // which reaches the last arm instead.
        let bad = || OptionError::BadValue {
            key: key.to_string(),
            value: value.to_string(),
            accepted: spec(key).accepted,
        };
        match key {
            "interval" => self.interval = parse_duration(value).ok_or_else(bad)?,
            "log" => self.log = parse_log_target(value).ok_or_else(bad)?,
            "log_max" => self.log_max = parse_log_max(value).ok_or_else(bad)?,
            "format" => self.format = parse_format(value).ok_or_else(bad)?,
            "scale" => self.scale = parse_scale(value).ok_or_else(bad)?,
            "nmt" => self.nmt = parse_nmt_mode(value).ok_or_else(bad)?,
            "jmx" => self.jmx = parse_on_off(value).ok_or_else(bad)?,
            "jmx_delay" => self.jmx_delay = parse_duration(value).ok_or_else(bad)?,
            "jfr" => self.jfr = parse_on_off(value).ok_or_else(bad)?,
            "window" => self.window = parse_window(value).ok_or_else(bad)?,
            "trim" => self.trim_auto = parse_trim(value).ok_or_else(bad)?,
            "metrics" => self.metrics = Some(parse_metrics_addr(value).ok_or_else(bad)?),
            "action" => self.action = parse_action(value).ok_or_else(bad)?,
            "out" => self.out = Some(parse_path(value).ok_or_else(bad)?),
            _ => {
                return Err(OptionError::UnknownKey {
                    key: key.to_string(),
                })
            }
        }
        Ok(())
    }
}

// Value parsers of `Options::set`, one per kind of option. Each returns
// `None` for a value the option does not accept; `set` turns that into
// `OptionError::BadValue` with the option's `accepted` text, so the accepted
// spellings here must match those in `OPTIONS`.

/// `log`: `stderr`, or any other non-empty text as a file path.
fn parse_log_target(value: &str) -> Option<LogTarget> {
    match value {
        "" => None,
        "stderr" => Some(LogTarget::Stderr),
        path => Some(LogTarget::File(path.to_string())),
    }
}

/// `log_max`: a size, where 0 means unbounded (`Some(None)`).
fn parse_log_max(value: &str) -> Option<Option<u64>> {
    match parse_size(value)? {
        0 => Some(None),
        bytes => Some(Some(bytes)),
    }
}

/// `format`: `text` or `json`, lower case only.
fn parse_format(value: &str) -> Option<Format> {
    match value {
        "text" => Some(Format::Text),
        "json" => Some(Format::Json),
        _ => None,
    }
}

/// `scale`: a unit in any case (`mb` = `MB`), or `auto`.
fn parse_scale(value: &str) -> Option<Scale> {
    match value.to_ascii_uppercase().as_str() {
        "B" => Some(Scale::B),
        "KB" => Some(Scale::KB),
        "MB" => Some(Scale::MB),
        "GB" => Some(Scale::GB),
        "AUTO" => Some(Scale::Auto),
        _ => None,
    }
}

/// `nmt`: `auto` or `off`.
fn parse_nmt_mode(value: &str) -> Option<NmtMode> {
    match value {
        "auto" => Some(NmtMode::Auto),
        "off" => Some(NmtMode::Off),
        _ => None,
    }
}

/// `jmx`: `on` or `off`.
fn parse_on_off(value: &str) -> Option<bool> {
    match value {
        "on" => Some(true),
        "off" => Some(false),
        _ => None,
    }
}

/// `window`: a duration, but not zero (unlike `interval` and `jmx_delay`,
/// where zero has a meaning).
fn parse_window(value: &str) -> Option<Duration> {
    parse_duration(value).filter(|d| !d.is_zero())
}

/// `trim`: `auto` (the agent trims by itself) or `off`.
fn parse_trim(value: &str) -> Option<bool> {
    match value {
        "auto" => Some(true),
        "off" => Some(false),
        _ => None,
    }
}

/// `metrics`: `PORT` (on 127.0.0.1) or `HOST:PORT`, `[IPv6]:PORT`. Port 0
/// lets the system choose (the agent prints the address it serves on).
fn parse_metrics_addr(value: &str) -> Option<MetricsAddr> {
    let (host, port) = match value.rsplit_once(':') {
        None => ("127.0.0.1", value),
        Some((host, port)) => {
            let host = match host.strip_prefix('[') {
                Some(v6) => v6.strip_suffix(']').filter(|h| h.contains(':'))?,
                None if host.contains(':') => return None,
                None => host,
            };
            (host, port)
        }
    };
    let port_ok = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_' | b'%'));
    (port_ok && host_ok).then_some(())?;
    Some(MetricsAddr {
        host: host.to_string(),
        port: port.parse().ok()?,
    })
}

/// `action`: what an attach asks the agent to do.
fn parse_action(value: &str) -> Option<Action> {
    match value {
        "start" => Some(Action::Start),
        "stop" => Some(Action::Stop),
        "report" => Some(Action::Report),
        "trim" => Some(Action::Trim),
        "history" => Some(Action::History),
        "metrics" => Some(Action::Metrics),
        _ => None,
    }
}

/// `out`: any non-empty path.
fn parse_path(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_string_gives_defaults() {
        assert_eq!(Options::parse("").unwrap(), Options::default());
        assert_eq!(Options::parse(" , ").unwrap(), Options::default());
    }

    #[test]
    fn every_option_parses() {
        let o = Options::parse(
            "interval=500ms,log=/tmp/jm-%p.log,log_max=10MB,format=json,scale=MB,nmt=off,jmx=off,jmx_delay=2s,jfr=off",
        )
        .unwrap();
        assert_eq!(o.log_max, Some(10 << 20));
        assert!(!o.jmx);
        assert!(!o.jfr);
        assert_eq!(o.jmx_delay, Duration::from_secs(2));
        assert_eq!(o.interval, Duration::from_millis(500));
        assert_eq!(o.log, LogTarget::File("/tmp/jm-%p.log".into()));
        assert_eq!(o.log.path_for_pid(42).as_deref(), Some("/tmp/jm-42.log"));
        assert_eq!(o.format, Format::Json);
        assert_eq!(o.scale, Scale::MB);
        assert_eq!(o.nmt, NmtMode::Off);
    }

    #[test]
    fn metrics_addresses() {
        let addr = |v: &str| Options::parse(&format!("metrics={v}")).map(|o| o.metrics.unwrap());
        let a = addr("9464").unwrap();
        assert_eq!(
            (a.host.as_str(), a.port, a.to_string()),
            ("127.0.0.1", 9464, "127.0.0.1:9464".into())
        );
        let a = addr("0.0.0.0:9100").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("0.0.0.0", 9100));
        let a = addr("[::1]:9464").unwrap();
        assert_eq!(
            (a.host.as_str(), a.to_string()),
            ("::1", "[::1]:9464".into())
        );
        assert_eq!(addr("metrics.local:80").unwrap().host, "metrics.local");
        assert_eq!(addr("0").unwrap().port, 0);
        for bad in [
            "", "http", "70000", ":9464", "host:", "::1:9464", "[::1]", "[host]:1", "a b:1", "-1",
        ] {
            let e = addr(bad).unwrap_err().to_string();
            assert!(
                e.contains("bad value") && e.contains("'metrics'"),
                "{bad}: {e}"
            );
        }
        assert_eq!(Options::parse("").unwrap().metrics, None);
    }

    #[test]
    fn attach_actions() {
        let o = Options::parse("action=report,format=json,out=/tmp/x/out").unwrap();
        assert_eq!(o.action, Action::Report);
        assert_eq!(o.out.as_deref(), Some("/tmp/x/out"));
        assert_eq!(Options::parse("").unwrap().action, Action::Start);
        let e = Options::parse("action=restart").unwrap_err().to_string();
        assert_eq!(
            e,
            "bad value 'restart' for option 'action' (accepted: start, stop, report, trim, history, metrics)"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        for bad in [
            "",
            "10",
            "s",
            "1.5s",
            "-1s",
            "10 s",
            "10sec",
            "99999999999999999999s",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?} must be rejected");
        }
        for d in [0, 250, 1000, 60_000, 3_600_000, 90_000] {
            let d = Duration::from_millis(d);
            assert_eq!(parse_duration(&format_duration(d)), Some(d));
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0"), Some(0));
        assert_eq!(parse_size("1048576"), Some(1 << 20));
        assert_eq!(parse_size("100B"), Some(100));
        assert_eq!(parse_size("500KB"), Some(500 << 10));
        assert_eq!(parse_size("10MB"), Some(10 << 20));
        assert_eq!(parse_size("10mb"), Some(10 << 20));
        assert_eq!(parse_size("1GB"), Some(1 << 30));
        for bad in [
            "",
            "MB",
            "1.5MB",
            "-1MB",
            "10 MB",
            "10M",
            "10MiB",
            "10TB",
            "99999999999999999999",
            "17179869184GB",
        ] {
            assert_eq!(parse_size(bad), None, "{bad:?} must be rejected");
        }
    }

    #[test]
    fn log_max() {
        assert_eq!(Options::default().log_max, Some(100 << 20));
        assert_eq!(
            Options::parse("log_max=20KB").unwrap().log_max,
            Some(20 << 10)
        );
        assert_eq!(
            Options::parse("log_max=1048576").unwrap().log_max,
            Some(1 << 20)
        );
        assert_eq!(Options::parse("log_max=0").unwrap().log_max, None);
        for bad in ["", "big", "1.5GB", "-1", "10 MB", "5TB"] {
            let e = Options::parse(&format!("log_max={bad}"))
                .unwrap_err()
                .to_string();
            assert_eq!(
                e,
                format!("bad value '{bad}' for option 'log_max' (accepted: a size such as 500KB, 10MB, 1GB (KB = 1024 bytes), a number of bytes, or 0 (unbounded))")
            );
        }
    }

    #[test]
    fn errors_name_the_option_and_what_is_accepted() {
        let e = Options::parse("format=xml").unwrap_err().to_string();
        assert_eq!(
            e,
            "bad value 'xml' for option 'format' (accepted: text, json)"
        );
        let e = Options::parse("colour=red").unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown option 'colour' (accepted options: interval, log, log_max, format, scale, nmt, jmx, jmx_delay, jfr, window, trim, metrics, action, out)"
        );
        let e = Options::parse("interval=5 seconds")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("bad value '5 seconds' for option 'interval'"),
            "{e}"
        );
        let e = Options::parse("verbose").unwrap_err().to_string();
        assert!(e.starts_with("option 'verbose' has no value"), "{e}");
    }

    #[test]
    fn all_errors_are_reported_at_once() {
        let errors = Options::parse("format=xml,interval=1s,interval=2s,foo=1,scale=TB")
            .unwrap_err()
            .0;
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(matches!(errors[1], OptionError::Repeated { .. }));
    }
}
