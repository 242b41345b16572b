//! `cniswap verify` on the lab's real nodes (three netns nodes with containerd, kubelet,
//! kube-proxy in iptables mode, Flannel VXLAN as the kube-flannel DaemonSet, CoreDNS): a healthy
//! run, then one injected fault at a time, each of which must fail exactly the checks it breaks;
//! then --continuous with a 3 s uplink outage and a drain of another node. Needs root, Go and
//! the packages scripts/test.sh installs; the first run builds the pinned components.
//!
//! One lab serves every check (bringing one up is the expensive part). Each check runs even when
//! another failed, and the test fails listing all failures.

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

use cniswap_lab::{Lab, Options};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const CP: &str = "lab-control-plane";
const W1: &str = "lab-worker-1";
const W2: &str = "lab-worker-2";
const NODES: [&str; 3] = [CP, W1, W2];

struct Ctx {
    lab: Lab,
    work: PathBuf,
    image: String,
}

fn kubectl(ctx: &Ctx, args: &[&str]) -> String {
    let out = Command::new(cniswap_lab::kubectl().unwrap())
        .args(args)
        .env("KUBECONFIG", &ctx.lab.kubeconfig)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn verify(ctx: &Ctx, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cniswap"))
        .arg("verify")
        .args(["--image", &ctx.image, "--image-pull-policy", "Never"])
        .args(args)
        .env("KUBECONFIG", &ctx.lab.kubeconfig)
        .env("NO_COLOR", "1")
        .current_dir(&ctx.work)
        .output()
        .unwrap()
}

/// A one-shot run with `--keep` (the agents stay for the next run): the JSON report.
fn run_json(ctx: &Ctx, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["-o", "json", "--keep"];
    args.extend_from_slice(extra);
    let out = verify(ctx, &args);
    let code = out.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 1,
        "exit {code}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (code, serde_json::from_slice(&out.stdout).unwrap())
}

/// (kind, from, to-or-"") of every failed check.
fn failed(report: &Value) -> BTreeSet<(String, String, String)> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| {
            (
                c["kind"].as_str().unwrap().to_string(),
                c["from_node"].as_str().unwrap().to_string(),
                c["to_node"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Every check of the report matching `pred`.
fn matching(
    report: &Value,
    pred: impl Fn(&str, &str, &str) -> bool,
) -> BTreeSet<(String, String, String)> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap().to_string(),
                c["from_node"].as_str().unwrap().to_string(),
                c["to_node"].as_str().unwrap_or("").to_string(),
            )
        })
        .filter(|(k, f, t)| pred(k, f, t))
        .collect()
}

fn show(s: &BTreeSet<(String, String, String)>) -> String {
    s.iter()
        .map(|(k, f, t)| format!("{k} {f}->{t}"))
        .collect::<Vec<_>>()
        .join("\n  ")
}

fn assert_failed(report: &Value, expected: &BTreeSet<(String, String, String)>) {
    let got = failed(report);
    let extra: BTreeSet<_> = got.difference(expected).cloned().collect();
    let missing: BTreeSet<_> = expected.difference(&got).cloned().collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "failed but should pass:\n  {}\npassed but should fail:\n  {}\nerrors: {}",
        show(&extra),
        show(&missing),
        serde_json::to_string_pretty(
            &report["checks"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["ok"] == false)
                .collect::<Vec<_>>()
        )
        .unwrap()
    );
}

fn wait_nodes_ready(ctx: &Ctx) {
    kubectl(
        ctx,
        &[
            "wait",
            "--for=condition=Ready",
            "node",
            "--all",
            "--timeout=180s",
        ],
    );
}

fn on_node(ctx: &Ctx, node: &str, script: &str) {
    ctx.lab.on_node(node, script).unwrap();
}

