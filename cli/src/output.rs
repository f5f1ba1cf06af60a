//! Errors and output shared by every command.

use std::fmt;

/// A command's failure: one line for the user, and the exit code.
#[derive(Debug)]
pub struct CliError {
    message: String,
    code: u8,
}

impl CliError {
    /// Bad input or a failed check: exit code 1.
    pub fn new(message: impl Into<String>) -> CliError {
        CliError { message: message.into(), code: 1 }
    }

    /// A verification that found a divergence: exit code 3, so scripts can tell it apart.
    pub fn verification(message: impl Into<String>) -> CliError {
        CliError { message: message.into(), code: 3 }
    }

    pub fn exit_code(&self) -> u8 {
        self.code
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keep errors on one line, whatever a library put in them.
        let one_line: String = self.message.split_whitespace().collect::<Vec<_>>().join(" ");
        f.write_str(&one_line)
    }
}

/// Wraps any displayable error with context: `ctx("reading genesis")(e)`.
pub fn ctx<E: fmt::Display>(what: impl Into<String>) -> impl FnOnce(E) -> CliError {
    let what = what.into();
    move |e| CliError::new(format!("{what}: {e}"))
}

pub type CliResult = Result<(), CliError>;

/// Prints a JSON value, pretty.
pub fn print_json(value: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string()));
}

/// A panic is a bug in Plaza, never the user's fault: say so in one line, without a backtrace.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        eprintln!("error: internal error (a bug in plaza, please report it): {payload}{location}");
    }));
}
