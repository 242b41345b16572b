//! Migrations on the lab's real nodes, as a user runs them: workloads that must survive (a
//! Deployment spread over the nodes behind a Service with a PodDisruptionBudget, a
//! StatefulSet, a NetworkPolicy-isolated namespace whose allowed client keeps calling it and
//! whose outsider must stay shut out), `cniswap verify --continuous` from before the first step
//! to after the last, `cniswap plan --live` and `cniswap apply --yes`.
//!
//! `rehearsal_on_flannel`: the harness against today's Flannel lab, through the plan's
//! safeguards (gates, snapshot, backups, budgets relaxed) and back by rollback, with 0 probes
//! lost and the allowed client never failing. The migrations themselves (Flannel -> Cilium
//! rolling, Flannel -> Calico with a rollback, ...) are not here yet: they need the lab to
//! start Cilium and Calico (`scripts/lab up --cni`) and a plan whose node switch does not wait
//! for a reboot the lab's nodes cannot do. Needs root, Go and the packages scripts/test.sh
//! installs.

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

use cniswap_lab::{Lab, Options};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const NODES: [&str; 3] = ["lab-control-plane", "lab-worker-1", "lab-worker-2"];
const APPS: &str = "migrate-apps";
const ISOLATED: &str = "migrate-isolated";
const CLIENTS: &str = "migrate-clients";
const OUTSIDERS: &str = "migrate-outsiders";

struct Ctx {
    lab: Lab,
    work: PathBuf,
    image: String,
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn kubectl(ctx: &Ctx, args: &[&str]) -> Output {
    Command::new(cniswap_lab::kubectl().unwrap())
        .args(args)
        .env("KUBECONFIG", &ctx.lab.kubeconfig)
        .output()
        .unwrap()
}

fn kubectl_ok(ctx: &Ctx, args: &[&str]) -> String {
    let out = kubectl(ctx, args);
    assert!(out.status.success(), "kubectl {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn kubectl_apply(ctx: &Ctx, objects: &[Value]) {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
    let mut child = Command::new(cniswap_lab::kubectl().unwrap())
        .args(["apply", "-f", "-"])
        .env("KUBECONFIG", &ctx.lab.kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(list.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "kubectl apply: {}", text(&out));
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

/// A pod running `script` in busybox (the lab's image), on the pod network.
fn busybox(ctx: &Ctx, name: &str, labels: Value, script: &str, port: Option<u16>) -> Value {
    let mut container = json!({
        "name": name,
        "image": ctx.lab.images.busybox,
        "imagePullPolicy": "Never",
        "command": ["sh", "-c", script],
    });
    if let Some(port) = port {
        container["ports"] = json!([{"containerPort": port}]);
        container["readinessProbe"] = json!({"tcpSocket": {"port": port}, "periodSeconds": 1});
    }
    // The lab's control plane is a real node with its NoSchedule taint: workloads spread over
    // every real node, as they must to prove a switch of each.
    json!({
        "metadata": {"labels": labels},
        "spec": {"containers": [container], "terminationGracePeriodSeconds": 1,
                 "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}]},
    })
}

const SERVE: &str = "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www";

/// A loop that calls `url` every half second and logs `ok <unix s>` or `fail <unix s>`.
fn caller(url: &str) -> String {
    format!(
        "while true; do t=$(date +%s); if wget -q -T 1 -O /dev/null {url}; then echo ok $t; else echo fail $t; fi; sleep 0.5; done"
    )
}

/// The workloads every migration must carry.
fn workloads(ctx: &Ctx) {
    let mut objects = vec![];
    for (ns, labels) in [
        (APPS, json!({})),
        (ISOLATED, json!({})),
        (CLIENTS, json!({"role": "client"})),
        (OUTSIDERS, json!({})),
    ] {
        objects.push(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": labels}}));
    }
    let mut web = busybox(ctx, "web", json!({"app": "web"}), SERVE, Some(8080));
    web["spec"]["topologySpreadConstraints"] = json!([{
        "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
        "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}},
    }]);
    objects.extend([
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": APPS},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": web}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": APPS},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}),
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": APPS},
            "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": APPS},
            "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"port": 8080}]}}),
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": APPS},
            "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                     "template": busybox(ctx, "db", json!({"app": "db"}), SERVE, Some(8080))}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "server", "namespace": ISOLATED},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "server"}},
                     "template": busybox(ctx, "server", json!({"app": "server"}), SERVE, Some(8080))}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "server", "namespace": ISOLATED},
            "spec": {"selector": {"app": "server"}, "ports": [{"port": 80, "targetPort": 8080}]}}),
        // Only namespaces labelled role=client may call the server.
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "clients-only", "namespace": ISOLATED},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"role": "client"}}}]}]}}),
    ]);
    let url = format!("http://server.{ISOLATED}.svc.cluster.local/");
    for (ns, name) in [(CLIENTS, "client"), (OUTSIDERS, "outsider")] {
        objects.push(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": busybox(ctx, name, json!({"app": name}), &caller(&url), None)}}));
    }
    kubectl_apply(ctx, &objects);
    for (ns, what) in [
        (APPS, "deployment/web"),
        (APPS, "statefulset/db"),
        (ISOLATED, "deployment/server"),
        (CLIENTS, "deployment/client"),
        (OUTSIDERS, "deployment/outsider"),
    ] {
        kubectl_ok(
            ctx,
            &["-n", ns, "rollout", "status", what, "--timeout=300s"],
        );
    }
    let nodes = kubectl_ok(
        ctx,
        &[
            "-n",
            APPS,
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={.items[*].spec.nodeName}",
        ],
    );
    let mut spread: Vec<&str> = nodes.split_whitespace().collect();
    spread.sort();
    assert_eq!(spread, NODES, "web runs on every real node");
}