/// CoreDNS on the control-plane node only, so faults on a worker have one DNS answer.
fn pin_coredns(ctx: &Ctx) {
    kubectl(
        ctx,
        &[
            "-n",
            "kube-system",
            "patch",
            "deployment",
            "coredns",
            "--type",
            "merge",
            "-p",
            &format!(
                r#"{{"spec":{{"replicas":1,"template":{{"spec":{{"nodeSelector":{{"kubernetes.io/hostname":"{CP}"}},"tolerations":[{{"operator":"Exists"}}]}}}}}}}}"#
            ),
        ],
    );
    kubectl(
        ctx,
        &[
            "-n",
            "kube-system",
            "rollout",
            "status",
            "deployment/coredns",
            "--timeout=120s",
        ],
    );
}

const PAIR_KINDS: [&str; 5] = [
    "pod-to-pod",
    "pod-to-pod-udp",
    "path-mtu",
    "host-to-pod",
    "pod-to-host",
];

fn healthy_lab_passes_every_check(ctx: &Ctx) {
    let junit = ctx.work.join("verify.xml");
    let (code, report) = run_json(ctx, &["--junit", junit.to_str().unwrap()]);
    assert_eq!(failed(&report), BTreeSet::new(), "{report:#}");
    assert_eq!(code, 0);
    for kind in PAIR_KINDS {
        let pairs = matching(&report, |k, _, _| k == kind);
        assert_eq!(pairs.len(), 9, "{kind}: {}", show(&pairs));
    }
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(
        xml.matches("<testcase ").count(),
        report["checks"].as_array().unwrap().len()
    );
    for from in NODES {
        for to in NODES {
            assert!(
                xml.contains(&format!("name=\"{from} -&gt; {to} (")),
                "{from} -> {to} in JUnit"
            );
        }
    }
    // The text matrix names every node.
    let text = String::from_utf8_lossy(&verify(ctx, &["--keep"]).stdout).into_owned();
    assert!(text.starts_with("all checks passed"), "{text}");
    for node in NODES {
        assert!(text.contains(node), "{text}");
    }
}

fn vxlan_dropped_on_one_node(ctx: &Ctx) {
    let rules = "iptables -w -I INPUT -p udp --dport 4789 -j DROP; iptables -w -I OUTPUT -p udp --dport 4789 -j DROP";
    on_node(ctx, W1, rules);
    let (code, report) = run_json(ctx, &[]);
    on_node(ctx, W1, &rules.replace("-I", "-D"));
    // Overlay paths to and from W1 break; node-IP paths (pod to host) do not; W1's DNS answer
    // (CoreDNS on the control plane) crosses the overlay.
    let expected = matching(&report, |k, f, t| {
        let cross = !t.is_empty() && f != t && (f == W1 || t == W1);
        (cross
            && matches!(
                k,
                "pod-to-pod" | "pod-to-pod-udp" | "path-mtu" | "host-to-pod"
            ))
            || (f == W1 && k.starts_with("dns-"))
    });
    assert_failed(&report, &expected);
    assert_eq!(code, 1);
}

fn uplink_down_on_one_node(ctx: &Ctx) {
    let uplink = ctx.lab.node(W1).unwrap().uplink.clone();
    let status = Command::new("ip")
        .args(["link", "set", &uplink, "down"])
        .status()
        .unwrap();
    assert!(status.success());
    let (code, report) = verify_then(ctx, || {
        Command::new("ip")
            .args(["link", "set", &uplink, "up"])
            .status()
            .unwrap();
    });
    // Everything from or to W1 fails (its own results cannot even be collected).
    let expected = matching(&report, |_, f, t| f == W1 || t == W1);
    assert_failed(&report, &expected);
    let not_collected = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["from_node"] == W1 && c["to_node"] == W1)
        .all(|c| c["error"].as_str().unwrap_or("").contains("not collected"));
    assert!(not_collected, "{report:#}");
    assert_eq!(code, 1);
    wait_nodes_ready(ctx);
}

fn verify_then(ctx: &Ctx, after: impl FnOnce()) -> (i32, Value) {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_json(ctx, &["--timeout", "2s"])
    }));
    after();
    match result {
        Ok(r) => r,
        Err(p) => std::panic::resume_unwind(p),
    }
}

