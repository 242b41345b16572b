//! Migrations on the lab's real nodes, as a user runs them: workloads that must survive (a
//! Deployment spread over the nodes behind a Service with a PodDisruptionBudget, a
//! StatefulSet, a NetworkPolicy-isolated namespace whose allowed client keeps calling it and
//! whose outsider must be shut out once a policy-enforcing CNI runs), `cniswap verify
//! --continuous` from before the plan to after the last step, `cniswap plan --live` with the
//! lab's flags (local chart and manifests, image mirror) and `cniswap apply --yes`.
//!
//! Asserted for every run: no probe lost between nodes not being switched at that moment;
//! each switched node's gaps reported; the allowed client keeps its calls; after a migration
//! only the target runs (inspect), verify is green, lint has no error, and `cniswap node
//! inventory` finds nothing of the old CNI on any real node. Needs root, Go and the packages
//! scripts/test.sh installs.

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

use cniswap_lab::cni::Cni;
use cniswap_lab::{Lab, Options};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const NODES: [&str; 3] = ["lab-control-plane", "lab-worker-1", "lab-worker-2"];
/// The node plans switch first (workers before the control plane).
const FIRST: &str = "lab-worker-1";
const SECOND: &str = "lab-worker-2";
const APPS: &str = "migrate-apps";
const ISOLATED: &str = "migrate-isolated";
const CLIENTS: &str = "migrate-clients";
const OUTSIDERS: &str = "migrate-outsiders";
/// The isolated server's Service address (in the lab's Service range).
const SERVER_IP: &str = "10.96.200.10";

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

