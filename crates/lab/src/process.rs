//! Starting, watching and stopping the lab's processes. Each runs in its own process group with
//! its output in a log file, so the lab survives the shell that started it and a failure can
//! show the component's last words.

use crate::error::{LabError, Result};
use crate::state::ProcessRecord;
use rustix::process::{Pid, Signal, kill_process};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A command to run as a lab component.
pub struct Spawn<'a> {
    pub name: String,
    pub program: &'a Path,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub log: PathBuf,
    /// Run inside a node's network and mount namespaces.
    pub namespaces: Option<(&'a str, &'a Path)>,
    pub node: Option<String>,
}

/// Starts the component. The `Child` is returned so that the starting process can reap it
/// (`Child::try_wait`); a lab left running by `scripts/lab up` is reaped by init instead.
pub fn spawn(spec: Spawn<'_>) -> Result<(ProcessRecord, std::process::Child)> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log)
        .map_err(LabError::io(format!("open {}", spec.log.display())))?;
    let log_err = log
        .try_clone()
        .map_err(LabError::io(format!("open {}", spec.log.display())))?;
    let mut command = match spec.namespaces {
        // nsenter execs the program: the PID we record is the component's own.
        Some((netns, mount_ns)) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net=/run/netns/{netns}"))
                .arg(format!("--mount={}", mount_ns.display()))
                .arg("--")
                .arg(spec.program);
            c
        }
        None => Command::new(spec.program),
    };
    command
        .args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .process_group(0);
    let child = command.spawn().map_err(|e| LabError::Component {
        component: spec.name.clone(),
        reason: format!("cannot run {}: {e}", spec.program.display()),
        log: spec.log.clone(),
        tail: String::new(),
    })?;
    let pid = child.id();
    let start_ticks = start_ticks(pid).unwrap_or(0);
    let record = ProcessRecord {
        name: spec.name,
        pid,
        start_ticks,
        log: spec.log,
        node: spec.node,
    };
    Ok((record, child))
}

/// Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot.
pub fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after it follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// Whether the recorded process still runs (and is the same process, not a reused PID).
/// A zombie counts as gone.
pub fn alive(record: &ProcessRecord) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", record.pid)) else {
        return false;
    };
    let state = stat
        .rfind(')')
        .and_then(|i| stat.get(i + 2..i + 3))
        .unwrap_or("?");
    state != "Z" && start_ticks(record.pid) == Some(record.start_ticks)
}

/// SIGTERM, then SIGKILL after `grace`.
pub fn stop(record: &ProcessRecord, grace: Duration) {
    if !alive(record) {
        return;
    }
    let Some(pid) = Pid::from_raw(record.pid as i32) else {
        return;
    };
    let _ = kill_process(pid, Signal::TERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !alive(record) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = kill_process(pid, Signal::KILL);
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(record) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn kill_pid(pid: u32) {
    if let Some(pid) = Pid::from_raw(pid as i32) {
        let _ = kill_process(pid, Signal::KILL);
    }
}

/// The last `lines` lines of a log file, for error messages.
pub fn tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read(log).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// An error for a component that is not (or no longer) running.
pub fn failed(record: &ProcessRecord, reason: impl Into<String>) -> LabError {
    LabError::Component {
        component: record.name.clone(),
        reason: reason.into(),
        log: record.log.clone(),
        tail: tail(&record.log, 25),
    }
}

/// Runs a short command to completion; a failure is an error with its output.
pub fn run(program: &str, args: &[&str]) -> Result<String> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| LabError::Command {
            command: format!("{program} {}", args.join(" ")),
            status: "not started".into(),
            output: e.to_string(),
        })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(LabError::Command {
            command: format!("{program} {}", args.join(" ")),
            status: output.status.to_string(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stderr),
                String::from_utf8_lossy(&output.stdout)
            )
            .trim()
            .to_string(),
        })
    }
}

/// Runs a shell script in a node's network and mount namespaces.
pub fn run_in_node(netns: &str, mount_ns: &Path, script: &str) -> Result<String> {
    run(
        "nsenter",
        &[
            &format!("--net=/run/netns/{netns}"),
            &format!("--mount={}", mount_ns.display()),
            "--",
            "sh",
            "-c",
            script,
        ],
    )
}
