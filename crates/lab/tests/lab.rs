//! The lab itself: `scripts/lab up` brings three real nodes to Ready with Flannel, kube-proxy
//! and CoreDNS, `status -o json` describes them, and `down` leaves nothing behind. A second
//! lab with kwok nodes runs at the same time, on its own bridge, ports and directory.
//! Needs root, Go and the packages scripts/test.sh installs.

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

use std::path::Path;
use std::process::Command;

fn lab_binary() -> &'static str {
    env!("CARGO_BIN_EXE_cniswap-lab")
}

fn lab(args: &[&str]) -> std::process::Output {
    Command::new(lab_binary()).args(args).output().unwrap()
}

/// Tests that compare the host before and after hold this, so one test's lab is never
/// counted as another's leftover.
static HOST_FOOTPRINT: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn footprint_lock() -> std::sync::MutexGuard<'static, ()> {
    HOST_FOOTPRINT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Everything on the host that a lab could leave behind, for a before/after comparison.
fn host_footprint() -> Vec<String> {
    let mut items = Vec::new();
    let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    for line in String::from_utf8_lossy(&links.stdout).lines() {
        if let Some(name) = line.split(": ").nth(1)
            && (name.starts_with("cnilab") || name.starts_with("cl"))
        {
            items.push(format!("link {}", name.split('@').next().unwrap()));
        }
    }
    if let Ok(entries) = std::fs::read_dir("/run/netns") {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("cnilab") {
                items.push(format!("netns {name}"));
            }
        }
    }
    items.sort();
    items
}

fn processes_under(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&needle) {
            found.push(cmdline);
        }
    }
    found
}

#[test]
fn up_status_down_leaves_nothing_behind() {
    let _host = footprint_lock();
    let before = host_footprint();
    let root = tempfile::tempdir().unwrap();
    let real = root.path().join("real");
    let kwok = root.path().join("kwok");
    let real_str = real.to_str().unwrap();
    let kwok_str = kwok.to_str().unwrap();

    // Two labs at once: three real nodes, and five simulated ones with pods.
    let kwok_lab = std::thread::spawn({
        let kwok_str = kwok_str.to_string();
        move || {
            lab(&[
                "up",
                "--dir",
                &kwok_str,
                "--real-nodes",
                "0",
                "--kwok-nodes",
                "5",
                "--kwok-pods-per-node",
                "4",
                "--only-cni",
            ])
        }
    });
    let out = lab(&["up", "--dir", real_str, "--real-nodes", "3", "--only-cni"]);
    let kwok_out = kwok_lab.join().unwrap();
    let cleanup = || {
        let _ = lab(&["down", "--dir", real_str]);
        let _ = lab(&["down", "--dir", kwok_str]);
    };
    if !out.status.success() || !kwok_out.status.success() {
        cleanup();
        panic!(
            "lab up failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&kwok_out.stderr)
        );
    }
    let kubeconfig = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(Path::new(&kubeconfig).is_file(), "{kubeconfig}");

    let status = lab(&["status", "--dir", real_str, "-o", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let nodes = json["nodes"].as_array().unwrap();
    let roles: Vec<&str> = nodes.iter().map(|n| n["role"].as_str().unwrap()).collect();
    let checks = std::panic::catch_unwind(|| {
        assert_eq!(roles, ["control-plane", "worker", "worker"], "{json:#}");
        assert_eq!(json["cni"], "flannel", "{json:#}");
        assert_eq!(
            json["plan_flags"],
            serde_json::json!({}),
            "--only-cni: no other CNI to plan for"
        );
        for node in nodes {
            for key in ["name", "netns", "ip", "uplink"] {
                assert!(!node[key].as_str().unwrap().is_empty(), "{key}: {node}");
            }
        }
        let components = json["components"].as_array().unwrap();
        for name in [
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kubelet@lab-control-plane",
            "containerd@lab-worker-2",
        ] {
            let component = components
                .iter()
                .find(|c| c["name"] == name)
                .unwrap_or_else(|| panic!("{name} missing: {json:#}"));
            assert_eq!(component["health"], "running", "{component}");
            assert!(component["pid"].as_u64().unwrap() > 1);
        }
        let images: Vec<&str> = json["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_str().unwrap())
            .collect();
        for image in ["pause", "busybox", "flannel", "kube-proxy", "coredns"] {
            assert!(
                images.iter().any(|i| i.contains(image)),
                "{image} not imported: {images:?}"
            );
        }

        // The two labs do not share a bridge, API server or directory.
        let kwok_status = lab(&["status", "--dir", kwok_str, "-o", "json"]);
        let kwok_json: serde_json::Value = serde_json::from_slice(&kwok_status.stdout).unwrap();
        assert_ne!(json["bridge"], kwok_json["bridge"]);
        assert_ne!(json["api_server"], kwok_json["api_server"]);
        assert!(kwok_json["nodes"].as_array().unwrap().is_empty());
        assert!(
            kwok_json["components"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["name"] == "kwok" && c["health"] == "running"),
            "{kwok_json:#}"
        );
    });

    let down = lab(&["down", "--dir", real_str]);
    let kwok_down = lab(&["down", "--dir", kwok_str]);
    if let Err(panic) = checks {
        std::panic::resume_unwind(panic);
    }
    assert!(
        down.status.success() && kwok_down.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&down.stderr),
        String::from_utf8_lossy(&kwok_down.stderr)
    );
    assert!(
        !real.exists() && !kwok.exists(),
        "down removes the lab's directory"
    );
    assert_eq!(
        host_footprint(),
        before,
        "no link or netns of the labs is left"
    );
    assert!(
        processes_under(root.path()).is_empty(),
        "{:?}",
        processes_under(root.path())
    );
}

#[test]
fn a_directory_holding_a_lab_is_refused() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("lab.json"), "{}").unwrap();
    let out = lab(&[
        "up",
        "--dir",
        root.path().to_str().unwrap(),
        "--real-nodes",
        "0",
        "--only-cni",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already holds a lab"), "{stderr}");
}

#[test]
fn a_component_that_cannot_start_is_named_with_its_log() {
    let _host = footprint_lock();
    // etcd cannot create its data directory where a file is in the way.
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("lab");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("etcd"), "not a directory").unwrap();
    let before = host_footprint();
    let out = lab(&[
        "up",
        "--dir",
        dir.to_str().unwrap(),
        "--real-nodes",
        "0",
        "--only-cni",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("etcd did not start"), "{stderr}");
    assert!(stderr.contains("last lines of"), "shows the log: {stderr}");
    assert_eq!(
        host_footprint(),
        before,
        "a failed start removes what it made"
    );
    assert!(processes_under(root.path()).is_empty());
}
