pub mod machine;
pub mod text;

use crate::error::CliError;
use std::io::Write;

/// Writes to stdout through anstream (strips colour when stdout is not a terminal); a closed
/// pipe (`| head`) is not an error.
pub fn write_stdout(text: &str) -> Result<(), CliError> {
    let mut out = anstream::stdout();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::other(format!("cannot write output: {e}"), "")),
    }
}