/// PATH with the lab's kubectl and helm first: a plan's steps run them.
fn path(ctx: &Ctx) -> String {
    let bin = cniswap_lab::bin_dir(&ctx.lab.dir);
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn cniswap(ctx: &Ctx, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cniswap"))
        .args(args)
        .env("KUBECONFIG", &ctx.lab.kubeconfig)
        .env("PATH", path(ctx))
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

/// A loop that calls `address` (HTTP, port 80) every half second and logs `ok <unix s>` or
/// `fail <unix s>`. With nc: the wget of the lab's busybox (Debian's static build) crashes.
fn caller(address: &str) -> String {
    format!(
        "while true; do t=$(date +%s); if printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 1 {address} 80 | grep -q '200 OK'; then echo ok $t; else echo fail $t; fi; sleep 0.5; done"
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
        // Two replicas with a budget: a drain moves one at a time.
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "server", "namespace": ISOLATED},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "server"}},
                     "template": busybox(ctx, "server", json!({"app": "server"}), SERVE, Some(8080))}}),
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "server", "namespace": ISOLATED},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "server"}}}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "server", "namespace": ISOLATED},
            "spec": {"clusterIP": SERVER_IP, "selector": {"app": "server"}, "ports": [{"port": 80, "targetPort": 8080}]}}),
        // Only namespaces labelled role=client may call the server.
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "clients-only", "namespace": ISOLATED},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"role": "client"}}}]}]}}),
    ]);
    // By address: DNS is verify's to probe.
    let url = SERVER_IP;
    for (ns, name) in [(CLIENTS, "client"), (OUTSIDERS, "outsider")] {
        objects.push(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": busybox(ctx, name, json!({"app": name}), &caller(url), None)}}));
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

/// The arguments `cniswap plan` needs on this lab for `target` (its charts, manifests, image
/// mirror and the node agent image), as `scripts/lab status -o json` gives them.
fn plan_flags(ctx: &Ctx, target: &str) -> Vec<String> {
    let files = ctx
        .lab
        .install_files
        .as_ref()
        .expect("the lab was brought up with every CNI's install files");
    let flags =
        cniswap_lab::cni::plan_flags(files, Some(&ctx.image), Some(&ctx.lab.images.busybox));
    flags[target]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `cniswap plan --live --to TARGET` with the lab's flags, into `dir`.
fn plan(ctx: &Ctx, target: &str, dir: &Path) {
    let mut args = vec!["plan", "--to", target, "--out-dir", dir.to_str().unwrap()];
    let flags = plan_flags(ctx, target);
    args.extend(flags.iter().map(String::as_str));
    let out = cniswap(ctx, &args);
    assert_eq!(out.status.code(), Some(0), "plan: {}", text(&out));
}

/// The id of the step that uncordons `node` in the phase that switches the nodes: the end
/// of that node's switch.
fn uncordon_step(dir: &Path, node: &str) -> String {
    for phase in phases(dir) {
        if phase["name"].as_str() != Some("Switch the nodes")
            && phase["name"].as_str() != Some("Migrate with Calico's controller")
        {
            continue;
        }
        for step in phase["steps"].as_array().unwrap() {
            // plan.yaml flattens the action into the step: `action: uncordon`, `node: N`.
            if step["action"] == "uncordon" && step["node"] == node {
                return step["id"].as_str().unwrap().to_string();
            }
        }
    }
    panic!("no step uncordons {node} in {}", dir.display());
}

/// The id of the step that starts Calico's migration controller (applies its Job).
fn controller_start_step(dir: &Path) -> String {
    for phase in phases(dir) {
        for step in phase["steps"].as_array().unwrap() {
            if step["action"] == "apply-manifest"
                && step["file"]
                    .as_str()
                    .is_some_and(|f| f.ends_with("rendered-job.yaml"))
            {
                return step["id"].as_str().unwrap().to_string();
            }
        }
    }
    panic!(
        "no step starts Calico's migration controller in {}",
        dir.display()
    );
}

/// Waits (up to 10 min) until some node carries `label` (`key=value`).
fn await_a_node_labelled(ctx: &Ctx, label: &str) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let out = kubectl_ok(ctx, &["get", "nodes", "-l", label, "-o", "name"]);
        if !out.trim().is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "no node got {label}");
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// What a finished migration must leave: the target alone, green verification, no old state
/// on any real node, no error finding.
fn only_target(ctx: &Ctx, target: &str, old: &str) {
    let out = cniswap(
        ctx,
        &[
            "verify",
            "--image",
            &ctx.image,
            "--image-pull-policy",
            "Never",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "verify after: {}", text(&out));
    let out = cniswap(ctx, &["inspect", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "inspect: {}", text(&out));
    let facts: Value = serde_json::from_slice(&out.stdout).unwrap();
    let running: Vec<String> = facts["facts"]["cnis"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["running"] == true)
        .map(|c| c["kind"].as_str().unwrap_or("?").to_string())
        .collect();
    assert_eq!(running, [target], "inspect: only the target runs");
    let out = cniswap(ctx, &["lint", "--live", "--severity", "error"]);
    assert_eq!(out.status.code(), Some(0), "lint --live: {}", text(&out));
    for node in NODES {
        let inventory = ctx
            .lab
            .on_node(
                node,
                &format!("{} node inventory -o json", env!("CARGO_BIN_EXE_cniswap")),
            )
            .unwrap();
        let inventory: Value = serde_json::from_str(&inventory).unwrap();
        let leftovers: Vec<&Value> = ["items", "agents"]
            .iter()
            .flat_map(|k| inventory[k].as_array().into_iter().flatten())
            .filter(|item| item["owner"] == old)
            .collect();
        assert!(
            leftovers.is_empty(),
            "{node} keeps {old} state: {leftovers:#?}"
        );
    }
}

/// Per switched node, its switch window and longest gap per path kind, for the record.
fn figures(label: &str, report: &Value, seconds: u64) {
    eprintln!(
        "{label}: {seconds} s, lost off the switching nodes {}, probes {}",
        report["summary"]["lost_elsewhere"], report["summary"]["probes"]
    );
    for node in report["switched"].as_array().unwrap() {
        let kinds: Vec<String> = node["kinds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                format!(
                    "{} {:.1} s",
                    k["kind"].as_str().unwrap_or("?"),
                    k["longest_gap_s"].as_f64().unwrap_or(0.0)
                )
            })
            .collect();
        eprintln!(
            "  {} switching {:.0} s, longest gaps: {}",
            node["node"].as_str().unwrap_or("?"),
            node["switching_s"].as_f64().unwrap_or(0.0),
            kinds.join(", ")
        );
    }
}

/// The allowed client's failures since `since` (Unix s), as runs of consecutive seconds.
fn client_outage(ctx: &Ctx, since: i64) -> (usize, Vec<i64>) {
    let (ok, failed) = calls(ctx, CLIENTS, "client");
    (ok, failed.into_iter().filter(|t| *t >= since).collect())
}

/// How a migration run goes.
#[derive(Clone, Copy, PartialEq)]
enum Run<'a> {
    /// apply --yes to the end.
    ToTheEnd,
    /// apply is killed (SIGKILL) a few seconds into this node's switch, then run again
    /// (taking over the dead process' lock) to the end.
    KilledDuring(&'a str),
    /// apply stops once this node is switched, then `apply rollback` undoes everything.
    RolledBackAfter(&'a str),
    /// apply stops after starting Calico's migration controller; once the controller has
    /// switched a first node, `apply rollback` undoes everything.
    RolledBackMidController,
}

/// Whether `node` carries apply's in-progress marker.
fn switching(ctx: &Ctx, node: &str) -> bool {
    let out = kubectl(
        ctx,
        &[
            "get",
            "node",
            node,
            "-o",
            "jsonpath={.metadata.annotations.cniswap\\.io/apply-in-progress}",
        ],
    );
    out.status.success() && !out.stdout.is_empty()
}

/// apply --yes, killed with SIGKILL 5 s after `node`'s switch began.
fn apply_killed_during(ctx: &Ctx, dir: &str, node: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cniswap"))
        .args(["apply", dir, "--yes"])
        .env("KUBECONFIG", &ctx.lab.kubeconfig)
        .env("PATH", path(ctx))
        .env("NO_COLOR", "1")
        .current_dir(&ctx.work)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(1800);
    while !switching(ctx, node) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "apply ended before {node} was switched"
        );
        assert!(Instant::now() < deadline, "{node} never began its switch");
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(5));
    child.kill().unwrap();
    child.wait().unwrap();
}

/// One migration, watched: verify --continuous from before the plan to after the last step.
/// Returns verify's report.
fn migrate(ctx: &Ctx, from: &str, target: &str, run: Run<'_>) -> Value {
    let name = match run {
        Run::ToTheEnd => String::new(),
        Run::KilledDuring(node) => format!(" (apply killed during {node})"),
        Run::RolledBackAfter(node) => format!(" (rolled back after {node})"),
        Run::RolledBackMidController => " (rolled back after the controller's first node)".into(),
    };
    let label = format!("{from} -> {target}{name}");
    let dir = ctx.work.join(format!(
        "{from}-{target}-{}",
        std::fs::read_dir(&ctx.work).unwrap().count()
    ));
    let continuous = start_continuous(ctx, &dir.join("verify"));
    let since = unix_now();
    let started = Instant::now();
    let plan_dir = dir.join("plan");
    plan(ctx, target, &plan_dir);
    let plan_s = plan_dir.to_str().unwrap();
    match run {
        Run::ToTheEnd => {
            let out = cniswap(ctx, &["apply", plan_s, "--yes"]);
            assert_eq!(out.status.code(), Some(0), "{label}: apply: {}", text(&out));
        }
        Run::KilledDuring(node) => {
            apply_killed_during(ctx, plan_s, node);
            let out = cniswap(ctx, &["apply", plan_s, "--yes", "--force-unlock"]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{label}: apply again: {}",
                text(&out)
            );
        }
        Run::RolledBackMidController => {
            let until = controller_start_step(&plan_dir);
            let out = cniswap(ctx, &["apply", plan_s, "--yes", "--until", &until]);
            assert_eq!(out.status.code(), Some(0), "{label}: apply: {}", text(&out));
            await_a_node_labelled(
                ctx,
                "projectcalico.org/node-network-during-migration=calico",
            );
            let out = cniswap(ctx, &["apply", "rollback", plan_s, "--yes"]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{label}: rollback: {}",
                text(&out)
            );
        }
        Run::RolledBackAfter(node) => {
            let until = uncordon_step(&plan_dir, node);
            let out = cniswap(ctx, &["apply", plan_s, "--yes", "--until", &until]);
            assert_eq!(out.status.code(), Some(0), "{label}: apply: {}", text(&out));
            let out = cniswap(ctx, &["apply", "rollback", plan_s, "--yes"]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{label}: rollback: {}",
                text(&out)
            );
        }
    }
    // Let the probes run a little past the last step.
    std::thread::sleep(Duration::from_secs(3));
    let report = stop_continuous(continuous);
    std::fs::write(dir.join("verify.json"), report.to_string()).unwrap();
    figures(&label, &report, started.elapsed().as_secs());
    assert_eq!(
        report["summary"]["lost_elsewhere"], 0,
        "{label}: probes lost between nodes not being switched: {:#}",
        report["summary"]["gaps_elsewhere"]
    );
    assert!(
        !report["switched"].as_array().unwrap().is_empty(),
        "{label}: verify saw no node switching"
    );
    let (ok, failed) = client_outage(ctx, since);
    assert!(ok > 5, "{label}: the allowed client made {ok} calls");
    // The isolated server has two replicas with a budget: a drain moves one at a time, and the
    // Service keeps one ready; a failed call is only a moment of endpoint updates.
    assert!(
        failed.len() <= 4,
        "{label}: the allowed client failed at {failed:?}"
    );
    report
}

async fn lab(root: &Path, cni: Cni) -> (Lab, String) {
    let mut options = Options::new(root.join("lab"));
    options.kwok_nodes = 0;
    options.cni = cni;
    options.every_cni = true;
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

/// A lab on `cni` with the workloads; `body` runs against it, and the lab goes down whatever
/// happens.
async fn on_lab(cni: Cni, body: impl FnOnce(&Ctx)) {
    // One lab at a time: two on two cores would make the measured gaps the machine's.
    static ONE_LAB: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one = ONE_LAB.lock().await;
    let root = tempfile::tempdir().unwrap();
    let (lab, image) = lab(root.path(), cni).await;
    let work = root.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let ctx = Ctx { lab, work, image };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        workloads(&ctx);
        body(&ctx);
    }));
    // CNISWAP_KEEP=DIR keeps plans, journals and verify reports for a person to read.
    if let Some(keep) = std::env::var_os("CNISWAP_KEEP") {
        let _ = Command::new("cp")
            .arg("-a")
            .arg(&ctx.work)
            .arg(&keep)
            .status();
    }
    ctx.lab.down().unwrap();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// The outsider's calls in the last `seconds` all failed: the policy is enforced.