/// (ok, fail) calls of a caller since it started, with the times of the failures (Unix s).
fn calls(ctx: &Ctx, ns: &str, name: &str) -> (usize, Vec<i64>) {
    let log = kubectl_ok(ctx, &["-n", ns, "logs", &format!("deployment/{name}")]);
    let mut ok = 0;
    let mut failed = vec![];
    for line in log.lines() {
        match line.split_once(' ') {
            Some(("ok", _)) => ok += 1,
            Some(("fail", t)) => failed.push(t.trim().parse().unwrap_or(0)),
            _ => {}
        }
    }
    (ok, failed)
}

/// `verify --continuous` in the background, once it probes.
fn start_continuous(ctx: &Ctx, dir: &Path) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cniswap"))
        .args(["-v", "verify", "--continuous", "-o", "json"])
        .args(["--image", &ctx.image, "--image-pull-policy", "Never"])
        .args(["--out-dir", dir.to_str().unwrap()])
        .env("KUBECONFIG", &ctx.lab.kubeconfig)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("probing") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(300))
        .expect("verify --continuous started probing");
    child
}

/// Stops it as a person does (Ctrl-C) and reads its report.
fn stop_continuous(child: Child) -> Value {
    let pid = child.id().to_string();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The plan's phases, from plan.yaml.
fn phases(dir: &Path) -> Vec<Value> {
    let plan: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(dir.join("plan.yaml")).unwrap()).unwrap();
    plan["phases"].as_array().unwrap().clone()
}

/// The CI rehearsal: everything a migration runs before it installs the target, under
/// continuous verification, then back by rollback; nothing lost, the allowed client never
/// fails, the workloads as they were.
fn rehearsal(ctx: &Ctx) {
    let verify_dir = ctx.work.join("rehearsal-verify");
    let continuous = start_continuous(ctx, &verify_dir);
    let started = Instant::now();
    let plan = ctx.work.join("rehearsal-plan");
    let out = cniswap(
        ctx,
        &[
            "plan",
            "--to",
            "cilium",
            "--out-dir",
            plan.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let phases = phases(&plan);
    let install = phases
        .iter()
        .position(|p| p["name"].as_str().unwrap_or("").starts_with("Install"))
        .expect("a phase installs the target");
    assert!(install > 0, "safeguards come first");
    let last_safe = phases[install - 1]["steps"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let plan_s = plan.to_str().unwrap();
    let out = cniswap(ctx, &["apply", plan_s, "--yes", "--until", &last_safe]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let phase = install.to_string();
    let out = cniswap(
        ctx,
        &["apply", "rollback", plan_s, "--yes", "--phase", &phase],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Let the probes run a little past the last step.
    std::thread::sleep(Duration::from_secs(3));
    let report = stop_continuous(continuous);
    assert!(started.elapsed() > Duration::from_secs(5));
    assert_eq!(report["summary"]["lost"], 0, "{:#}", report["summary"]);
    assert_eq!(report["summary"]["lost_elsewhere"], 0);
    let (ok, failed) = calls(ctx, CLIENTS, "client");
    assert!(
        ok > 5 && failed.is_empty(),
        "allowed client: {ok} ok, failed at {failed:?}"
    );
    kubectl_ok(
        ctx,
        &[
            "-n",
            APPS,
            "rollout",
            "status",
            "deployment/web",
            "--timeout=60s",
        ],
    );
    let budget = kubectl_ok(
        ctx,
        &[
            "-n",
            APPS,
            "get",
            "pdb",
            "web",
            "-o",
            "jsonpath={.spec.minAvailable}",
        ],
    );
    assert_eq!(budget, "2", "the budget is as it was");
}

async fn lab(root: &Path) -> (Lab, String) {
    let mut options = Options::new(root.join("lab"));
    options.kwok_nodes = 0;
    let lab = Lab::up(options, &mut |m| eprintln!("lab: {m}"))
        .await
        .unwrap();
    let archive = root.join("cniswap-image.tar");
    let image = cniswap_lab::image::cniswap(Path::new(env!("CARGO_BIN_EXE_cniswap")), &archive)
        .unwrap()
        .reference;
    lab.import_image(&archive).unwrap();
    (lab, image)
}

// Not in CI yet: its last check (the allowed client's calls) fails from the first second,
// before anything changes, most likely in the test's own busybox client/server set-up. Run it
// with `cargo test -p cniswap --test migrate_lab -- --ignored` while mending it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "unfinished harness: the allowed client's calls fail before any step runs"]
async fn rehearsal_on_flannel() {
    let root = tempfile::tempdir().unwrap();
    let (lab, image) = lab(root.path()).await;
    let work = root.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let ctx = Ctx { lab, work, image };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        workloads(&ctx);
        rehearsal(&ctx);
    }));
    ctx.lab.down().unwrap();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
