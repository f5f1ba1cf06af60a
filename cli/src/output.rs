//! Errors and output shared by every command.
//!
//! Exit codes (docs/NODE.md, "Exit codes"): 0 success; 1 the command failed (bad input, a
//! missing or corrupt file, a failed check); 2 usage (clap); 3 a verification found a
//! divergence; 4 the ledger rejected the record (final with a receipt other than
//! `accepted`); 5 the node refused the request (a 4xx answer); 6 the node could not be
//! reached or failed (no connection, a broken answer, a 5xx). A closed stdout (`plaza query
//! blocks | head`) ends the command quietly with 0.

use std::fmt;
use std::io::Write;

use plaza_node::client::ClientError;

/// Exit code: the ledger rejected the record.
pub const EXIT_REJECTED: u8 = 4;
/// Exit code: the node refused the request.
pub const EXIT_REFUSED: u8 = 5;
/// Exit code: the node could not be reached or failed.
pub const EXIT_UNREACHABLE: u8 = 6;

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

    /// A final record whose receipt is not `accepted`: exit code 4.
    pub fn rejected(message: impl Into<String>) -> CliError {
        CliError { message: message.into(), code: EXIT_REJECTED }
    }

    pub fn exit_code(&self) -> u8 {
        self.code
    }

    /// The same failure (and exit code), its message prefixed with what was being done.
    pub fn context(self, what: &str) -> CliError {
        CliError { message: format!("{what}: {}", self.message), code: self.code }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keep errors on one line, whatever a library put in them.
        let one_line: String = self.message.split_whitespace().collect::<Vec<_>>().join(" ");
        f.write_str(&one_line)
    }
}

/// The node's answer decides the exit code: a refusal (4xx) is 5, anything else 6.
impl From<ClientError> for CliError {
    fn from(e: ClientError) -> CliError {
        let code = if e.is_refusal() { EXIT_REFUSED } else { EXIT_UNREACHABLE };
        CliError { message: e.to_string(), code }
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
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}").and_then(|()| out.flush()) {
        stdout_failed(&e);
    }
}

/// Writes bytes to stdout as they are (a closed pipe ends quietly, as for JSON).
pub fn print_bytes(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        stdout_failed(&e);
    }
}

/// Whoever read our output has gone (`| head`): stop quietly, as a pipeline expects.
fn stdout_failed(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to stdout: {e}");
    std::process::exit(1);
}

/// A panic is a bug in Plaza, never the user's fault: say so in one line, without a backtrace.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        // `println!` panics when stdout is a closed pipe; that is the reader's choice, not a
        // bug: end quietly (std's message for it is the only way to tell it from a panic).
        let message = info.payload().downcast_ref::<String>().map(String::as_str).or_else(|| info.payload().downcast_ref::<&str>().copied());
        if message.is_some_and(|m| m.starts_with("failed printing to stdout") && m.contains("Broken pipe")) {
            std::process::exit(0);
        }
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
