//! `cargo run --release -p cniswap-bench -- [--nodes 500,5000] [--pods-per-node 30] [--formats json,yaml]`
//! `cargo run --release -p cniswap-bench -- --lint-repo 100`
//! `sudo target/release/cniswap-bench --node-state` (root: builds a network namespace)
//! `KUBECONFIG=... target/release/cniswap-bench --verify IMAGE` (a cluster, e.g. the lab)
//! `sudo target/release/cniswap-bench --lab [--kwok-nodes 1000] [--pods-per-node 30]` (root:
//! brings labs up; see lab.rs)
//! `cargo run --release -p cniswap-bench -- --scaling [5000,10000,20000]`
//! `target/release/cniswap-bench --ratio [--nodes 5000] [--runs 3] [--keep DIR]` (python3 on
//! PATH; `--keep` writes the snapshot to DIR once and keeps it, for profilers and repeat runs)
//! `target/release/cniswap-bench --apply-memory 500` (apply's executor, the cluster in memory)
//! `sudo target/release/cniswap-bench --apply-lab 500` (root: a lab of 500 kwok nodes; apply's
//! own time per node) or `--apply-kubeconfig FILE [--apply-nodes N]` (a cluster's kwok nodes)
//!
//! Generates synthetic snapshots, runs `cniswap inspect --snapshot DIR -o json` on each as a
//! child process, and prints wall time and peak resident memory (from wait4's rusage).
//! `--lint-repo N` instead generates a GitOps repository of N files (Talos patches, a
//! talconfig, Omni patches, Cilium HelmReleases and values, Calico resources, unrelated
//! manifests) and times `cniswap lint DIR -o json` on it. `--node-state` builds a network
//! namespace holding 500 pod veths, 5,000 routes and 20,000 iptables rules of Cilium and times
//! `cniswap node inventory` and `cniswap node clean --cni cilium` in it. `--scaling` times inputs
//! whose cost must grow linearly with their size (issue 10 §8): Talos multi-document files of
//! N documents (read by `inspect`) and `.tftpl` templates of N lines that each give a finding
//! (read by `lint`), plus a 4 MB multi-document file. `--ratio` times `cniswap inspect -o json`
//! against Python's C `json.load` of the same JSON files (the median of `--runs` each) and
//! prints inspect's time as a fraction of it, and both peaks of RSS: the figure that shows at
//! once when reading snapshots gets slower (issue 19: it must stay under 0.1 and 250 MB).

mod apply;
mod lab;
mod ratio;
mod synth;
mod verify;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