fn outsider_shut_out(ctx: &Ctx, seconds: u64) {
    let since = unix_now();
    std::thread::sleep(Duration::from_secs(seconds));
    let log = kubectl_ok(ctx, &["-n", OUTSIDERS, "logs", "deployment/outsider"]);
    let recent: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.split_once(' ')
                .and_then(|(_, t)| t.trim().parse::<i64>().ok())
                .is_some_and(|t| t >= since)
        })
        .collect();
    assert!(
        !recent.is_empty() && recent.iter().all(|l| l.starts_with("fail")),
        "the outsider still reaches the isolated server: {recent:?}"
    );
}

/// Flannel -> Cilium, rolling, to the end, with apply killed (SIGKILL) in the middle of the
/// second node's switch and run again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "runs to its end with apply killed and resumed, but 12 probes were lost between nodes not being switched, 11 while Cilium's agents started on every node (issue 16)"]
async fn flannel_to_cilium_rolling() {
    on_lab(Cni::Flannel, |ctx| {
        let report = migrate(ctx, "flannel", "cilium", Run::KilledDuring(SECOND));
        assert_eq!(report["switched"].as_array().unwrap().len(), NODES.len());
        only_target(ctx, "cilium", "flannel");
        outsider_shut_out(ctx, 5);
    })
    .await;
}

