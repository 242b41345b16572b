//! External tools (helm, talosctl, omnictl) as subprocesses: found on PATH before the first
//! step, run with a time limit, their argv, exit code and output kept for the journal.

use cniswap_exec::{ActionError, Failure};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub fn find(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

/// What a tool printed and how it ended.
#[derive(Debug, Clone)]
pub struct Ran {
    pub argv: String,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// argv, exit code and output as the journal keeps them.
    pub fn transcript(&self) -> String {
        let mut out = format!("$ {}\nexit {}\n", self.argv, self.code);
        if !self.stdout.trim().is_empty() {
            out.push_str(self.stdout.trim_end());
            out.push('\n');
        }
        if !self.stderr.trim().is_empty() {
            out.push_str(self.stderr.trim_end());
            out.push('\n');
        }
        out
    }
}

fn quote(arg: &str) -> String {
    if arg.is_empty()
        || arg
            .chars()
            .any(|c| c.is_whitespace() || "'\"$`\\|&;<>(){}*?".contains(c))
    {
        format!("'{}'", arg.replace('\'', r"'\''"))
    } else {
        arg.to_string()
    }
}

/// Runs `tool args...` in `dir` with a time limit. A non-zero exit is returned, not an error:
/// the caller decides (`helm list` of a missing release is not a failure).
pub async fn run(
    tool: &str,
    args: &[String],
    dir: &Path,
    timeout: Duration,
) -> Result<Ran, ActionError> {
    let argv = std::iter::once(tool.to_string())
        .chain(args.iter().map(|a| quote(a)))
        .collect::<Vec<_>>()
        .join(" ");
    let Some(path) = find(tool) else {
        return Err(ActionError::failed(
            Failure::new(format!("{tool} is not on PATH"))
                .command(argv)
                .next(format!("install {tool}, then run `cniswap apply` again")),
        ));
    };
    let child = tokio::process::Command::new(path)
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(timeout, child).await {
        Ok(Ok(output)) => Ok(Ran {
            argv,
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }),
        Ok(Err(e)) => Err(ActionError::failed(
            Failure::new(format!("cannot run {tool}: {e}")).command(argv),
        )),
        Err(_) => Err(ActionError::failed(
            Failure::new(format!(
                "{tool} did not finish within {} s",
                timeout.as_secs()
            ))
            .command(argv)
            .next("find out why it hangs (network, credentials), then run `cniswap apply` again"),
        )),
    }
}

/// Runs and insists on exit code 0.
pub async fn run_ok(
    tool: &str,
    args: &[String],
    dir: &Path,
    timeout: Duration,
) -> Result<Ran, ActionError> {
    let ran = run(tool, args, dir, timeout).await?;
    if ran.code != 0 {
        return Err(ActionError::failed(
            Failure::new(format!("{tool} exited with {}", ran.code))
                .command(ran.argv.clone())
                .output(format!("{}{}", ran.stdout, ran.stderr))
                .next(
                    "read the tool's output above, fix the cause, then run `cniswap apply` again",
                ),
        ));
    }
    Ok(ran)
}

pub fn args(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}
