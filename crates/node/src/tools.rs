//! Running the system tools the agent drives (ip, tc, iptables-*, nft, ipset), each once per
//! batch rather than once per object.

use crate::NodeError;
use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `program args`, feeding `stdin`; returns stdout, or an error naming the command.
pub fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String, NodeError> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            NodeError::new(
                format!("cannot run {program}: {e}"),
                format!("install {program} (Debian: iproute2, iptables, nftables, ipset) or run from the cniswap node image"),
            )
        })?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes()).map_err(|e| {
            NodeError::new(
                format!("cannot write to {program}: {e}"),
                "retry; check the tool works by hand",
            )
        })?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| NodeError::new(format!("{program} did not finish: {e}"), "retry"))?;
    if !output.status.success() {
        return Err(NodeError::new(
            format!(
                "`{program} {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            "nothing after this step was changed; the backup holds what was removed before it",
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Whether a program can be started (present in PATH).
pub fn available(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}
