//! Issue 10 §1: a snapshot is untrusted. Over generated hostile node, pod and namespace names,
//! addresses, DaemonSet names and Omni label values, every command and check of every plan
//! parses with `sh -n` and runs under `sh` (with fake kubectl, helm, talosctl, ...) without
//! executing anything injected: the marker file an injection would create never appears.
//! Every YAML artifact parses back to what the plan meant, and plan.yaml round-trips.

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

mod common;

use cniswap_model::CniKind;
use cniswap_plan::{KubeProxyChoice, Plan, PlanOptions, StrategyChoice};
use proptest::prelude::*;
use std::path::Path;

/// Ways to break out of a word, a quote, a comment or a YAML scalar; `{m}` is the marker.
const PAYLOADS: &[&str] = &[
    ";touch {m};#",
    "$(touch {m})",
    "`touch {m}`",
    "'; touch {m}; '",
    "\"; touch {m}; \"",
    "\ntouch {m}\n",
    "\r\ntouch {m}",
    " && touch {m}",
    "|touch {m}",
    "\ninjected: true",
    "\n---\ninjected: true",
    "\\",
    "${IFS}touch${IFS}{m}",
    "\u{1b}]0;x\u{7}",
    "{{range}}'\"$",
    "*",
];

fn hostile(prefix: &str, payload: usize, marker: &Path) -> String {
    format!(
        "{prefix}{}",
        PAYLOADS[payload % PAYLOADS.len()].replace("{m}", &marker.display().to_string())
    )
}

/// What the generated snapshot carries beyond a plain cluster.
#[derive(Debug, Clone)]
struct Case {
    source: CniKind,
    target: CniKind,
    strategy: StrategyChoice,
    replace: bool,
    /// Talos nodes (talosctl patches and reboots with the hostile address).
    talos: bool,
    /// Managed by Omni (ConfigPatches labelled with the hostile cluster name).
    talos_omni: bool,
    payloads: [usize; 6],
}

fn snapshot(case: &Case, marker: &Path) -> cniswap_snapshot::Snapshot {
    let (_dir, mut snapshot) =
        common::generated_snapshot(&common::cluster_yaml(case.source, 1, 2, 2, true));
    let [node_p, ip_p, pod_p, ns_p, ds_p, omni_p] = case.payloads;
    let objects = &mut snapshot.objects;
    // A worker with a hostile name and address, and every reference to it.
    let old = objects.nodes[1].metadata.name.clone();
    let new = hostile("w1", node_p, marker);
    objects.nodes[1].metadata.name = new.clone();
    for address in &mut objects.nodes[1].status.addresses {
        address.address = hostile("192.168.1.11", ip_p, marker);
    }
    for pod in &mut objects.pods {
        if pod.spec.node_name.as_deref() == Some(old.as_str()) {
            pod.spec.node_name = Some(new.clone());
        }
    }
    // Hostile app pods: one with a controller, one without (a bare pod the drain backs up).
    for pod in objects
        .pods
        .iter_mut()
        .filter(|p| p.metadata.name.starts_with("app-"))
    {
        pod.metadata.name = hostile("app", pod_p, marker);
        pod.metadata.namespace = Some(hostile("ns", ns_p, marker));
    }
    if let Some(pod) = objects
        .pods
        .iter_mut()
        .find(|p| p.metadata.name.starts_with("app"))
    {
        pod.metadata.owner_references.clear();
    }
    // The source CNI's DaemonSet under a hostile name.
    if let Some(ds) = objects
        .daemonsets
        .iter_mut()
        .find(|d| d.metadata.name != "kube-proxy")
    {
        ds.metadata.name = hostile("agent", ds_p, marker);
    }
    if case.talos || case.talos_omni {
        for node in &mut objects.nodes {
            node.status.node_info.os_image = "Talos (v1.10.5)".into();
        }
    }
    if case.talos_omni {
        let cluster = hostile("home", omni_p, marker);
        for node in &mut objects.nodes {
            node.metadata
                .labels
                .insert("omni.sidero.dev/cluster".into(), cluster.clone());
        }
    }
    snapshot
}

/// A map key named `injected` anywhere in a YAML value.
fn has_injected_key(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Object(map) => {
            map.contains_key("injected") || map.values().any(has_injected_key)
        }
        serde_json::Value::Array(items) => items.iter().any(has_injected_key),
        _ => false,
    }
}

