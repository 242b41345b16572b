use anstyle::{AnsiColor, Style};
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
    let mut err = anstream::stderr();
    let _ = writeln!(err, "{red}error{red:#}{bold}:{bold:#} {message}");
    if !help.is_empty() {
        let _ = writeln!(err, "  {bold}help:{bold:#} {help}");
    }
}
