//! cniswap's live commands against a real cluster: the lab's API server (real TLS, RBAC,
//! admission) and its three real nodes running Flannel (VXLAN 4789, the `kube-flannel`
//! DaemonSet), kube-proxy (iptables) and CoreDNS. Needs root, Go and the packages
//! scripts/test.sh installs; the first run builds the pinned components (cached after).
//!
//! One lab serves every check here: bringing one up is the expensive part. Each check runs
//! even when another failed, and the test fails listing all failures.

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

use cniswap_lab::{Lab, Options};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

struct Ctx {
    lab: Lab,
    work: PathBuf,
}

fn cniswap(ctx: &Ctx, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cniswap"))
        .args(args)
        .env("KUBECONFIG", &ctx.lab.kubeconfig)
        .env("NO_COLOR", "1")
        .current_dir(&ctx.work)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn facts(json: &str) -> Value {
    let value: Value = serde_json::from_str(json).unwrap();
    value["facts"].clone()
}

const NODES: [&str; 3] = ["lab-control-plane", "lab-worker-1", "lab-worker-2"];

/// inspect reads the live lab and reports exactly what runs there.
fn inspect_reports_the_lab(ctx: &Ctx) {
    let out = cniswap(ctx, &["inspect", "-o", "json"]);
    let facts = facts(&ok(&out));
    let cnis = facts["cnis"].as_array().unwrap();
    assert_eq!(cnis.len(), 1, "only Flannel runs: {cnis:#?}");
    let flannel = &cnis[0];
    assert_eq!(flannel["kind"], "flannel");
    assert_eq!(flannel["namespace"], "kube-system");
    assert_eq!(flannel["daemonset"], "kube-flannel");
    assert_eq!(flannel["flannel"]["backend"], "vxlan");
    assert_eq!(flannel["flannel"]["port"], 4789);
    assert_eq!(flannel["flannel"]["network"], "10.244.0.0/16");
    assert_eq!(flannel["ready"], 3);
    let mut active: Vec<&str> = flannel["active_nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    active.sort();
    assert_eq!(active, NODES);

    let kube_proxy = &facts["kube_proxy"];
    assert_eq!(kube_proxy["present"], true);
    assert_eq!(kube_proxy["mode"], "iptables");
    assert_eq!(kube_proxy["daemonset"], "kube-system/kube-proxy");
    assert_eq!(kube_proxy["ready"], 3);

    let cidrs = |key: &str| -> Vec<String> {
        facts["cidrs"][key]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["cidr"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(
        cidrs("pod").contains(&"10.244.0.0/16".to_string()),
        "{:?}",
        cidrs("pod")
    );
    assert!(
        cidrs("service").contains(&"10.96.0.0/16".to_string()),
        "{:?}",
        cidrs("service")
    );

    let coredns = &facts["dns"]["coredns"];
    assert_eq!(coredns["deployment"], "kube-system/coredns");
    assert_eq!(coredns["ready"], 2);

    let nodes = facts["nodes"].as_array().unwrap();
    let mut names: Vec<&str> = nodes.iter().map(|n| n["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, NODES);
    for node in nodes {
        let record = ctx.lab.node(node["name"].as_str().unwrap()).unwrap();
        assert_eq!(node["internal_ip"], record.ip.as_str(), "{node}");
        assert_eq!(node["ready"], true, "{node}");
        assert_eq!(node["cni_agents"], serde_json::json!(["flannel"]), "{node}");
        let role = if record.role == "control-plane" {
            "control-plane"
        } else {
            "worker"
        };
        assert!(
            node["roles"].as_array().unwrap().iter().any(|r| r == role) || role == "worker",
            "{node}"
        );
    }
}

/// A snapshot taken live reads back to the same facts.
fn snapshot_round_trips(ctx: &Ctx) {
    let live = facts(&ok(&cniswap(ctx, &["inspect", "-o", "json"])));
    let dir = ctx.work.join("snapshot");
    let out = cniswap(ctx, &["snapshot", "--out-dir", dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let offline = facts(&ok(&cniswap(
        ctx,
        &["inspect", "--snapshot", dir.to_str().unwrap(), "-o", "json"],
    )));
    for key in [
        "platform",
        "kubernetes",
        "nodes",
        "cnis",
        "kube_proxy",
        "cidrs",
        "dns",
    ] {
        let strip = |v: &Value| {
            // Pod counts and readiness may move between the two reads; the rest must not.
            let mut v = v.clone();
            if let Some(nodes) = v.as_array_mut() {
                for n in nodes {
                    if let Some(o) = n.as_object_mut() {
                        o.remove("pods");
                    }
                }
            }
            v
        };
        assert_eq!(
            strip(&live[key]),
            strip(&offline[key]),
            "{key} differs after a round trip"
        );
    }
}

fn lint_and_plan_run_live(ctx: &Ctx) {
    let out = cniswap(ctx, &["lint", "--live", "--to", "cilium"]);
    let code = out.status.code();
    assert!(
        code == Some(0) || code == Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan_dir = ctx.work.join("plan");
    let out = cniswap(
        ctx,
        &[
            "plan",
            "--to",
            "cilium",
            "--force",
            "--out-dir",
            plan_dir.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan = std::fs::read_to_string(plan_dir.join("plan.yaml")).unwrap();
    for node in NODES {
        assert!(plan.contains(node), "the plan names {node}");
    }
    assert!(
        plan.contains("kube-flannel"),
        "the plan knows Flannel's DaemonSet"
    );
}

/// `kubectl cniswap inspect` through kubectl's plugin mechanism.
fn kubectl_plugin_works(ctx: &Ctx) {
    // Installed as it is by scripts/install.sh: a link named kubectl-cniswap to the binary.
    let links = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_cniswap"),
        links.path().join("kubectl-cniswap"),
    )
    .unwrap();
    let bin_dir = links.path();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let kubectl = cniswap_lab::kubectl().unwrap();
    let out = Command::new(kubectl)
        .args(["cniswap", "inspect", "-o", "json"])
        .env("PATH", path)
        .env("KUBECONFIG", &ctx.lab.kubeconfig)
        .output()
        .unwrap();
    let facts = facts(&ok(&out));
    assert_eq!(facts["cnis"][0]["daemonset"], "kube-flannel");
}

/// The node agent inside a real node sees Flannel's real state, with the right owners.
fn node_inventory_sees_flannel(ctx: &Ctx) {
    let binary = env!("CARGO_BIN_EXE_cniswap");
    // Flannel's CNI plugin makes cni0 for a node's first pod: look at a node running CoreDNS.
    let out = Command::new(cniswap_lab::kubectl().unwrap())
        .args([
            "get",
            "pods",
            "-n",
            "kube-system",
            "-l",
            "k8s-app=kube-dns",
            "-o",
            "json",
        ])
        .env("KUBECONFIG", &ctx.lab.kubeconfig)
        .output()
        .unwrap();
    let pods: Value = serde_json::from_slice(&out.stdout).unwrap();
    let node = pods["items"][0]["spec"]["nodeName"]
        .as_str()
        .unwrap()
        .to_string();
    let json = ctx
        .lab
        .on_node(&node, &format!("{binary} node inventory -o json"))
        .or_else(|e| match e {
            // Findings exit 1; the JSON is still on stdout.
            cniswap_lab::LabError::Command { output, .. } => Ok(output),
            other => Err(other),
        })
        .unwrap();
    let start = json.find('{').unwrap();
    let inventory: Value = serde_json::from_str(&json[start..]).unwrap();
    let text = inventory.to_string();
    let owned_by = |needle: &str| owners_of(&inventory, needle);
    for needle in [
        "flannel.1",
        "cni0",
        "FLANNEL-POSTRTG",
        "/run/flannel/subnet.env",
        "/etc/cni/net.d/10-flannel.conflist",
    ] {
        let owners = owned_by(needle);
        assert!(
            !owners.is_empty() && owners.iter().all(|o| o == "flannel"),
            "{needle} owned by {owners:?} in {text}"
        );
    }
    assert!(
        !owned_by("KUBE-SERVICES").is_empty(),
        "kube-proxy's chains are listed"
    );
    assert!(owned_by("KUBE-SERVICES").iter().all(|o| o == "kube-proxy"));
}

/// The owner of every inventory item whose id names `needle`.
fn owners_of(inventory: &Value, needle: &str) -> Vec<String> {
    inventory["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| {
            item["id"]
                .as_str()
                .unwrap()
                .split([' ', '(', ')'])
                .any(|word| word == needle)
        })
        .map(|item| item["owner"].as_str().unwrap().to_string())
        .collect()
}

/// The plan `cniswap plan` writes for the lab runs through `cniswap apply` as far as the lab
/// allows without helm (its first two phases: gates, a live snapshot, backups, a
/// PodDisruptionBudget that allows nothing relaxed before the drains), `apply status` reads
/// the journal, and `apply rollback` puts the budget back as it was.
fn a_live_plan_applies_and_rolls_back(ctx: &Ctx) {
    let kubectl = cniswap_lab::kubectl().unwrap();
    let pdb = serde_json::json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "strict", "namespace": "default"},
        "spec": {"maxUnavailable": 0, "selector": {"matchLabels": {"app": "strict"}}},
    });
    let mut child = Command::new(&kubectl)
        .args(["apply", "-f", "-"])
        .env("KUBECONFIG", &ctx.lab.kubeconfig)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), pdb.to_string().as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    let budget = || -> Value {
        let out = Command::new(&kubectl)
            .args(["get", "pdb", "-n", "default", "strict", "-o", "json"])
            .env("KUBECONFIG", &ctx.lab.kubeconfig)
            .output()
            .unwrap();
        assert!(out.status.success());
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["spec"].clone()
    };
    let before = budget();

    let dir = ctx.work.join("applied");
    let dir_s = dir.to_str().unwrap();
    ok(&cniswap(
        ctx,
        &["plan", "--to", "cilium", "--force", "--out-dir", dir_s],
    ));
    let plan: cniswap_plan::Plan =
        serde_saphyr::from_str(&std::fs::read_to_string(dir.join("plan.yaml")).unwrap()).unwrap();
    let safeguards = &plan.phases[1];
    assert!(
        safeguards.steps.iter().any(|s| matches!(
            &s.action,
            cniswap_plan::Action::PatchObject { object, .. } if object.name == "strict"
        )),
        "phase 2 relaxes the budget: {:#?}",
        safeguards.steps
    );
    let last = &safeguards.steps.last().unwrap().id;

    let dry = cniswap(ctx, &["apply", dir_s, "--dry-run"]);
    assert_eq!(
        dry.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert_eq!(budget(), before, "a dry run changes nothing");

    let run = cniswap(ctx, &["apply", dir_s, "--yes", "--until", last]);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(budget()["maxUnavailable"], 1, "relaxed: {}", budget());
    let status = cniswap(ctx, &["apply", "status", dir_s, "-o", "json"]);
    assert_eq!(status.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&status.stdout).contains(last.as_str()));

    let back = cniswap(ctx, &["apply", "rollback", dir_s, "--phase", "2", "--yes"]);
    assert_eq!(
        back.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&back.stdout),
        String::from_utf8_lossy(&back.stderr)
    );
    assert_eq!(budget(), before, "rolled back");
}

async fn dataplane_carries_traffic(ctx: &Ctx) {
    let cluster = ctx.lab.cluster().await.unwrap();
    let nodes: Vec<String> = NODES.iter().map(|s| s.to_string()).collect();
    let report = cniswap_lab::dataplane::check(&cluster, &nodes, &ctx.lab.images.busybox)
        .await
        .unwrap();
    // From each of 3 nodes: 3 servers, the Service, DNS.
    assert_eq!(report.probes.len(), 15, "{report:?}");
    assert!(report.failures().is_empty(), "{:?}", report.failures());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cniswap_reads_and_plans_a_real_cluster() {
    let root = tempfile::tempdir().unwrap();
    let lab = Lab::up(Options::new(root.path().join("lab")), &mut |m| {
        eprintln!("lab: {m}")
    })
    .await
    .unwrap();
    let work = root.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let ctx = Ctx { lab, work };

    let mut failures = Vec::new();
    type Check = fn(&Ctx);
    let checks: [(&str, Check); 6] = [
        ("inspect reports the lab", inspect_reports_the_lab),
        ("snapshot round trip", snapshot_round_trips),
        ("lint and plan live", lint_and_plan_run_live),
        ("kubectl cniswap", kubectl_plugin_works),
        ("node inventory on a lab node", node_inventory_sees_flannel),
        (
            "a live plan applies and rolls back",
            a_live_plan_applies_and_rolls_back,
        ),
    ];
    for (name, check) in checks {
        if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&ctx))) {
            failures.push(format!("{name}: {}", panic_text(&panic)));
        }
    }
    let dataplane = tokio::spawn(async move {
        dataplane_carries_traffic(&ctx).await;
        ctx
    })
    .await;
    let ctx = match dataplane {
        Ok(ctx) => Some(ctx),
        Err(e) => {
            failures.push(format!("dataplane: {e}"));
            None
        }
    };
    if let Some(ctx) = ctx {
        ctx.lab.down().unwrap();
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}
