//! Every pinned component builds (or comes from the cache) and reports its pinned version.
//!
//! The first run on a machine builds Kubernetes, etcd, CoreDNS, Flannel and kwok from Go modules
//! (tens of minutes on two cores); later runs reuse `$CNISWAP_LAB_CACHE`. Progress goes to stderr.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use cniswap_lab::components::{
    self, COREDNS_VERSION, ETCD_VERSION, FLANNEL_CNI_VERSION, FLANNEL_VERSION, KUBERNETES_VERSION,
    KWOK_VERSION,
};

fn output(path: &Path, args: &[&str]) -> String {
    let out = Command::new(path)
        .args(args)
        .env_remove("CNI_COMMAND")
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", path.display()));
    assert!(
        out.status.success(),
        "{} {args:?} exited with {}",
        path.display(),
        out.status
    );
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn is_static(path: &Path) -> bool {
    let out = Command::new("ldd")
        .arg(path)
        .env("LC_ALL", "C")
        .output()
        .expect("ldd");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    text.contains("not a dynamic executable") || text.contains("statically linked")
}

#[test]
fn every_component_builds_and_reports_its_pinned_version() {
    let cache = components::default_cache();
    let started = Instant::now();
    let built = components::ensure(&cache, &mut |line| eprintln!("[components] {line}"))
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "[components] ensure took {:.0} s (cache {})",
        started.elapsed().as_secs_f64(),
        cache.display()
    );

    let kube = format!("Kubernetes {KUBERNETES_VERSION}");
    for bin in [
        &built.kube_apiserver,
        &built.kube_controller_manager,
        &built.kube_scheduler,
        &built.kubelet,
        &built.kube_proxy,
    ] {
        assert_eq!(
            output(&bin.path, &["--version"]).trim(),
            kube,
            "{}",
            bin.name
        );
        assert_eq!(bin.version, KUBERNETES_VERSION);
        assert_eq!(bin.module, "k8s.io/kubernetes");
    }
    let etcd = output(&built.etcd.path, &["--version"]);
    assert!(
        etcd.lines().next()
            == Some(&format!(
                "etcd Version: {}",
                ETCD_VERSION.trim_start_matches('v')
            )),
        "{etcd}"
    );
    let coredns = output(&built.coredns.path, &["-version"]);
    assert!(
        coredns.starts_with(&format!(
            "CoreDNS-{}",
            COREDNS_VERSION.trim_start_matches('v')
        )),
        "{coredns}"
    );
    assert_eq!(
        output(&built.flanneld.path, &["--version"]).trim(),
        FLANNEL_VERSION
    );
    // A CNI plugin run without CNI_COMMAND prints its "about" line.
    assert_eq!(
        output(&built.flannel_cni.path, &[]).trim(),
        format!("CNI flannel plugin {FLANNEL_CNI_VERSION}")
    );
    let kwok = output(&built.kwok.path, &["--version"]);
    assert!(
        kwok.contains(&format!("kwok version {KWOK_VERSION}")),
        "{kwok}"
    );

    for bin in built.all() {
        assert!(
            bin.path.starts_with(&cache),
            "{} is outside the cache",
            bin.path.display()
        );
        assert!(
            is_static(&bin.path),
            "{} is not statically linked",
            bin.path.display()
        );
    }

    // A second call is a cache hit: no build step runs.
    let mut lines = Vec::new();
    let again =
        components::ensure(&cache, &mut |line| lines.push(line.to_string())).expect("cached");
    assert_eq!(again, built);
    assert!(lines.iter().all(|l| !l.contains("building")), "{lines:?}");
}

#[test]
fn cilium_calico_and_helm_build_with_their_pinned_versions_and_module_files() {
    let cache = components::default_cache();
    let started = Instant::now();
    let built = components::ensure_cni(&cache, &mut |line| eprintln!("[components] {line}"))
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "[components] ensure_cni took {:.0} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        output(&built.cilium_agent.path, &["--version"]).contains("cilium-agent 1.20.2 v1.20.2")
    );
    assert!(output(&built.helm.path, &["version"]).contains("v4.3.2"));
    assert!(output(&built.calico_node.path, &["-v"]).contains("v3.28.5"));
    assert!(output(&built.calico_kube_controllers.path, &["-version"]).contains("v3.28.5"));
    // Cilium's datapath is compiled from these at run time; its chart and Calico's manifests
    // are what a plan installs.
    for file in [
        "install/kubernetes/cilium/Chart.yaml",
        "install/kubernetes/cilium/templates/cilium-agent/daemonset.yaml",
        "bpf/bpf_lxc.c",
        "plugins/cilium-cni/install-plugin.sh",
    ] {
        assert!(built.cilium_module.join(file).is_file(), "{file}");
    }
    let chart = std::fs::read_to_string(
        built
            .cilium_module
            .join("install/kubernetes/cilium/Chart.yaml"),
    )
    .unwrap_or_default();
    assert!(chart.contains("version: 1.20.2"), "{chart}");
    for file in [
        "manifests/calico-vxlan.yaml",
        "manifests/flannel-migration/migration-job.yaml",
    ] {
        assert!(built.calico_module.join(file).is_file(), "{file}");
    }
    // No cgo: nothing to find at run time in an image.
    for bin in [&built.cilium_agent, &built.calico_node, &built.helm] {
        assert!(is_static(&bin.path), "{} is dynamic", bin.path.display());
    }
}