fn coredns_at_zero(ctx: &Ctx) {
    kubectl(
        ctx,
        &[
            "-n",
            "kube-system",
            "scale",
            "deployment/coredns",
            "--replicas=0",
        ],
    );
    kubectl(
        ctx,
        &[
            "-n",
            "kube-system",
            "wait",
            "--for=delete",
            "pod",
            "-l",
            "k8s-app=kube-dns",
            "--timeout=60s",
        ],
    );
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_json(ctx, &[])));
    kubectl(
        ctx,
        &[
            "-n",
            "kube-system",
            "scale",
            "deployment/coredns",
            "--replicas=1",
        ],
    );
    kubectl(
        ctx,
        &[
            "-n",
            "kube-system",
            "rollout",
            "status",
            "deployment/coredns",
            "--timeout=120s",
        ],
    );
    let (code, report) = result.unwrap_or_else(|p| std::panic::resume_unwind(p));
    let expected = matching(&report, |k, _, _| k.starts_with("dns-"));
    assert_eq!(expected.len(), 9);
    assert_failed(&report, &expected);
    assert_eq!(code, 1);
}

fn kube_proxy_rules_removed_on_one_node(ctx: &Ctx) {
    // Keep kube-proxy off W1 so it cannot restore its rules, then remove them.
    kubectl(
        ctx,
        &[
            "-n",
            "kube-system",
            "patch",
            "daemonset",
            "kube-proxy",
            "--type",
            "merge",
            "-p",
            &format!(
                r#"{{"spec":{{"template":{{"spec":{{"affinity":{{"nodeAffinity":{{"requiredDuringSchedulingIgnoredDuringExecution":{{"nodeSelectorTerms":[{{"matchExpressions":[{{"key":"kubernetes.io/hostname","operator":"NotIn","values":["{W1}"]}}]}}]}}}}}}}}}}}}}}"#
            ),
        ],
    );
    kubectl(
        ctx,
        &[
            "-n",
            "kube-system",
            "rollout",
            "status",
            "daemonset/kube-proxy",
            "--timeout=120s",
        ],
    );
    on_node(
        ctx,
        W1,
        "for ipt in iptables-legacy iptables-nft; do $ipt -w -t nat -F KUBE-SERVICES 2>/dev/null || true; done",
    );
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_json(ctx, &[])));
    kubectl(
        ctx,
        &[
            "-n",
            "kube-system",
            "patch",
            "daemonset",
            "kube-proxy",
            "--type",
            "json",
            "-p",
            r#"[{"op":"remove","path":"/spec/template/spec/affinity"}]"#,
        ],
    );
    kubectl(
        ctx,
        &[
            "-n",
            "kube-system",
            "rollout",
            "status",
            "daemonset/kube-proxy",
            "--timeout=120s",
        ],
    );
    std::thread::sleep(Duration::from_secs(5));
    let (code, report) = result.unwrap_or_else(|p| std::panic::resume_unwind(p));
    let expected = matching(&report, |k, f, _| {
        f == W1 && (matches!(k, "pod-to-service" | "api-service") || k.starts_with("dns-"))
    });
    assert_eq!(expected.len(), 5);
    assert_failed(&report, &expected);
    assert_eq!(code, 1);
}

fn small_mtu_on_one_path(ctx: &Ctx) {
    // The node's end of its uplink is eth0 (the lab's network.rs).
    on_node(ctx, W1, "ip link set eth0 mtu 1400");
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_json(ctx, &[])));
    on_node(ctx, W1, "ip link set eth0 mtu 1500");
    let (code, report) = result.unwrap_or_else(|p| std::panic::resume_unwind(p));
    // Full-size overlay packets into W1 are dropped; small probes pass.
    let expected = matching(&report, |k, f, t| {
        k == "path-mtu" && f != t && (f == W1 || t == W1)
    });
    assert_eq!(expected.len(), 4);
    assert_failed(&report, &expected);
    assert_eq!(code, 1);
}

