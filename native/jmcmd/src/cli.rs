//! The command line: parsed raw by clap, then resolved into a typed
//! [`Config`] so that every usage error is found before any JVM is touched.
//!
//! Options after the command use the agent's own grammar (`key=value`,
//! checked with `jmagent_core::options`), so `jmcmd 123 start interval=10s`
//! means exactly what `-agentpath:libjmagent.so=interval=10s` means.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use jmagent_core::options::{parse_duration, Options};

use crate::error::{Error, Result};

pub const EXIT_CODES: &str = "\
Exit codes:
  0    success
  1    the command failed in the JVM (the agent's message is printed), or another error
  2    bad command line
  3    no such process, or no JVM whose main class matches
  4    the process is not a JVM
  5    the JVM runs with -XX:+DisableAttachMechanism
  6    the JVM refuses to load agents at run time (-XX:-EnableDynamicAgentLoading, JDK 21+)
  7    permission denied (another user's JVM: run as that user or as root)
  8    timeout: the JVM did not start its attach listener or did not answer in time
  9    libjmagent.so not found (next to jmcmd, or --agent PATH)
  130  interrupted";

pub const COMMANDS: &str = "\
jmcmd replay FILE [window=5m]
          re-run the diagnosis over a JSON log (format=json) and print each
          report's verdicts, as the agent found them with that window

Commands (jmcmd [--agent PATH] [--timeout T] <pid | part of main class> <command> [key=value ...]):
  report [format=text|json] [scale=B|KB|MB|GB|auto] [nmt=auto|off]
          print the RSS breakdown the agent logs; in a JVM without the agent,
          loads it without starting periodic logging
  trim    have the C allocator return its free memory to the OS; prints RSS
          before and after
  start [interval=60s] [log=stderr|PATH] [log_max=100MB] [format=text|json] [scale=..] [nmt=..] [jmx=on|off] [jmx_delay=..] [jfr=on|off]
          load the agent and start periodic logging, or give a running agent
          new options
  stop    stop periodic logging (the agent stays loaded)
  history the agent's recent samples (the window its verdicts are drawn
          from), as JSON
  metrics one sample as Prometheus text (format 0.0.4: what the agent's
          metrics= endpoint serves; for node_exporter's textfile collector)
  help    this text, then the JVM's own diagnostic commands
  <Diagnostic.Command> [arguments]
          any diagnostic command of the JVM, as jcmd runs it (VM.version,
          VM.native_memory summary, Thread.print, GC.heap_info, ...)";

/// jcmd-style CLI for JVMs: lists them, and attaches to one to run a jmagent
/// action or a diagnostic command, without starting a JVM itself.
#[derive(Debug, Parser)]
#[command(name = "jmcmd", version, about, after_help = format!("{COMMANDS}\n\n{EXIT_CODES}"))]
pub struct Args {
    /// libjmagent.so to load [default: the one next to the jmcmd binary]
    #[arg(long, value_name = "PATH")]
    pub agent: Option<PathBuf>,

    /// How long to wait for the JVM's attach listener to start, and for
    /// its answer (500ms, 10s, 1m)
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration)]
    pub timeout: Duration,

    /// List the JVMs (also what jmcmd does without arguments)
    #[arg(short = 'l', long)]
    pub list: bool,

    /// A pid, or part of a main class or jar name (the command then runs in
    /// every JVM that matches)
    pub target: Option<String>,

    /// report, trim, start, stop, history, metrics, help, or a diagnostic command of the JVM,
    /// then its key=value options (or the diagnostic command's arguments)
    #[arg(
        value_name = "COMMAND [OPTIONS]",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

fn duration(s: &str) -> std::result::Result<Duration, String> {
    match parse_duration(s) {
        Some(d) if !d.is_zero() => Ok(d),
        _ => Err(format!("'{s}' is not a duration such as 500ms, 10s, 1m")),
    }
}

/// `1.5s`, `10s`, `250ms` for messages.
pub fn show_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d.as_secs() == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// A jmagent action (the agent's `action=` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Report,
    Trim,
    Start,
    Stop,
    History,
    Metrics,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Report => "report",
            Action::Trim => "trim",
            Action::Start => "start",
            Action::Stop => "stop",
            Action::History => "history",
            Action::Metrics => "metrics",
        }
    }

    /// Agent options a user may give with this action.
    fn accepted_keys(self) -> &'static [&'static str] {
        match self {
            Action::Report => &["format", "scale", "nmt"],
            Action::Trim | Action::Stop | Action::History | Action::Metrics => &[],
            Action::Start => &[
                "interval",
                "log",
                "log_max",
                "format",
                "scale",
                "nmt",
                "jmx",
                "jmx_delay",
                "jfr",
            ],
        }
    }
}

