//! `sudo cniswap-bench --lab [--kwok-nodes 1000] [--pods-per-node 30]`: how long a lab takes to
//! come up (three real nodes; N simulated nodes with their pods), and `cniswap inspect` live on
//! the simulated cluster next to `kubectl get -o json` of the same objects from the same
//! server, each a child process (wall time and peak RSS from wait4).

use crate::measure;
use cniswap_lab::{Lab, Options};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub fn lab_benchmark(binary: &Path, kwok_nodes: usize, pods_per_node: usize) -> Result<(), String> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let root = std::env::temp_dir().join(format!("cniswap-bench-lab-{}", std::process::id()));

    println!("lab up (wall time, this machine)");
    let start = Instant::now();
    let mut options = Options::new(root.join("real"));
    options.real_nodes = 3;
    let lab = runtime
        .block_on(Lab::up(options, &mut |m| eprintln!("lab: {m}")))
        .map_err(|e| e.to_string())?;
    let up = start.elapsed().as_secs_f64();
    let start = Instant::now();
    lab.down().map_err(|e| e.to_string())?;
    println!(
        "  3 real nodes (Flannel, kube-proxy, CoreDNS Ready): up {up:.1} s, down {:.1} s",
        start.elapsed().as_secs_f64()
    );

    let start = Instant::now();
    let mut options = Options::new(root.join("kwok"));
    options.real_nodes = 0;
    options.kwok_nodes = kwok_nodes;
    options.kwok_pods_per_node = pods_per_node;
    let lab = runtime
        .block_on(Lab::up(options, &mut |m| eprintln!("lab: {m}")))
        .map_err(|e| e.to_string())?;
    println!(
        "  {kwok_nodes} kwok nodes, {} pods Running: up {:.1} s",
        kwok_nodes * pods_per_node,
        start.elapsed().as_secs_f64()
    );

    let kubeconfig = lab.kubeconfig.clone();
    let kubectl = cniswap_lab::kubectl().map_err(|e| e.to_string())?;
    println!(
        "\nlive reads of {kwok_nodes} nodes / {} pods (median of 3 runs, peak RSS of the run)",
        kwok_nodes * pods_per_node
    );
    println!("{:<44} {:>8} {:>14}", "command", "wall s", "peak RSS MiB");
    let kube = kubeconfig.as_os_str();
    let rows: Vec<(String, PathBuf, Vec<&OsStr>)> = vec![
        (
            "cniswap inspect -o json".into(),
            binary.to_path_buf(),
            vec![
                "inspect".as_ref(),
                "--kubeconfig".as_ref(),
                kube,
                "-o".as_ref(),
                "json".as_ref(),
            ],
        ),
        (
            "kubectl get pods -A -o json".into(),
            kubectl.clone(),
            vec![
                "--kubeconfig".as_ref(),
                kube,
                "get".as_ref(),
                "pods".as_ref(),
                "-A".as_ref(),
                "-o".as_ref(),
                "json".as_ref(),
            ],
        ),
        (
            "kubectl get nodes -o json".into(),
            kubectl.clone(),
            vec![
                "--kubeconfig".as_ref(),
                kube,
                "get".as_ref(),
                "nodes".as_ref(),
                "-o".as_ref(),
                "json".as_ref(),
            ],
        ),
        (
            "kubectl get daemonsets -A -o json".into(),
            kubectl.clone(),
            vec![
                "--kubeconfig".as_ref(),
                kube,
                "get".as_ref(),
                "daemonsets".as_ref(),
                "-A".as_ref(),
                "-o".as_ref(),
                "json".as_ref(),
            ],
        ),
    ];
    for (name, program, args) in rows {
        let mut runs = Vec::new();
        for _ in 0..3 {
            let (seconds, peak_kib, code) = measure(&program, &args)?;
            if !matches!(code, 0 | 1) {
                return Err(format!("{name} exited with {code}"));
            }
            runs.push((seconds, peak_kib));
        }
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (seconds, peak_kib) = runs[1];
        println!(
            "{name:<44} {seconds:>8.2} {:>14.1}",
            peak_kib as f64 / 1024.0
        );
    }
    lab.down().map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}
