//! `cargo run --release -p cniswap-bench -- [--nodes 500,5000] [--pods-per-node 30] [--formats json,yaml]`
//!
//! Generates synthetic snapshots, runs `cniswap inspect --snapshot DIR -o json` on each as a
//! child process, and prints wall time and peak resident memory (from wait4's rusage).

mod synth;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

fn main() -> std::process::ExitCode {
    let mut nodes = vec![500, 5000];
    let mut pods_per_node = 30;
    let mut formats = vec![synth::Format::Json, synth::Format::Yaml];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--nodes" => {
                nodes = args
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|n| n.parse().ok())
                    .collect()
            }
            "--pods-per-node" => {
                pods_per_node = args.next().and_then(|n| n.parse().ok()).unwrap_or(30)
            }
            "--formats" => {
                formats = args
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|f| match f {
                        "json" => Some(synth::Format::Json),
                        "yaml" => Some(synth::Format::Yaml),
                        _ => None,
                    })
                    .collect()
            }
            _ => {
                eprintln!(
                    "usage: cniswap-bench [--nodes 500,5000] [--pods-per-node 30] [--formats json,yaml]"
                );
                return std::process::ExitCode::from(2);
            }
        }
    }
    let binary = cniswap_binary();
    if !binary.exists() {
        eprintln!(
            "error: {} not found; build it first: cargo build --release -p cniswap",
            binary.display()
        );
        return std::process::ExitCode::from(2);
    }
    println!(
        "cniswap inspect benchmark ({} per run, {pods_per_node} pods per node)",
        binary.display()
    );
    println!(
        "{:>6} {:>8} {:>6} {:>10} {:>9} {:>12}",
        "nodes", "pods", "format", "input MiB", "wall s", "peak RSS MiB"
    );
    for &n in &nodes {
        for &format in &formats {
            let dir = std::env::temp_dir().join(format!(
                "cniswap-bench-{n}-{}",
                if format == synth::Format::Json {
                    "json"
                } else {
                    "yaml"
                }
            ));
            let _ = std::fs::remove_dir_all(&dir);
            let size = match synth::write_snapshot(&dir, n, pods_per_node, format) {
                Ok(size) => size,
                Err(e) => {
                    eprintln!("error: cannot write {}: {e}", dir.display());
                    return std::process::ExitCode::from(2);
                }
            };
            match measure(&binary, &dir) {
                Ok((seconds, peak_kib, ok)) => println!(
                    "{n:>6} {:>8} {:>6} {:>10.1} {seconds:>9.2} {:>12.1}{}",
                    n * pods_per_node,
                    if format == synth::Format::Json {
                        "json"
                    } else {
                        "yaml"
                    },
                    size as f64 / 1048576.0,
                    peak_kib as f64 / 1024.0,
                    if ok { "" } else { "  (inspect failed!)" }
                ),
                Err(e) => eprintln!("error: {e}"),
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    std::process::ExitCode::SUCCESS
}

fn cniswap_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("CNISWAP_BIN") {
        return PathBuf::from(path);
    }
    let me = std::env::current_exe().unwrap_or_default();
    me.with_file_name("cniswap")
}

/// Runs inspect and returns (wall seconds, peak RSS in KiB, success).
fn measure(binary: &PathBuf, dir: &std::path::Path) -> Result<(f64, i64, bool), String> {
    let start = Instant::now();
    let child = Command::new(binary)
        .args(["inspect", "--snapshot"])
        .arg(dir)
        .args(["-o", "json"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let (status, usage) = wait_with_rusage(child.id() as libc::pid_t)?;
    let seconds = start.elapsed().as_secs_f64();
    Ok((seconds, usage.ru_maxrss, status == 0))
}

/// std's Child::wait does not expose rusage; wait4 gives the child's own peak RSS (ru_maxrss, KiB).
#[allow(unsafe_code)]
fn wait_with_rusage(pid: libc::pid_t) -> Result<(i32, libc::rusage), String> {
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child, which nothing else waits for.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if rc < 0 {
        return Err(format!("wait4 failed: {}", std::io::Error::last_os_error()));
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    Ok((code, usage))
}