/// What to do in the selected JVMs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A jmagent action with the user's options, already checked.
    Agent { action: Action, options: String },
    /// jmcmd's commands, then the JVM's `help`.
    Help,
    /// A diagnostic command line, sent as jcmd sends it.
    Diagnostic(String),
}

/// A resolved command line.
#[derive(Debug, Clone)]
pub enum Config {
    List,
    /// The diagnosis re-run over a recorded JSON log.
    Replay {
        file: PathBuf,
        window: Duration,
    },
    Run {
        target: String,
        command: Command,
        agent: Option<PathBuf>,
        timeout: Duration,
    },
}

/// Checks the user's `key=value` options for `action` with the agent's own
/// parser, and returns them as one option string.
pub fn agent_options(action: Action, args: &[String]) -> Result<String> {
    let items: Vec<&str> = args
        .iter()
        .flat_map(|a| a.split(','))
        .filter(|s| !s.is_empty())
        .collect();
    for item in &items {
        let key = item.split_once('=').map_or(*item, |(k, _)| k);
        if !action.accepted_keys().contains(&key) {
            let accepted = action.accepted_keys();
            return Err(Error::Usage(if accepted.is_empty() {
                format!("'{}' takes no options (got '{item}')", action.name())
            } else {
                format!(
                    "'{}' does not take option '{key}' (accepted: {})",
                    action.name(),
                    accepted.join(", ")
                )
            }));
        }
    }
    let text = items.join(",");
    Options::parse(&text).map_err(|e| Error::Usage(e.to_string().replace('\n', "; ")))?;
    Ok(text)
}

/// `replay FILE [window=DURATION]`.
fn replay_config(args: &[String]) -> Result<Config> {
    let usage = || Error::Usage("usage: jmcmd replay FILE [window=5m]".into());
    let (file, rest) = args.split_first().ok_or_else(usage)?;
    let mut window = Options::default().window;
    for a in rest {
        match a.split_once('=') {
            Some(("window", v)) => {
                window = parse_duration(v).filter(|d| !d.is_zero()).ok_or_else(|| {
                    Error::Usage(format!("window={v}: not a duration such as 30s, 5m"))
                })?
            }
            _ => return Err(usage()),
        }
    }
    Ok(Config::Replay {
        file: PathBuf::from(file),
        window,
    })
}

