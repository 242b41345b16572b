//! Machine-checkable "already done" tests: a shell command per step that exits 0 when the
//! step's effect is already in place, so a re-run (or an executor) can skip it. Steps whose
//! effect cannot be read back safely (a drain, a reboot, a Talos patch) have none; their
//! `done_when` says what a person checks, and running them again is harmless.

use crate::model::Action;

/// A backup made with `kubectl get -o yaml`, minus the fields the server refuses on create
/// ("resourceVersion should not be set on objects to be created") or that conflict on update.
pub fn backup_for_apply(file: &str) -> String {
    format!("sed -e '/^  resourceVersion:/d' -e '/^  uid:/d' {file}")
}

/// Applies a List backup (`kubectl get KIND -A -o yaml`): the items' own fields sit 4 deep;
/// deeper ones (an ownerReference's uid) stay.
pub fn apply_backup_list(file: &str) -> String {
    format!("sed -e '/^    resourceVersion:/d' -e '/^    uid:/d' {file} | kubectl apply -f -")
}

/// Applies a backup made with `kubectl get -o yaml`.
pub fn apply_backup(file: &str) -> String {
    format!("{} | kubectl apply -f -", backup_for_apply(file))
}

pub fn already_done(action: &Action) -> Option<String> {
    match action {
        Action::Backup { file, .. } => Some(format!("test -s {file}")),
        Action::RenderManifest { file, .. } => Some(format!("test -s {file}")),
        Action::Cordon { node } => Some(format!(
            "[ \"$(kubectl get node {node} -o jsonpath='{{.spec.unschedulable}}')\" = true ]"
        )),
        Action::Uncordon { node } => Some(format!(
            "out=$(kubectl get node {node} -o jsonpath='{{.spec.unschedulable}}') && [ \"$out\" != true ]"
        )),
        Action::LabelNode {
            node,
            label,
            remove,
        } => {
            let key = label.split('=').next().unwrap_or(label);
            // kubectl refuses a name together with -l: name the node with a field selector.
            let (nodes, want) = if node == "all" {
                ("nodes".to_string(), true)
            } else {
                (
                    format!("nodes --field-selector metadata.name={node}"),
                    false,
                )
            };
            // With --all: done when no node lacks the label (or still has it, for removal).
            let selector = match (remove, want) {
                (false, false) => label.clone(),
                (true, false) => format!("!{key}"),
                (false, true) => format!("!{key}"),
                (true, true) => key.to_string(),
            };
            let test = if want { "-z" } else { "-n" };
            Some(format!(
                "out=$(kubectl get {nodes} -l '{selector}' -o name) && [ {test} \"$out\" ]"
            ))
        }
        Action::PatchDaemonSetNodeSelector {
            namespace,
            name,
            selector,
        } => {
            // Other selector keys may stay; ours must be there. Resetting has no check.
            let (key, value) = selector.split_once('=')?;
            Some(format!(
                "kubectl -n {namespace} get ds {name} -o jsonpath='{{.spec.template.spec.nodeSelector}}' | grep -qF '\"{key}\":\"{value}\"'"
            ))
        }
        Action::HelmUninstall {
            release, namespace, ..
        } => Some(format!(
            "out=$(helm -n {namespace} list -a --filter '^{release}$' -q) && [ -z \"$out\" ]"
        )),
        Action::ScaleDeployment {
            namespace,
            name,
            replicas,
        } => Some(format!(
            "[ \"$(kubectl -n {namespace} get deployment {name} -o jsonpath='{{.spec.replicas}}')\" = {replicas} ]"
        )),
        Action::PatchObject {
            kind,
            name,
            jsonpath,
            expected,
            ..
        } if !jsonpath.is_empty() => Some(format!(
            "[ \"$(kubectl get {} {name} -o jsonpath='{{{jsonpath}}}')\" = '{expected}' ]",
            kind.to_lowercase()
        )),
        // `kubectl diff` exits 0 when the cluster already matches the file.
        Action::ApplyManifest { file } if file.starts_with("backups/") => Some(format!(
            "{} | kubectl diff -f - >/dev/null",
            backup_for_apply(file)
        )),
        Action::ApplyManifest { file } => Some(format!("kubectl diff -f {file} >/dev/null")),
        // `name` is the pattern of the CRD names (groups) being removed.
        Action::DeleteObject { kind, name, .. } if kind == "CustomResourceDefinition" => {
            Some(format!(
                "crds=$(kubectl get crd -o name) && ! printf '%s\\n' \"$crds\" | grep -qE '{name}'"
            ))
        }
        Action::DeleteObject {
            kind,
            namespace,
            name,
            ..
        } => {
            let get = if kind == "Manifest" {
                format!("kubectl get -f {name}")
            } else {
                let ns = namespace
                    .as_ref()
                    .map(|n| format!("-n {n} "))
                    .unwrap_or_default();
                format!("kubectl {ns}get {} {name}", kind.to_lowercase())
            };
            // An unreachable API server fails the assignment, so it never reads as "deleted".
            Some(format!(
                "out=$({get} --ignore-not-found -o name) && [ -z \"$out\" ]"
            ))
        }
        Action::HelmUpgrade {
            release,
            namespace,
            chart,
            ..
        } => {
            let (name, version) = chart.split_once('@')?;
            let chart_name = name.rsplit('/').next().unwrap_or(name);
            Some(format!(
                "helm -n {namespace} list --deployed --filter '^{release}$' -o json | grep -q '\"chart\":\"{chart_name}-{version}\"'"
            ))
        }
        Action::WaitDaemonSetReady {
            namespace,
            name,
            node: None,
        } => Some(format!(
            "kubectl -n {namespace} rollout status ds/{name} --timeout=5s >/dev/null"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_checks_use_selectors_not_jsonpath() {
        let one = Action::LabelNode {
            node: "w1".into(),
            label: "a.io/b=true".into(),
            remove: false,
        };
        assert_eq!(
            already_done(&one).unwrap(),
            "out=$(kubectl get nodes --field-selector metadata.name=w1 -l 'a.io/b=true' -o name) && [ -n \"$out\" ]"
        );
        let all = Action::LabelNode {
            node: "all".into(),
            label: "a.io/b=old".into(),
            remove: false,
        };
        assert_eq!(
            already_done(&all).unwrap(),
            "out=$(kubectl get nodes -l '!a.io/b' -o name) && [ -z \"$out\" ]"
        );
        let gone = Action::LabelNode {
            node: "all".into(),
            label: "a.io/b".into(),
            remove: true,
        };
        assert_eq!(
            already_done(&gone).unwrap(),
            "out=$(kubectl get nodes -l 'a.io/b' -o name) && [ -z \"$out\" ]"
        );
    }

    /// Runs a check with `kubectl` replaced by a script that prints `stdout` and exits `code`.
    fn run_with_fake_kubectl(check: &str, stdout: &str, code: i32) -> bool {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("kubectl");
        std::fs::write(
            &fake,
            format!("#!/bin/sh\nprintf '%s' '{stdout}'\nexit {code}\n"),
        )
        .unwrap();
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&fake)
            .status()
            .unwrap();
        let path = format!(
            "{}:{}",
            dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        std::process::Command::new("sh")
            .arg("-c")
            .arg(check)
            .env("PATH", path)
            .status()
            .unwrap()
            .success()
    }

    #[test]
    fn checks_read_the_state_and_fail_closed() {
        let delete = already_done(&Action::DeleteObject {
            kind: "DaemonSet".into(),
            namespace: Some("kube-system".into()),
            name: "kube-flannel".into(),
            backup: "b.yaml".into(),
        })
        .unwrap();
        assert!(run_with_fake_kubectl(&delete, "", 0), "gone");
        assert!(
            !run_with_fake_kubectl(&delete, "daemonset.apps/kube-flannel", 0),
            "still there"
        );
        assert!(
            !run_with_fake_kubectl(&delete, "", 1),
            "an unreachable API server is not 'deleted'"
        );

        let crds = already_done(&Action::DeleteObject {
            kind: "CustomResourceDefinition".into(),
            namespace: None,
            name: r"(\.projectcalico\.org|\.tigera\.io)$".into(),
            backup: "backups/calico-crds".into(),
        })
        .unwrap();
        assert!(run_with_fake_kubectl(
            &crds,
            "customresourcedefinition.apiextensions.k8s.io/ciliumnodes.cilium.io",
            0
        ));
        assert!(!run_with_fake_kubectl(
            &crds,
            "customresourcedefinition.apiextensions.k8s.io/ippools.crd.projectcalico.org",
            0
        ));
        assert!(!run_with_fake_kubectl(&crds, "", 1));

        let cordon = already_done(&Action::Cordon { node: "w1".into() }).unwrap();
        assert!(run_with_fake_kubectl(&cordon, "true", 0));
        assert!(!run_with_fake_kubectl(&cordon, "", 0));
        let uncordon = already_done(&Action::Uncordon { node: "w1".into() }).unwrap();
        assert!(run_with_fake_kubectl(&uncordon, "", 0));
        assert!(!run_with_fake_kubectl(&uncordon, "", 1));

        let label = already_done(&Action::LabelNode {
            node: "all".into(),
            label: "a.io/b=old".into(),
            remove: false,
        })
        .unwrap();
        assert!(
            run_with_fake_kubectl(&label, "", 0),
            "no node lacks the label"
        );
        assert!(!run_with_fake_kubectl(&label, "node/w2", 0));

        let selector = already_done(&Action::PatchDaemonSetNodeSelector {
            namespace: "kube-flannel".into(),
            name: "kube-flannel-ds".into(),
            selector: "cniswap.io/cni=old".into(),
        })
        .unwrap();
        assert!(run_with_fake_kubectl(
            &selector,
            r#"{"cniswap.io/cni":"old"}"#,
            0
        ));
        assert!(!run_with_fake_kubectl(&selector, "", 0));
    }

    #[test]
    fn backups_lose_the_fields_the_server_refuses_on_create() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ds.yaml");
        std::fs::write(&file, "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: kube-flannel\n  resourceVersion: \"123\"\n  uid: 0b1c\nspec:\n  template:\n    metadata:\n      uid: keep\n").unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(backup_for_apply(&file.display().to_string()))
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            text,
            "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: kube-flannel\nspec:\n  template:\n    metadata:\n      uid: keep\n"
        );
    }

    #[test]
    fn helm_check_matches_the_pinned_chart() {
        let up = Action::HelmUpgrade {
            release: "calico".into(),
            namespace: "tigera-operator".into(),
            chart: "projectcalico/tigera-operator@v3.32.1".into(),
            values: vec![],
        };
        assert!(
            already_done(&up)
                .unwrap()
                .ends_with("grep -q '\"chart\":\"tigera-operator-v3.32.1\"'")
        );
    }
}
