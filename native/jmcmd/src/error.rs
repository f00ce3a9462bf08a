//! jmcmd's errors, each with the exit code the README documents.
//!
//! Library code returns these; only `main` prints them (one line) and turns
//! them into the process's exit code.

/// Exit code of a successful run.
pub const EXIT_OK: u8 = 0;

/// Something jmcmd could not do, with enough context for a one-line message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The command ran in the JVM and failed there: the agent's own message
    /// (a bad option, an action that failed) or a diagnostic command's error.
    #[error("{0}")]
    CommandFailed(String),
    /// Bad command line (clap's own errors also exit with this code).
    #[error("{0}")]
    Usage(String),
    /// No process with this pid, or no JVM whose main class matches.
    #[error("{0}")]
    NoSuchProcess(String),
    /// The process exists but is not a HotSpot JVM (no `libjvm.so` mapped).
    #[error("process {pid} is not a JVM ({why})")]
    NotAJvm { pid: u32, why: String },
    /// The JVM runs with `-XX:+DisableAttachMechanism`.
    #[error(
        "JVM {pid} does not accept attach: it runs with -XX:+DisableAttachMechanism ({evidence})"
    )]
    AttachDisabled { pid: u32, evidence: String },
    /// JDK 21+ started with `-XX:-EnableDynamicAgentLoading` refuses `load`.
    #[error("JVM {pid} refuses to load agents at run time (it runs with -XX:-EnableDynamicAgentLoading): {advice}")]
    DynamicLoadingRefused { pid: u32, advice: String },
    /// The OS refused an operation on the JVM (another user's process, a
    /// socket or file jmcmd may not open).
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The JVM did not start its attach listener, or did not answer, in time.
    #[error("timeout: {0}")]
    Timeout(String),
    /// `libjmagent.so` was not found or cannot be read.
    #[error("{0}")]
    AgentNotFound(String),
    /// jmcmd was interrupted (SIGINT, SIGTERM, SIGHUP) and cleaned up.
    #[error("interrupted")]
    Interrupted,
    /// Any other OS-level failure, with what was being done.
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// The documented exit code (README, "jmcmd", "Exit codes").
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::CommandFailed(_) | Error::Other(_) => 1,
            Error::Usage(_) => 2,
            Error::NoSuchProcess(_) => 3,
            Error::NotAJvm { .. } => 4,
            Error::AttachDisabled { .. } => 5,
            Error::DynamicLoadingRefused { .. } => 6,
            Error::PermissionDenied(_) => 7,
            Error::Timeout(_) => 8,
            Error::AgentNotFound(_) => 9,
            Error::Interrupted => 130,
        }
    }

    /// Maps an OS error met while doing `what` to PermissionDenied or Other.
    pub fn os(what: impl std::fmt::Display, e: std::io::Error) -> Error {
        match e.raw_os_error() {
            Some(libc::EACCES) | Some(libc::EPERM) => {
                Error::PermissionDenied(format!("{what}: {e}"))
            }
            _ => Error::Other(format!("{what}: {e}")),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