impl Args {
    pub fn resolve(self) -> Result<Config> {
        let Some(target) = self.target else {
            return Ok(Config::List);
        };
        if self.list {
            return Err(Error::Usage("--list takes no pid or command".into()));
        }
        if target == "replay" {
            return replay_config(&self.command);
        }
        let mut words = self.command.into_iter();
        let Some(name) = words.next() else {
            return Err(Error::Usage(format!(
                "no command for '{target}': try 'jmcmd {target} help' (commands: report, trim, start, stop, history, metrics, help)"
            )));
        };
        let args: Vec<String> = words.collect();
        let action = match name.as_str() {
            "report" => Some(Action::Report),
            "trim" => Some(Action::Trim),
            "start" => Some(Action::Start),
            "stop" => Some(Action::Stop),
            "history" => Some(Action::History),
            "metrics" => Some(Action::Metrics),
            _ => None,
        };
        let command = match (action, name.as_str()) {
            (Some(action), _) => Command::Agent {
                action,
                options: agent_options(action, &args)?,
            },
            (None, "help") if args.is_empty() => Command::Help,
            (None, "help") => Command::Diagnostic(format!("help {}", args.join(" "))),
            (None, _) => {
                let mut line = name.clone();
                for a in &args {
                    line.push(' ');
                    line.push_str(a);
                }
                Command::Diagnostic(line)
            }
        };
        if target.is_empty() {
            return Err(Error::Usage("empty pid or main class".into()));
        }
        Ok(Config::Run {
            target,
            command,
            agent: self.agent,
            timeout: self.timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Result<Config> {
        let mut v = vec!["jmcmd"];
        v.extend_from_slice(args);
        Args::try_parse_from(v)
            .map_err(|e| Error::Usage(e.to_string()))?
            .resolve()
    }

    fn command(args: &[&str]) -> Command {
        match config(args).unwrap() {
            Config::Run { command, .. } => command,
            Config::List | Config::Replay { .. } => panic!("not a JVM command"),
        }
    }

    #[test]
    fn no_arguments_list() {
        assert!(matches!(config(&[]).unwrap(), Config::List));
        assert!(matches!(config(&["-l"]).unwrap(), Config::List));
    }

    #[test]
    fn actions_take_checked_options() {
        assert_eq!(
            command(&["123", "report", "format=json", "scale=MB"]),
            Command::Agent {
                action: Action::Report,
                options: "format=json,scale=MB".into()
            }
        );
        assert_eq!(
            command(&["Workload", "start", "interval=5s,log=/tmp/x.log"]),
            Command::Agent {
                action: Action::Start,
                options: "interval=5s,log=/tmp/x.log".into()
            }
        );
        let err = |args: &[&str]| config(args).unwrap_err().to_string();
        assert_eq!(
            command(&["1", "start", "log=/tmp/x.log", "log_max=10MB"]),
            Command::Agent {
                action: Action::Start,
                options: "log=/tmp/x.log,log_max=10MB".into()
            }
        );
        assert!(
            err(&["1", "start", "log_max=10TB"]).contains("bad value '10TB' for option 'log_max'")
        );
        assert!(err(&["1", "report", "log_max=1MB"]).contains("does not take option 'log_max'"));
        assert!(err(&["1", "report", "format=xml"]).contains("bad value 'xml' for option 'format'"));
        assert!(err(&["1", "report", "interval=5s"]).contains("does not take option 'interval'"));
        assert!(err(&["1", "trim", "format=json"]).contains("takes no options"));
        assert!(err(&["1", "start", "out=/etc/passwd"]).contains("does not take option 'out'"));
        assert!(err(&["1"]).contains("no command"));
    }

    #[test]
    fn other_commands_are_diagnostic_commands() {
        assert_eq!(
            command(&["1", "VM.native_memory", "summary"]),
            Command::Diagnostic("VM.native_memory summary".into())
        );
        assert_eq!(
            command(&["1", "Thread.print", "-l"]),
            Command::Diagnostic("Thread.print -l".into())
        );
        assert_eq!(command(&["1", "help"]), Command::Help);
        assert_eq!(
            command(&["1", "help", "VM.version"]),
            Command::Diagnostic("help VM.version".into())
        );
    }

    #[test]
    fn global_flags() {
        match config(&[
            "--timeout",
            "2s",
            "--agent",
            "/x/libjmagent.so",
            "1",
            "stop",
        ])
        .unwrap()
        {
            Config::Run { timeout, agent, .. } => {
                assert_eq!(timeout, Duration::from_secs(2));
                assert_eq!(agent, Some(PathBuf::from("/x/libjmagent.so")));
            }
            Config::List | Config::Replay { .. } => panic!(),
        }
        assert!(config(&["--timeout", "soon", "1", "stop"]).is_err());
        assert_eq!(show_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(show_duration(Duration::from_millis(300)), "300ms");
    }

    #[test]
    fn replay_takes_a_file_and_a_window() {
        match config(&["replay", "/tmp/a.jsonl", "window=30s"]).unwrap() {
            Config::Replay { file, window } => {
                assert_eq!(file, PathBuf::from("/tmp/a.jsonl"));
                assert_eq!(window, Duration::from_secs(30));
            }
            other => panic!("{other:?}"),
        }
        match config(&["replay", "/tmp/a.jsonl"]).unwrap() {
            Config::Replay { window, .. } => assert_eq!(window, Options::default().window),
            other => panic!("{other:?}"),
        }
        for bad in [
            &["replay"][..],
            &["replay", "f", "window=0"],
            &["replay", "f", "x=1"],
        ] {
            assert!(matches!(config(bad), Err(Error::Usage(_))), "{bad:?}");
        }
    }
}