fn check_case(case: &Case) -> Result<(), TestCaseError> {
    let sandbox = tempfile::tempdir().unwrap();
    let marker = sandbox.path().join("pwned");
    let snapshot = snapshot(case, &marker);
    let facts = cniswap_facts::detect(&snapshot);
    let options = PlanOptions {
        kube_proxy: Some(if case.replace {
            KubeProxyChoice::Replace
        } else {
            KubeProxyChoice::Keep
        }),
        ..common::options(case.target, case.strategy)
    };
    let Ok(output) = cniswap_plan::plan(&snapshot, &facts, &options) else {
        return Ok(());
    };
    // The hostile values reached the plan.
    let node = hostile("w1", case.payloads[0], &marker);
    prop_assert!(
        output
            .plan
            .estimates
            .per_node
            .iter()
            .any(|n| n.node == node),
        "the hostile node is not in the plan"
    );
    if case.talos_omni {
        prop_assert_eq!(
            &output.plan.cluster,
            &hostile("home", case.payloads[5], &marker)
        );
    }
    // Every command and check, under sh, with tools that succeed and with tools that fail.
    let work = sandbox.path().join("plan");
    std::fs::create_dir_all(&work).unwrap();
    let ok = common::fake_tools(&sandbox.path().join("ok"), "", 0);
    let failing = common::fake_tools(&sandbox.path().join("fail"), "", 1);
    for command in common::commands(&output.plan) {
        prop_assert!(common::parses(&command), "not valid shell: {command}");
        prop_assert!(
            !command.chars().any(|c| c.is_control() && c != '\n'),
            "a control character reaches a command: {command:?}"
        );
        for path in [&ok, &failing] {
            common::run_sh(&command, &work, path);
            prop_assert!(!marker.exists(), "{case:?}: injected by {command}");
        }
    }
    // YAML artifacts are built by the serializer: nothing injected parses as a key.
    for (path, text) in &output.files {
        if !(path.ends_with(".yaml") || path.ends_with(".yml")) {
            continue;
        }
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(text)
            .map_err(|e| TestCaseError::fail(format!("{path} does not parse: {e}\n{text}")))?;
        for doc in &docs {
            prop_assert!(!has_injected_key(doc), "{path}: {text}");
        }
        if path.starts_with("artifacts/omni/400-") {
            let label = &docs[0]["metadata"]["labels"]["omni.sidero.dev/cluster"];
            prop_assert_eq!(label, &serde_json::json!(output.plan.cluster.clone()));
        }
    }
    // plan.yaml round-trips exactly.
    let text = common::file(&output, "plan.yaml");
    let back: Plan = serde_saphyr::from_str(text)
        .map_err(|e| TestCaseError::fail(format!("plan.yaml does not parse: {e}")))?;
    prop_assert!(back == output.plan, "plan.yaml changes when read back");
    // The runbook has no control character a terminal would act on.
    let runbook = common::file(&output, "runbook.md");
    prop_assert!(!runbook.chars().any(|c| c.is_control() && c != '\n'));
    Ok(())
}

fn cases() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(vec![CniKind::Flannel, CniKind::Calico, CniKind::Cilium]),
        prop::sample::select(vec![CniKind::Flannel, CniKind::Calico, CniKind::Cilium]),
        prop::sample::select(vec![
            StrategyChoice::Auto,
            StrategyChoice::Cutover,
            StrategyChoice::Rolling,
        ]),
        any::<bool>(),
        0u8..3,
        prop::array::uniform6(0usize..PAYLOADS.len()),
    )
        .prop_filter("a migration", |(s, t, ..)| s != t)
        .prop_map(
            |(source, target, strategy, replace, platform, payloads)| Case {
                source,
                target,
                strategy,
                replace: replace && target != CniKind::Flannel,
                talos: platform == 1,
                talos_omni: platform == 2,
                payloads,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn hostile_names_never_run_and_never_inject_yaml(case in cases()) {
        check_case(&case)?;
    }
}

/// The harness sees an injection: the same values pasted unquoted run the marker command.
#[test]
fn the_harness_detects_an_injection() {
    let sandbox = tempfile::tempdir().unwrap();
    let marker = sandbox.path().join("pwned");
    let path = common::fake_tools(sandbox.path(), "", 0);
    for payload in [0, 1, 2, 5, 7] {
        let node = hostile("w1", payload, &marker);
        common::run_sh(&format!("kubectl cordon {node}"), sandbox.path(), &path);
        assert!(marker.exists(), "payload {payload} did not inject unquoted");
        std::fs::remove_file(&marker).unwrap();
        let quoted = format!("kubectl cordon {}", cniswap_plan::quote(&node));
        common::run_sh(&quoted, sandbox.path(), &path);
        assert!(
            !marker.exists(),
            "payload {payload} injected through quoting"
        );
    }
}

/// Every payload at least once, in every place, on the two common paths.
#[test]
fn every_payload_in_every_place() {
    for (i, _) in PAYLOADS.iter().enumerate() {
        for (source, target, talos, talos_omni) in [
            (CniKind::Flannel, CniKind::Cilium, false, true),
            (CniKind::Flannel, CniKind::Calico, true, false),
            (CniKind::Calico, CniKind::Flannel, false, false),
        ] {
            let case = Case {
                source,
                target,
                strategy: StrategyChoice::Auto,
                replace: false,
                talos,
                talos_omni,
                payloads: [i; 6],
            };
            check_case(&case).unwrap();
        }
    }
}
