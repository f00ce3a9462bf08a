//! Whether the agent is disabled, and why. A leaf: every module may ask,
//! and the FFI guard disables the agent on a panic without knowing it.

use std::sync::OnceLock;

static DISABLED: OnceLock<String> = OnceLock::new();
/// What disabling must also stop (the sampler), registered by the agent.
static ON_DISABLE: OnceLock<fn()> = OnceLock::new();

/// Stops the agent for good, saying why once.
pub fn disable(reason: &str) {
    if DISABLED.set(reason.to_string()).is_ok() {
        eprintln!("jmagent: disabled: {reason}");
        if let Some(stop) = ON_DISABLE.get() {
            stop();
        }
    }
}

/// Registers what [`disable`] also does.
pub fn on_disable(stop: fn()) {
    let _ = ON_DISABLE.set(stop);
}

pub fn is_disabled() -> bool {
    DISABLED.get().is_some()
}

pub fn disabled_reason() -> Option<&'static str> {
    DISABLED.get().map(String::as_str)
}