/// Starts `verify --continuous` and returns once it probes.
fn start_continuous(ctx: &Ctx, dir: &std::path::Path, extra: &[&str]) -> std::process::Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cniswap"))
        .args(["-v", "verify", "--continuous", "--keep", "-o", "json"])
        .args(["--image", &ctx.image, "--image-pull-policy", "Never"])
        .args(["--out-dir", dir.to_str().unwrap()])
        .args(extra)
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
    rx.recv_timeout(Duration::from_secs(180))
        .expect("verify --continuous started probing");
    child
}

fn finish_continuous(child: std::process::Child) -> Value {
    let out = child.wait_with_output().unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{:?}", out.status);
    serde_json::from_slice(&out.stdout).unwrap()
}

fn continuous_measures_an_uplink_outage_on_the_paths_through_it(ctx: &Ctx) {
    let dir = ctx.work.join("continuous");
    let child = start_continuous(ctx, &dir, &["--duration", "20s", "--switching", W1]);
    std::thread::sleep(Duration::from_secs(5));
    let uplink = ctx.lab.node(W1).unwrap().uplink.clone();
    let down = Instant::now();
    Command::new("ip")
        .args(["link", "set", &uplink, "down"])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3).saturating_sub(down.elapsed()));
    Command::new("ip")
        .args(["link", "set", &uplink, "up"])
        .status()
        .unwrap();
    let truth = down.elapsed().as_secs_f64();
    let report = finish_continuous(child);
    let mut problems = vec![];
    for p in report["paths"].as_array().unwrap() {
        let (kind, from, to) = (
            p["kind"].as_str().unwrap(),
            p["from_node"].as_str().unwrap(),
            p["to_node"].as_str().unwrap_or(""),
        );
        let through_w1 = (from == W1 || to == W1) && from != to && !to.is_empty()
            || (from == W1 && matches!(kind, "dns-kubernetes" | "api-service"));
        let gaps = p["gaps"].as_array().unwrap();
        let label = format!("{kind} {from}->{to}");
        if through_w1 {
            if gaps.is_empty() {
                problems.push(format!("{label}: no gap"));
            } else if kind.starts_with("tcp-stream") {
                // TCP's retransmission back-off may stretch it.
                if gaps[0]["duration_s"].as_f64().unwrap() < truth - 0.5 {
                    problems.push(format!("{label}: gap {} < {truth}", gaps[0]["duration_s"]));
                }
            } else {
                let measured = gaps
                    .iter()
                    .map(|g| g["duration_s"].as_f64().unwrap())
                    .fold(0.0, f64::max);
                // A DNS lookup fails when the resolver's own timeout and retry say so, not when
                // its packet is lost: its gap was once measured 0.6 s short of a 3 s outage.
                let tolerance = if kind.starts_with("dns") { 1.0 } else { 0.5 };
                if (measured - truth).abs() > tolerance {
                    problems.push(format!("{label}: gap {measured} s, truth {truth} s"));
                }
            }
        } else if p["lost"].as_u64().unwrap() != 0 {
            problems.push(format!("{label}: lost {} (not through {W1})", p["lost"]));
        }
        if p["probes"].as_u64().unwrap() < 50 {
            problems.push(format!("{label}: only {} probes", p["probes"]));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(report["summary"]["lost_elsewhere"], 0);
    let png = std::fs::metadata(dir.join("timeline.png")).unwrap();
    assert!(png.len() > 10_000);
    assert!(
        std::fs::read_to_string(dir.join("timeline.svg"))
            .unwrap()
            .contains(W1)
    );
    wait_nodes_ready(ctx);
}

fn probes_survive_a_cordon_and_drain_of_another_node(ctx: &Ctx) {
    let dir = ctx.work.join("drain");
    let child = start_continuous(ctx, &dir, &["--duration", "25s"]);
    std::thread::sleep(Duration::from_secs(4));
    kubectl(
        ctx,
        &[
            "drain",
            W2,
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--force",
            "--timeout=60s",
        ],
    );
    std::thread::sleep(Duration::from_secs(5));
    kubectl(ctx, &["uncordon", W2]);
    let report = finish_continuous(child);
    assert_eq!(report["summary"]["lost"], 0, "{:#}", report["summary"]);
    assert!(
        report["switching"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == W2)
    );
    let events: Vec<&str> = report["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["node"] == W2)
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(
        events.contains(&"cordoned") && events.contains(&"uncordoned"),
        "{events:?}"
    );
    for p in report["paths"].as_array().unwrap() {
        assert!(p["probes"].as_u64().unwrap() > 50, "{p:#}");
    }
}

fn uplink(ctx: &Ctx, node: &str, state: &str) {
    let uplink = ctx.lab.node(node).unwrap().uplink.clone();
    let status = Command::new("ip")
        .args(["link", "set", &uplink, state])
        .status()
        .unwrap();
    assert!(status.success(), "ip link set {uplink} {state}");
}

/// Without --switching, verify takes the times a node was being switched from apply's marker
/// (as `cniswap apply` sets it): an outage of W1 while it carries the marker is W1's switch,
/// reported per path kind; the same outage after the marker is gone is lost "elsewhere".
fn continuous_attributes_gaps_to_the_node_being_switched_then(ctx: &Ctx) {
    let dir = ctx.work.join("windows");
    let child = start_continuous(ctx, &dir, &["--duration", "32s"]);
    let marker = "cniswap.io/apply-in-progress";
    std::thread::sleep(Duration::from_secs(3));
    kubectl(
        ctx,
        &["annotate", "node", W1, &format!("{marker}=3-switch")],
    );
    std::thread::sleep(Duration::from_secs(3));
    let down = Instant::now();
    uplink(ctx, W1, "down");
    std::thread::sleep(Duration::from_secs(3));
    uplink(ctx, W1, "up");
    let truth = down.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(4));
    kubectl(ctx, &["annotate", "node", W1, &format!("{marker}-")]);
    // Well after the window and its margin (1 s + the probe timeout).
    std::thread::sleep(Duration::from_secs(6));
    uplink(ctx, W1, "down");
    std::thread::sleep(Duration::from_secs(2));
    uplink(ctx, W1, "up");
    let report = finish_continuous(child);
    let windows = report["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 1, "{windows:#?}");
    assert_eq!(windows[0]["node"], W1);
    assert_eq!(windows[0]["by"], "apply marker");
    let switched = report["switched"].as_array().unwrap();
    assert_eq!(switched.len(), 1, "{switched:#?}");
    let kinds = switched[0]["kinds"].as_array().unwrap();
    let gap = |kind: &str| {
        kinds
            .iter()
            .find(|k| k["kind"] == kind)
            .unwrap_or_else(|| panic!("{kind} not reported: {kinds:#?}"))["longest_gap_s"]
            .as_f64()
            .unwrap()
    };
    let pod = gap("pod-to-pod");
    // TCP streams back off and may stretch the longest pod-to-pod gap past the outage.
    assert!(
        pod >= truth - 0.5 && pod < truth + 6.0,
        "pod-to-pod {pod} s, truth {truth} s"
    );
    let host = gap("host");
    assert!(
        (host - truth).abs() <= 1.0,
        "host {host} s, truth {truth} s"
    );
    for kind in ["service", "dns"] {
        gap(kind);
    }
    // The second outage: every lost probe off-window, on W1's paths only.
    let elsewhere = report["summary"]["lost_elsewhere"].as_u64().unwrap();
    assert!(elsewhere > 0, "{:#}", report["summary"]);
    for path in report["summary"]["gaps_elsewhere"].as_array().unwrap() {
        assert!(path.as_str().unwrap().contains(W1), "{path}");
    }
    let total = report["summary"]["lost"].as_u64().unwrap();
    assert!(
        elsewhere < total,
        "the outage inside the window is not lost elsewhere: {elsewhere} of {total}"
    );
    assert!(
        std::fs::read_to_string(dir.join("timeline.json"))
            .unwrap()
            .contains("apply-in-progress")
    );
    wait_nodes_ready(ctx);
}

/// An image the nodes cannot get is reported within seconds (not after --ready-timeout), with
/// the node, the kubelet's reason and the fix: one the pull policy forbids pulling, and one
/// from a registry that refuses connections.
fn an_image_that_cannot_be_pulled_is_reported_at_once(ctx: &Ctx) {
    for (image, policy, reason) in [
        ("cniswap.lab/no-such-image:0", "Never", "ErrImageNeverPull"),
        (
            "127.0.0.1:1/cniswap/no-such-image:0",
            "IfNotPresent",
            "ErrImagePull",
        ),
    ] {
        let started = std::time::Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_cniswap"))
            .args(["verify", "--image", image, "--image-pull-policy", policy])
            .args(["--ready-timeout", "300s"])
            .env("KUBECONFIG", &ctx.lab.kubeconfig)
            .env("NO_COLOR", "1")
            .current_dir(&ctx.work)
            .output()
            .unwrap();
        let elapsed = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        // Back-off turns ErrImagePull into ImagePullBackOff; either is the kubelet's word.
        assert!(
            stderr.contains(reason) || stderr.contains("ImagePullBackOff"),
            "{stderr}"
        );
        assert!(stderr.contains(image), "names the image: {stderr}");
        assert!(
            NODES.iter().any(|n| stderr.contains(&format!("node {n}"))),
            "names the node: {stderr}"
        );
        assert!(stderr.contains("cniswap image push"), "{stderr}");
        assert!(!stderr.contains("Status {"), "{stderr}");
        assert!(
            elapsed.as_secs() < 90,
            "took {elapsed:?} (the timeout is 300 s)"
        );
    }
}

fn objects_are_gone_afterwards(ctx: &Ctx) {
    let out = verify(ctx, &["-o", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(cniswap_lab::kubectl().unwrap())
        .args(["get", "namespace", "cniswap-verify"])
        .env("KUBECONFIG", &ctx.lab.kubeconfig)
        .output()
        .unwrap();
    assert!(!out.status.success(), "the namespace is still there");
    assert!(String::from_utf8_lossy(&out.stderr).contains("NotFound"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_on_the_lab() {
    let root = tempfile::tempdir().unwrap();
    let lab = Lab::up(Options::new(root.path().join("lab")), &mut |m| {
        eprintln!("lab: {m}")
    })
    .await
    .unwrap();
    // The image of the binary under test, imported into every node's containerd.
    let archive = root.path().join("cniswap-image.tar");
    let image = cniswap_lab::image::cniswap(
        std::path::Path::new(env!("CARGO_BIN_EXE_cniswap")),
        &archive,
    )
    .unwrap()
    .reference;
    lab.import_image(&archive).unwrap();
    let work = root.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let ctx = Ctx { lab, work, image };
    type Check = fn(&Ctx);
    let checks: [(&str, Check); 12] = [
        ("pin CoreDNS", pin_coredns),
        ("healthy lab", healthy_lab_passes_every_check),
        ("VXLAN dropped on one node", vxlan_dropped_on_one_node),
        ("CoreDNS at 0", coredns_at_zero),
        (
            "kube-proxy rules removed on one node",
            kube_proxy_rules_removed_on_one_node,
        ),
        ("small MTU on one path", small_mtu_on_one_path),
        ("uplink down on one node", uplink_down_on_one_node),
        (
            "continuous: 3 s uplink outage",
            continuous_measures_an_uplink_outage_on_the_paths_through_it,
        ),
        (
            "continuous: drain of another node",
            probes_survive_a_cordon_and_drain_of_another_node,
        ),
        (
            "continuous: gaps attributed to the node being switched then",
            continuous_attributes_gaps_to_the_node_being_switched_then,
        ),
        (
            "an image that cannot be pulled",
            an_image_that_cannot_be_pulled_is_reported_at_once,
        ),
        ("objects gone afterwards", objects_are_gone_afterwards),
    ];
    let mut failures = vec![];
    for (name, check) in checks {
        eprintln!("verify lab check: {name}");
        if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&ctx))) {
            failures.push(format!("{name}: {}", panic_text(&panic)));
        }
    }
    ctx.lab.down().unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}
