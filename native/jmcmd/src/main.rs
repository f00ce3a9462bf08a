//! jmcmd: a jcmd-style native CLI that attaches to running JVMs.
//!
//! `main` is thin: parse, run, print one error line, exit with the error's
//! documented code. Modules return data and never print.
#![deny(unsafe_op_in_unsafe_fn)]

mod attach;
mod cli;
mod error;
mod list;
mod load;
mod perfdata;
mod process;
mod signals;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Command, Config};
use crate::error::{Error, Result, EXIT_OK};
use crate::process::Target;

fn main() -> ExitCode {
    let args = match cli::Args::try_parse() {
        Ok(a) => a,
        Err(e) if !e.use_stderr() => {
            // --help, --version.
            let _ = e.print();
            return ExitCode::from(EXIT_OK);
        }
        Err(e) => {
            // One line, like every other error.
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or("bad command line");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("jmcmd: {first} (see jmcmd --help)");
            return ExitCode::from(Error::Usage(String::new()).exit_code());
        }
    };
    signals::install();
    match run(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("jmcmd: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Writes to stdout; a closed pipe (`jmcmd ... | head`) is not an error.
fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let r = out.write_all(text.as_bytes()).and_then(|_| {
        if !text.is_empty() && !text.ends_with('\n') {
            out.write_all(b"\n")?;
        }
        out.flush()
    });
    match r {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::Other(format!("cannot write to stdout: {e}")))
        }
        _ => Ok(()),
    }
}

fn run(args: cli::Args) -> Result<u8> {
    match args.resolve()? {
        Config::List => {
            print(&list::render(&list::jvms()))?;
            Ok(EXIT_OK)
        }
        Config::Replay { file, window } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Error::Other(format!("cannot read {}: {e}", file.display())))?;
            let replayed = jmagent_core::diagnosis::replay::replay(&text, window)
                .map_err(|e| Error::Other(format!("{}: {e}", file.display())))?;
            print(jmagent_core::diagnosis::replay::render(&replayed).trim_end())?;
            Ok(EXIT_OK)
        }
        Config::Run {
            target,
            command,
            agent,
            timeout,
        } => {
            let targets = list::select(&target)?;
            let several = targets.len() > 1;
            let mut first_error: Option<Error> = None;
            for t in &targets {
                if several {
                    print(&format!("{}:", t.pid))?;
                }
                match run_on(t, &command, agent.as_deref(), timeout) {
                    Ok(text) => print(&text)?,
                    Err(Error::Interrupted) => return Err(Error::Interrupted),
                    Err(e) if several => {
                        eprintln!("jmcmd: {e}");
                        first_error.get_or_insert(e);
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(first_error.map_or(EXIT_OK, |e| e.exit_code()))
        }
    }
}

/// Runs `command` in one JVM and returns what to print.
fn run_on(
    target: &Target,
    command: &Command,
    agent: Option<&std::path::Path>,
    timeout: std::time::Duration,
) -> Result<String> {
    match command {
        Command::Help => {
            let jvm = load::diagnostic(target, "help", timeout)?;
            Ok(format!(
                "{}\n\nDiagnostic commands of JVM {} (jmcmd {} <command> runs them as jcmd does):\n{}",
                cli::COMMANDS,
                target.pid,
                target.pid,
                jvm
            ))
        }
        Command::Diagnostic(line) => load::diagnostic(target, line, timeout),
        Command::Agent { action, options } => {
            // Loading the agent only to stop it or show an empty history
            // would be pointless.
            if target.agent.is_none() {
                match action {
                    cli::Action::Stop => {
                        return Ok(format!(
                            "jmagent is not loaded in JVM {}: nothing to stop",
                            target.pid
                        ))
                    }
                    cli::Action::History => {
                        return Err(Error::CommandFailed(format!(
                            "jmagent is not loaded in JVM {}: no history (jmcmd {} start)",
                            target.pid, target.pid
                        )))
                    }
                    _ => {}
                }
            }
            let out = load::run_action(target, *action, options, agent, timeout)?;
            Ok(out.unwrap_or_default())
        }
    }
}
