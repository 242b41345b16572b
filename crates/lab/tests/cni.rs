//! Labs on Calico and on Cilium: `scripts/lab up --cni calico|cilium` brings three real nodes
//! up on that CNI (Calico from its manifest, Cilium from its chart with the real helm),
//! `status -o json` names the CNI and gives the plan flags for every target, `check` passes
//! (pod to pod across nodes, Service, DNS), and `down` leaves nothing. The CNIs' host-reaching
//! parts are off in the lab: the machine's kernel sysctls, its mounts, its cgroup2 root's BPF
//! programs, its /etc/sysctl.d and its own network namespace are the same after as before.
//! `--kube-proxy none` is refused with the reason. Needs root, Go, clang-19 and bpftool.

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

use std::path::Path;
use std::process::Command;

fn lab(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cniswap-lab"))
        .args(args)
        .output()
        .unwrap()
}

/// One lab at a time: the before/after comparison must not see another test's lab.
static HOST: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What a CNI pod could change on the real host, rather than inside its node.
fn host_state() -> Vec<String> {
    let mut items = Vec::new();
    // Kernel-wide sysctls Cilium sets (unprivileged_bpf_disabled=1 cannot be undone until
    // reboot), and the sysctl.d files its sysctlfix init container writes.
    for sysctl in [
        "kernel/unprivileged_bpf_disabled",
        "kernel/timer_migration",
        "net/core/bpf_jit_enable",
    ] {
        let value = std::fs::read_to_string(Path::new("/proc/sys").join(sysctl)).unwrap();
        items.push(format!("sysctl {sysctl}={}", value.trim()));
    }
    for entry in std::fs::read_dir("/etc/sysctl.d").unwrap().flatten() {
        items.push(format!("sysctl.d {}", entry.file_name().to_string_lossy()));
    }
    // bpffs and cgroup2 mounts in PID 1's mount namespace (Cilium's cgroup auto-mount,
    // Calico's mount-bpffs init container).
    let mounts = std::fs::read_to_string("/proc/1/mountinfo").unwrap();
    for line in mounts.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let kind = fields
            .iter()
            .position(|f| *f == "-")
            .and_then(|i| fields.get(i + 1));
        if matches!(kind, Some(&"bpf") | Some(&"cgroup2")) {
            items.push(format!("mount {} {}", kind.unwrap(), fields[4]));
        }
    }
    // BPF programs attached to the root of the host's cgroup2 hierarchy (where Cilium's
    // socket load balancing attaches). Only the root: other labs' pods may come and go below.
    let root = run("bpftool", &["cgroup", "show", "/sys/fs/cgroup/unified"]);
    for line in root.lines().filter(|l| !l.trim().is_empty()) {
        items.push(format!("cgroup-bpf {}", line.trim()));
    }
    // The host's own network namespace: no CNI device, no CNI iptables chain.
    for line in run("ip", &["-o", "link"]).lines() {
        let name = line.split(": ").nth(1).unwrap_or("");
        if ["cilium", "lxc", "cali", "vxlan.calico", "flannel", "tunl"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            items.push(format!("link {name}"));
        }
    }
    for save in ["iptables-nft-save", "iptables-legacy-save"] {
        for line in run(save, &[]).lines() {
            if line.starts_with(':') && (line.contains("CILIUM") || line.contains("cali-")) {
                items.push(format!("{save} {line}"));
            }
        }
    }
    items.sort();
    items
}

fn up_check_down(cni: &str, daemonset_pod_prefix: &str) {
    let _host = HOST
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let before = host_state();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(cni);
    let dir_str = dir.to_str().unwrap();
    let started = std::time::Instant::now();
    let up = lab(&["up", "--dir", dir_str, "--cni", cni]);
    let up_seconds = started.elapsed().as_secs_f64();
    let checks = std::panic::catch_unwind(|| {
        assert!(
            up.status.success(),
            "lab up --cni {cni} failed:\n{}",
            String::from_utf8_lossy(&up.stderr)
        );
        eprintln!("lab up --cni {cni}: {up_seconds:.1} s");
        let status = lab(&["status", "--dir", dir_str, "-o", "json"]);
        let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
        assert_eq!(json["cni"], cni, "{json:#}");
        for target in ["cilium", "calico", "flannel"] {
            let flags = json["plan_flags"][target].as_array().unwrap_or_else(|| {
                panic!("no plan flags for {target}: {json:#}");
            });
            // Every NAME=PATH and plain path the flags name exists.
            for flag in flags.iter().map(|f| f.as_str().unwrap()) {
                let path = flag.split_once('=').map_or(flag, |(_, p)| p);
                if path.starts_with('/') {
                    assert!(Path::new(path).exists(), "{target}: {path} missing");
                }
            }
        }
        assert_eq!(json["plan_flags"]["cilium"][1], "lab.cniswap.local");
        let images: Vec<&str> = json["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_str().unwrap())
            .collect();
        for image in [
            "lab.cniswap.local/cilium/cilium:v1.20.2",
            "lab.cniswap.local/cilium/operator-generic:v1.20.2",
            "lab.cniswap.local/calico/node:v3.28.5",
            "lab.cniswap.local/calico/cni:v3.28.5",
            "lab.cniswap.local/calico/kube-controllers:v3.28.5",
            "lab.cniswap.local/calico/flannel-migration-controller:v3.28.5",
        ] {
            assert!(images.contains(&image), "{image} not imported: {images:?}");
        }

        // The CNI's pods run on every real node, and no Flannel does.
        let kubeconfig = json["kubeconfig"].as_str().unwrap();
        let pods = run(
            cniswap_lab::kubectl().unwrap().to_str().unwrap(),
            &[
                "--kubeconfig",
                kubeconfig,
                "get",
                "pods",
                "-n",
                "kube-system",
                "-o",
                "name",
            ],
        );
        let cni_pods = pods
            .lines()
            .filter(|p| p.starts_with(&format!("pod/{daemonset_pod_prefix}")))
            .count();
        assert!(cni_pods >= 3, "{pods}");
        assert!(!pods.contains("kube-flannel"), "{pods}");

        let check = lab(&["check", "--dir", dir_str]);
        assert!(
            check.status.success(),
            "check on {cni}:\n{}\n{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        let probes = String::from_utf8_lossy(&check.stdout).lines().count();
        assert!(probes >= 9, "{}", String::from_utf8_lossy(&check.stdout));
    });
    let down = lab(&["down", "--dir", dir_str]);
    if let Err(panic) = checks {
        std::panic::resume_unwind(panic);
    }
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert!(!dir.exists(), "down removes the lab's directory");
    assert_eq!(host_state(), before, "the host is as it was");
}

#[test]
fn a_lab_on_calico_checks_green_and_leaves_the_host_alone() {
    up_check_down("calico", "calico-node-");
}

#[test]
fn a_lab_on_cilium_checks_green_and_leaves_the_host_alone() {
    up_check_down("cilium", "cilium-");
}

#[test]
fn kube_proxy_replacement_is_refused_with_the_reason() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("kpr");
    let out = lab(&[
        "up",
        "--dir",
        dir.to_str().unwrap(),
        "--cni",
        "cilium",
        "--kube-proxy",
        "none",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--kube-proxy none is not supported") && err.contains("cgroup2 root"),
        "{err}"
    );
    assert!(!dir.join("lab.json").exists(), "nothing was started");
}