/// Flannel -> Cilium, rolled back after the first node switched: back to Flannel alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "rolls back to Flannel with every check passing, but 63-115 probes were lost between nodes not being switched, nearly all while Cilium's agents started on every node (issue 16)"]
async fn flannel_to_cilium_rolled_back() {
    on_lab(Cni::Flannel, |ctx| {
        migrate(ctx, "flannel", "cilium", Run::RolledBackAfter(FIRST));
        only_target(ctx, "flannel", "cilium");
    })
    .await;
}

/// Flannel -> Calico with Calico's own migration controller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "runs to its end on the lab; its last two runs lost 0 and 1 probe (one API request over 900 ms) between nodes not being switched: not yet reliably 0 (issue 16)"]
async fn flannel_to_calico() {
    on_lab(Cni::Flannel, |ctx| {
        migrate(ctx, "flannel", "calico", Run::ToTheEnd);
        only_target(ctx, "calico", "flannel");
        outsider_shut_out(ctx, 5);
    })
    .await;
}

/// Calico (manifest install) -> Cilium, rolling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "not yet run on the lab (issue 16)"]
async fn calico_to_cilium_rolling() {
    on_lab(Cni::Calico, |ctx| {
        migrate(ctx, "calico", "cilium", Run::ToTheEnd);
        only_target(ctx, "cilium", "calico");
        outsider_shut_out(ctx, 5);
    })
    .await;
}

/// Calico -> Flannel, rolling (Flannel enforces no policy: the outsider gets in afterwards,
/// which the plan states as a risk).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "not yet run on the lab (issue 16)"]
async fn calico_to_flannel() {
    on_lab(Cni::Calico, |ctx| {
        migrate(ctx, "calico", "flannel", Run::ToTheEnd);
        only_target(ctx, "flannel", "calico");
    })
    .await;
}

/// Cilium -> Flannel, rolling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "not yet run on the lab (issue 16)"]
async fn cilium_to_flannel() {
    on_lab(Cni::Cilium, |ctx| {
        migrate(ctx, "cilium", "flannel", Run::ToTheEnd);
        only_target(ctx, "flannel", "cilium");
    })
    .await;
}

/// Cilium -> Calico.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "not yet run on the lab (issue 16)"]
async fn cilium_to_calico() {
    on_lab(Cni::Cilium, |ctx| {
        migrate(ctx, "cilium", "calico", Run::ToTheEnd);
        only_target(ctx, "calico", "cilium");
        outsider_shut_out(ctx, 5);
    })
    .await;
}

/// Flannel -> Calico, rolled back once Calico's controller has switched its first node: back
/// to Flannel alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "its last runs stop at the clean of lab-control-plane: the node agent sees a calico-node process there with no calico-node pod left (issue 16)"]
async fn flannel_to_calico_rolled_back() {
    on_lab(Cni::Flannel, |ctx| {
        migrate(ctx, "flannel", "calico", Run::RolledBackMidController);
        only_target(ctx, "flannel", "calico");
    })
    .await;
}