fn main() -> std::process::ExitCode {
    let mut nodes = vec![500, 5000];
    let mut pods_per_node = 30;
    let mut formats = vec![synth::Format::Json, synth::Format::Yaml];
    let mut lint_files = None;
    let mut node_state = false;
    let mut plan = false;
    let mut verify_image: Option<String> = None;
    let mut lab = false;
    let mut kwok_nodes = 1000;
    let mut apply_memory = None;
    let mut apply_kubeconfig: Option<PathBuf> = None;
    let mut apply_lab = None;
    let mut node_limit = usize::MAX;
    let mut scaling: Option<Vec<usize>> = None;
    let mut ratio = false;
    let mut runs = 3;
    let mut keep: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--lint-repo" => lint_files = args.next().and_then(|n| n.parse().ok()),
            "--node-state" => node_state = true,
            "--ratio" => ratio = true,
            "--keep" => keep = args.next().map(PathBuf::from),
            "--runs" => runs = args.next().and_then(|n| n.parse().ok()).unwrap_or(3).max(1),
            "--plan" => plan = true,
            "--verify" => verify_image = args.next(),
            "--lab" => lab = true,
            "--kwok-nodes" => kwok_nodes = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000),
            "--apply-memory" => apply_memory = args.next().and_then(|n| n.parse().ok()),
            "--apply-kubeconfig" => apply_kubeconfig = args.next().map(PathBuf::from),
            "--apply-lab" => apply_lab = args.next().and_then(|n| n.parse().ok()),
            "--apply-nodes" => {
                node_limit = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(usize::MAX)
            }
            "--scaling" => {
                let sizes: Vec<usize> = args
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|n| n.parse().ok())
                    .collect();
                scaling = Some(if sizes.is_empty() {
                    vec![5_000, 10_000, 20_000]
                } else {
                    sizes
                });
            }
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
                    "usage: cniswap-bench --ratio [--nodes 5000] [--runs 3] [--keep DIR] | [--plan] [--nodes 500,5000] [--pods-per-node 30] [--formats json,yaml] | --lint-repo N | --node-state | --verify IMAGE | --lab [--kwok-nodes 1000] [--pods-per-node 30] | --scaling [5000,10000,20000] | --apply-memory N | --apply-lab N | --apply-kubeconfig FILE [--apply-nodes N]"
                );
                return std::process::ExitCode::from(2);
            }
        }
    }
    if let Some(nodes) = apply_lab {
        return match apply::lab(nodes) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::ExitCode::from(2)
            }
        };
    }
    if let Some(kubeconfig) = apply_kubeconfig {
        return match apply::cluster(&kubeconfig, node_limit) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::ExitCode::from(2)
            }
        };
    }
    if let Some(nodes) = apply_memory {
        return match apply::memory(nodes) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::ExitCode::from(2)
            }
        };
    }
    let binary = cniswap_binary();
    if !binary.exists() {
        eprintln!(
            "error: {} not found; build it first: cargo build --release -p cniswap",
            binary.display()
        );
        return std::process::ExitCode::from(2);
    }
    if ratio {
        let n = if nodes == [500, 5000] { 5000 } else { nodes[0] };
        return match ratio::run(&binary, n, pods_per_node, runs, keep.as_deref()) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::ExitCode::from(2)
            }
        };
    }
    if lab {
        return match lab::lab_benchmark(&binary, kwok_nodes, pods_per_node) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::ExitCode::from(2)
            }
        };
    }
    if let Some(files) = lint_files {
        return lint_benchmark(&binary, files);
    }
    if let Some(sizes) = scaling {
        return scaling_benchmark(&binary, &sizes);
    }
    if node_state {
        return match node_benchmark(&binary) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::ExitCode::from(2)
            }
        };
    }
    if plan {
        return plan_benchmark(&binary, &nodes, pods_per_node);
    }
    if let Some(image) = verify_image {
        return match verify::run(&binary, &image) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::ExitCode::from(2)
            }
        };
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
            match measure(
                &binary,
                &[
                    "inspect".as_ref(),
                    "--snapshot".as_ref(),
                    dir.as_os_str(),
                    "-o".as_ref(),
                    "json".as_ref(),
                ],
            ) {
                Ok((seconds, peak_kib, code)) => println!(
                    "{n:>6} {:>8} {:>6} {:>10.1} {seconds:>9.2} {:>12.1}{}",
                    n * pods_per_node,
                    if format == synth::Format::Json {
                        "json"
                    } else {
                        "yaml"
                    },
                    size as f64 / 1048576.0,
                    peak_kib as f64 / 1024.0,
                    // 1 = error findings, still a complete run.
                    if matches!(code, 0 | 1) {
                        ""
                    } else {
                        "  (inspect failed!)"
                    }
                ),
                Err(e) => eprintln!("error: {e}"),
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    std::process::ExitCode::SUCCESS
}

