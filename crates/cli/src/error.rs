use anstyle::{AnsiColor, Style};
use cniswap_model::text::escape_control;
use cniswap_snapshot::InputError;
use std::io::Write;

/// Errors that end a command with exit code 2. Each says what went wrong and what to do.
#[derive(Debug)]
pub enum CliError {
    Input(InputError),
    Other { message: String, help: String },
}

impl CliError {
    pub fn other(message: impl Into<String>, help: impl Into<String>) -> Self {
        CliError::Other {
            message: message.into(),
            help: help.into(),
        }
    }

    /// A flag combination that cannot work (exit 2, like every usage error).
    pub fn usage(message: impl Into<String>, help: impl Into<String>) -> Self {
        Self::other(message, help)
    }
}

impl From<InputError> for CliError {
    fn from(e: InputError) -> Self {
        CliError::Input(e)
    }
}

pub fn print(error: &CliError) {
    let red = Style::new().bold().fg_color(Some(AnsiColor::Red.into()));
    let bold = Style::new().bold();
    let (message, help) = match error {
        CliError::Input(e) => (e.to_string(), e.help.clone()),
        CliError::Other { message, help } => (message.clone(), help.clone()),
    };
    // Messages name files and objects from the input: escape them, so a file name cannot put
    // a line of its own (or a terminal escape sequence) on stderr.
    let (message, help) = (escape_control(&message), escape_control(&help));
    let mut err = anstream::stderr();
    let _ = writeln!(err, "{red}error{red:#}{bold}:{bold:#} {message}");
    if !help.is_empty() {
        let _ = writeln!(err, "  {bold}help:{bold:#} {help}");
    }
}
