//! Issue 17 item 1, the newcomer's case, against the lab's real API server (real TLS and
//! RBAC): a kubeconfig whose user may list nothing. inspect, lint --live and snapshot exit 2
//! naming what they could not read and the ClusterRole that would allow it; plan refuses,
//! live and from the snapshot, which records the kinds it lacks. A user who may read all but
//! PodDisruptionBudgets gets the same answer for that one kind. Needs root, Go and the
//! packages scripts/test.sh installs.

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

use cniswap_lab::{Lab, Options};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};

fn cniswap(kubeconfig: &Path, work: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cniswap"))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("NO_COLOR", "1")
        .current_dir(work)
        .output()
        .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Exit 2, and stderr names each kind in `kinds` with the server's 403 and the permission.
fn refused_naming(out: &Output, kinds: &[&str]) -> String {
    let (stdout, stderr) = text(out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    for kind in kinds {
        assert!(
            stderr.contains(&format!("{kind} (403")),
            "{kind} not named: {stderr}"
        );
    }
    assert!(
        stderr.contains("kubectl create clusterrole cniswap-reader --verb=get,list --resource="),
        "no permission to grant named: {stderr}"
    );
    stderr
}

/// Read access to everything inspect lists except PodDisruptionBudgets.
fn all_but_budgets(user: &str) -> Vec<Value> {
    let list = json!(["get", "list"]);
    vec![
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": user},
        "rules": [
            {"apiGroups": [""], "resources": ["nodes", "pods", "configmaps", "services", "namespaces"], "verbs": list},
            {"apiGroups": ["apps"], "resources": ["daemonsets", "deployments"], "verbs": list},
            {"apiGroups": ["admissionregistration.k8s.io"], "resources": ["*"], "verbs": list},
            {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": list},
            {"apiGroups": ["storage.k8s.io"], "resources": ["csidrivers", "storageclasses"], "verbs": list},
            {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": list},
        ]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": user},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": user},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]}),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_without_rights_gets_exit_2_naming_what_it_could_not_read() {
    let root = tempfile::tempdir().unwrap();
    let mut options = Options::new(root.path().join("lab"));
    options.real_nodes = 0;
    options.kwok_nodes = 3;
    options.kwok_pods_per_node = 1;
    let lab = Lab::up(options, &mut |m| eprintln!("lab: {m}"))
        .await
        .unwrap();
    let work = root.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let newcomer = lab.kubeconfig_for("cniswap-newcomer", &[]).unwrap();
        let everything = [
            "nodes",
            "pods",
            "daemonsets.apps",
            "deployments.apps",
            "configmaps",
        ];

        let inspect = cniswap(&newcomer, &work, &["inspect"]);
        let stderr = refused_naming(&inspect, &everything);
        assert!(stderr.contains("unknown (not empty)"), "{stderr}");
        let (stdout, _) = text(&inspect);
        assert!(
            stdout.contains("Could not read"),
            "the report says it first: {stdout}"
        );

        let json = cniswap(&newcomer, &work, &["inspect", "-o", "json"]);
        refused_naming(&json, &everything);
        let report: Value = serde_json::from_slice(&json.stdout).unwrap();
        let unread = report["facts"]["inputs"]["unread"].as_array().unwrap();
        assert!(
            unread.iter().any(
                |k| k["resource"] == "nodes" && k["cause"].as_str().unwrap().starts_with("403")
            ),
            "{unread:#?}"
        );

        refused_naming(&cniswap(&newcomer, &work, &["lint", "--live"]), &everything);

        let plan = cniswap(&newcomer, &work, &["plan", "--to", "cilium"]);
        let stderr = refused_naming(&plan, &everything);
        assert!(
            stderr.contains("cannot plan from a partial read"),
            "{stderr}"
        );

        let snapshot = cniswap(&newcomer, &work, &["snapshot", "--out-dir", "snap"]);
        refused_naming(&snapshot, &everything);
        assert!(work.join("snap/cluster/unread.json").is_file());
        let offline = Command::new(env!("CARGO_BIN_EXE_cniswap"))
            .args(["plan", "--snapshot", "snap", "--to", "cilium"])
            .env_remove("KUBECONFIG")
            .env("NO_COLOR", "1")
            .current_dir(&work)
            .output()
            .unwrap();
        refused_naming(&offline, &everything);

        // All but one kind: that kind, and only it.
        let partial = "cniswap-partial-reader";
        apply_as_admin(&lab, all_but_budgets(partial));
        let reader = lab.kubeconfig_for(partial, &[]).unwrap();
        let inspect = cniswap(&reader, &work, &["inspect"]);
        let stderr = refused_naming(&inspect, &["poddisruptionbudgets.policy"]);
        assert!(stderr.contains("could not read 1 kind"), "{stderr}");
        assert!(!stderr.contains("nodes (403"), "{stderr}");
    }));
    lab.down().unwrap();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// Applies objects as the lab's admin from inside the synchronous checks.
fn apply_as_admin(lab: &Lab, objects: Vec<Value>) {
    tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(async {
            lab.cluster().await.unwrap().apply(&objects).await.unwrap();
        })
    });
}