/// `cniswap plan --to cilium -o DIR` (rolling, every node switched one by one) on synthetic
/// Flannel clusters: wall time, peak RSS and the size of what it writes.
fn plan_benchmark(
    binary: &std::path::Path,
    nodes: &[usize],
    pods_per_node: usize,
) -> std::process::ExitCode {
    println!(
        "cniswap plan benchmark ({} per run, {pods_per_node} pods per node)",
        binary.display()
    );
    println!(
        "{:>6} {:>8} {:>9} {:>12} {:>8} {:>13}",
        "nodes", "pods", "wall s", "peak RSS MiB", "steps", "runbook MiB"
    );
    for &n in nodes {
        let dir = std::env::temp_dir().join(format!("cniswap-bench-plan-{n}"));
        let out = std::env::temp_dir().join(format!("cniswap-bench-plan-{n}-out"));
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&out);
        if let Err(e) = synth::write_snapshot(&dir, n, pods_per_node, synth::Format::Json) {
            eprintln!("error: cannot write {}: {e}", dir.display());
            return std::process::ExitCode::from(2);
        }
        let args: [&std::ffi::OsStr; 9] = [
            "plan".as_ref(),
            "--snapshot".as_ref(),
            dir.as_os_str(),
            "--to".as_ref(),
            "cilium".as_ref(),
            "--strategy".as_ref(),
            "rolling".as_ref(),
            "--force".as_ref(),
            "--out-dir".as_ref(),
        ];
        let mut all: Vec<&std::ffi::OsStr> = args.to_vec();
        all.push(out.as_os_str());
        match measure(binary, &all) {
            Ok((seconds, peak_kib, 0)) => {
                let plan = std::fs::read_to_string(out.join("plan.yaml")).unwrap_or_default();
                let steps = plan
                    .lines()
                    .filter(|l| l.trim_start().starts_with("- id: ") && l.contains('.'))
                    .count();
                let runbook = std::fs::metadata(out.join("runbook.md"))
                    .map(|m| m.len())
                    .unwrap_or(0);
                println!(
                    "{n:>6} {:>8} {seconds:>9.2} {:>12.1} {steps:>8} {:>13.1}",
                    n * pods_per_node,
                    peak_kib as f64 / 1024.0,
                    runbook as f64 / 1048576.0
                );
            }
            Ok((_, _, code)) => eprintln!("error: cniswap plan exited {code} on {n} nodes"),
            Err(e) => eprintln!("error: {e}"),
        }
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&out);
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

