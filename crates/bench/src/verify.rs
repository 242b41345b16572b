//! `cniswap-bench --verify IMAGE`: `cniswap verify` against the cluster of KUBECONFIG (the lab:
//! `scripts/lab up`, image `cniswap.lab/cniswap:<version>`), printing the wall time of a full
//! run from start to report (deploy, wait, check, remove), of a run with the agents already
//! deployed, and the probing cost per node: CPU and memory of the agents while
//! `verify --continuous` probes every path every 200 ms.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn verify(binary: &Path, image: &str, extra: &[&str]) -> Result<(f64, serde_json::Value), String> {
    let start = Instant::now();
    let out = Command::new(binary)
        .args([
            "verify",
            "-o",
            "json",
            "--image",
            image,
            "--image-pull-policy",
            "Never",
        ])
        .args(extra)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let wall = start.elapsed().as_secs_f64();
    if !matches!(out.status.code(), Some(0 | 1)) {
        return Err(format!("cniswap verify exited {:?}", out.status.code()));
    }
    let report = serde_json::from_slice(&out.stdout).map_err(|e| format!("verify's JSON: {e}"))?;
    Ok((wall, report))
}

/// (CPU ticks, RSS KiB) of every `cniswap agent probe` process on this machine (the lab's
/// nodes are namespaces of this machine).
fn agents() -> Vec<(i32, u64, u64)> {
    let mut out = vec![];
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if !args
            .windows(2)
            .any(|w| w[0] == b"agent" && w[1] == b"probe")
        {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let ticks = fields
            .get(11)
            .and_then(|u| u.parse::<u64>().ok())
            .unwrap_or(0)
            + fields
                .get(12)
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0);
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        let rss = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        out.push((pid, ticks, rss));
    }
    out
}

pub fn run(binary: &Path, image: &str) -> Result<(), String> {
    if std::env::var_os("KUBECONFIG").is_none() {
        return Err(
            "set KUBECONFIG to the cluster to verify (scripts/lab status shows the lab's)".into(),
        );
    }
    println!("cniswap verify benchmark ({})", binary.display());
    let (cold, report) = verify(binary, image, &["--keep"])?;
    let nodes = report["nodes"].as_array().map_or(0, Vec::len);
    let checks = report["summary"]["total"].as_u64().unwrap_or(0);
    let failed = report["summary"]["failed"].as_u64().unwrap_or(0);
    println!("nodes {nodes}, checks {checks}, failed {failed}");
    println!("full run (deploy, wait for agents, check, keep):  {cold:>6.1} s");
    let (warm, _) = verify(binary, image, &["--keep"])?;
    println!("run with the agents already deployed:           {warm:>6.1} s");
    let (full, _) = verify(binary, image, &[])?;
    println!("run that removes everything afterwards:         {full:>6.1} s");

    // Probing cost: agents' CPU while --continuous probes every path every 200 ms for 30 s.
    let window = Duration::from_secs(30);
    let mut child = Command::new(binary)
        .args(["verify", "--continuous", "--duration", "60s", "-o", "json"])
        .args(["--image", image, "--image-pull-policy", "Never"])
        .args([
            "--out-dir",
            &std::env::temp_dir()
                .join("cniswap-bench-verify")
                .to_string_lossy(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_secs(20));
    let before = agents();
    let start = Instant::now();
    std::thread::sleep(window);
    let after = agents();
    let seconds = start.elapsed().as_secs_f64();
    let _ = child.wait();
    let hz = 100.0; // USER_HZ on Linux
    let mut cpu = 0.0;
    let mut rss = vec![];
    for (pid, ticks, kib) in &after {
        if let Some((_, t0, _)) = before.iter().find(|(p, _, _)| p == pid) {
            cpu += (ticks - t0) as f64 / hz;
        }
        rss.push(*kib);
    }
    let per_node = if nodes > 0 {
        cpu / seconds / nodes as f64 * 100.0
    } else {
        0.0
    };
    println!(
        "probing every path every 200 ms: {} agents, CPU {:.2}% of a core per node, RSS {}-{} MiB per agent",
        after.len(),
        per_node,
        rss.iter().min().copied().unwrap_or(0) / 1024,
        rss.iter().max().copied().unwrap_or(0) / 1024,
    );
    Ok(())
}