/// Runs a shell script inside `netns`, feeding `stdin` (used for batch files).
fn in_netns(netns: &str, program: &str, args: &[&str], stdin: &str) -> Result<(), String> {
    use std::io::Write;
    let mut child = Command::new("ip")
        .args(["netns", "exec", netns, program])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if let Some(mut pipe) = child.stdin.take() {
        pipe.write_all(stdin.as_bytes())
            .map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// 500 pod veths, 5,000 routes and 20,000 iptables rules of Cilium in a network namespace;
/// times inventory and clean (each a child process, peak RSS from wait4).
fn node_benchmark(binary: &std::path::Path) -> Result<(), String> {
    let netns = format!("cniswap-bench-{}", std::process::id());
    let status = Command::new("ip")
        .args(["netns", "add", &netns])
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("ip netns add failed (run as root)".into());
    }
    let root = std::env::temp_dir().join(&netns);
    let result = (|| {
        std::fs::create_dir_all(root.join("etc/cni/net.d")).map_err(|e| e.to_string())?;
        std::fs::write(
            root.join("etc/cni/net.d/05-cilium.conflist"),
            r#"{"cniVersion":"0.3.1","name":"cilium","plugins":[{"type":"cilium-cni"}]}"#,
        )
        .map_err(|e| e.to_string())?;
        let mut links = String::from(
            "link add cilium_host type veth peer name cilium_net\nlink set cilium_host up\n",
        );
        for i in 0..500 {
            links.push_str(&format!(
                "link add lxc{i:012x} type veth peer name lxcp{i:011x}\n"
            ));
        }
        in_netns(&netns, "ip", &["-batch", "-"], &links)?;
        let routes: String = (0..5000)
            .map(|i| {
                format!(
                    "route add 10.{}.{}.0/24 dev cilium_host\n",
                    100 + i / 256,
                    i % 256
                )
            })
            .collect();
        in_netns(&netns, "ip", &["-batch", "-"], &routes)?;
        let mut rules = String::from(
            "*filter\n:CILIUM_FORWARD - [0:0]\n-A FORWARD -m comment --comment \"cilium-feeder: CILIUM_FORWARD\" -j CILIUM_FORWARD\n",
        );
        for i in 0..20000 {
            rules.push_str(&format!(
                "-A CILIUM_FORWARD -s 10.{}.{}.{}/32 -j ACCEPT\n",
                i / 65536,
                (i / 256) % 256,
                i % 256
            ));
        }
        rules.push_str("COMMIT\n");
        in_netns(&netns, "iptables-legacy-restore", &["--noflush"], &rules)?;
        println!(
            "cniswap node benchmark: 500 pod veths, 5,000 routes, 20,000 iptables rules (netns {netns})"
        );
        let ns = std::ffi::OsStr::new(&netns);
        let run = |args: &[&std::ffi::OsStr]| {
            let mut full: Vec<&std::ffi::OsStr> =
                vec!["netns".as_ref(), "exec".as_ref(), ns, binary.as_os_str()];
            full.extend(args);
            measure(&PathBuf::from("ip"), &full)
        };
        let (seconds, rss, code) = run(&[
            "node".as_ref(),
            "inventory".as_ref(),
            "-o".as_ref(),
            "json".as_ref(),
            "--root".as_ref(),
            root.as_os_str(),
        ])?;
        println!(
            "  inventory: {seconds:.3} s, peak RSS {} MiB (exit {code})",
            rss / 1024
        );
        let backup = root.join("backup");
        let (seconds, rss, code) = run(&[
            "node".as_ref(),
            "clean".as_ref(),
            "--cni".as_ref(),
            "cilium".as_ref(),
            "--root".as_ref(),
            root.as_os_str(),
            "--backup".as_ref(),
            backup.as_os_str(),
        ])?;
        println!(
            "  clean:     {seconds:.3} s, peak RSS {} MiB (exit {code})",
            rss / 1024
        );
        Ok(())
    })();
    let _ = Command::new("ip").args(["netns", "del", &netns]).status();
    let _ = std::fs::remove_dir_all(&root);
    result
}

/// Times the inputs whose cost grew quadratically (issue 10 §8): a Talos multi-document file
/// of N documents under `talos/` (`inspect --snapshot`), a `.tftpl` Talos template of N lines
/// that each hold an unknown key (`lint`: one finding per line), and a 4 MB multi-document file.
fn scaling_benchmark(binary: &PathBuf, sizes: &[usize]) -> std::process::ExitCode {
    println!("cniswap scaling benchmark ({} per run)", binary.display());
    println!(
        "{:<32} {:>8} {:>10} {:>9} {:>12}",
        "input", "size", "input KiB", "wall s", "peak RSS MiB"
    );
    let four_mb = synth::multidoc_count_for_bytes(4 << 20);
    let mut cases: Vec<(&str, usize)> =
        sizes.iter().map(|n| ("talos multi-document", *n)).collect();
    cases.push(("talos multi-document (4 MB)", four_mb));
    cases.extend(sizes.iter().map(|n| ("tftpl template (lines)", *n)));
    for (what, n) in cases {
        let dir = std::env::temp_dir().join(format!("cniswap-bench-scaling-{n}"));
        let _ = std::fs::remove_dir_all(&dir);
        let template = what.starts_with("tftpl");
        let written = if template {
            synth::write_template(&dir, n)
        } else {
            synth::write_multidoc(&dir, n)
        };
        let bytes = match written {
            Ok(bytes) => bytes,
            Err(e) => {
                eprintln!("error: cannot write {}: {e}", dir.display());
                return std::process::ExitCode::from(2);
            }
        };
        let args: Vec<&std::ffi::OsStr> = if template {
            vec![
                "lint".as_ref(),
                dir.as_os_str(),
                lint_format_flag(binary).as_ref(),
                "json".as_ref(),
            ]
        } else {
            vec![
                "inspect".as_ref(),
                "--snapshot".as_ref(),
                dir.as_os_str(),
                "-o".as_ref(),
                "json".as_ref(),
            ]
        };
        match measure(binary, &args) {
            Ok((seconds, rss, 0 | 1)) => println!(
                "{what:<32} {n:>8} {:>10} {seconds:>9.2} {:>12}",
                bytes / 1024,
                rss / 1024
            ),
            Ok((_, _, code)) => {
                eprintln!("error: cniswap exited with {code} on {what} {n}");
                return std::process::ExitCode::from(2);
            }
            Err(e) => {
                eprintln!("error: {e}");
                return std::process::ExitCode::from(2);
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    std::process::ExitCode::SUCCESS
}

/// `-o` picks lint's format since the output options were unified; older builds (measured
/// for before/after figures) only know `--format`.
fn lint_format_flag(binary: &PathBuf) -> &'static str {
    let help = Command::new(binary).args(["lint", "--help"]).output();
    match help {
        Ok(out) if String::from_utf8_lossy(&out.stdout).contains("--output <") => "-o",
        _ => "--format",
    }
}

/// Times `cniswap lint` on a generated repository: five runs, median and max wall time.
fn lint_benchmark(binary: &std::path::Path, files: usize) -> std::process::ExitCode {
    let dir = std::env::temp_dir().join(format!("cniswap-bench-repo-{files}"));
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = synth::write_repo(&dir, files) {
        eprintln!("error: cannot write {}: {e}", dir.display());
        return std::process::ExitCode::from(2);
    }
    println!("cniswap lint benchmark: {files} files in {}", dir.display());
    let mut times = Vec::new();
    let mut peak = 0;
    for _ in 0..5 {
        match measure(
            binary,
            &[
                "lint".as_ref(),
                dir.as_os_str(),
                "-o".as_ref(),
                "json".as_ref(),
            ],
        ) {
            // Exit 1 means findings, which the generated repository has on purpose.
            Ok((seconds, rss, 0 | 1)) => {
                times.push(seconds);
                peak = peak.max(rss);
            }
            Ok((_, _, code)) => {
                eprintln!("error: cniswap lint exited with {code}");
                return std::process::ExitCode::from(2);
            }
            Err(e) => {
                eprintln!("error: {e}");
                return std::process::ExitCode::from(2);
            }
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "  median {:.3} s, max {:.3} s over {} runs, peak RSS {} MiB",
        times[times.len() / 2],
        times[times.len() - 1],
        times.len(),
        peak / 1024
    );
    let _ = std::fs::remove_dir_all(&dir);
    std::process::ExitCode::SUCCESS
}

/// Runs cniswap with `args` and returns (wall seconds, peak RSS in KiB, exit code).
pub(crate) fn measure(
    binary: &std::path::Path,
    args: &[&std::ffi::OsStr],
) -> Result<(f64, i64, i32), String> {
    measure_with_cpu(binary, args).map(|m| (m.seconds, m.peak_kib, m.code))
}

/// One run of a child process: wall time, CPU time (user + system), peak RSS, exit code.
pub(crate) struct Measured {
    pub seconds: f64,
    /// The child's own CPU seconds: on a shared machine this moves less than wall time.
    pub cpu_seconds: f64,
    pub peak_kib: i64,
    pub code: i32,
}

pub(crate) fn measure_with_cpu(
    binary: &std::path::Path,
    args: &[&std::ffi::OsStr],
) -> Result<Measured, String> {
    let start = Instant::now();
    let child = Command::new(binary)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let (status, usage) = wait_with_rusage(child.id() as libc::pid_t)?;
    let seconds = start.elapsed().as_secs_f64();
    let cpu = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(Measured {
        seconds,
        cpu_seconds: cpu(usage.ru_utime) + cpu(usage.ru_stime),
        peak_kib: usage.ru_maxrss,
        code: status,
    })
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
