//! Machine-checkable "already done" tests, derived from each step's typed action alone: a
//! shell command that exits 0 when the step's own effect is in place, so a re-run (or an
//! executor) can skip it. Each fails closed: an unreachable API server never reads as "done".
//! Steps whose effect cannot be read back (a drain's evictions are, a reboot is not), and
//! verifications and gates, which always run, have none.

use crate::model::{Action, ObjectRef};
use crate::shell::{Code, Sh};

/// `-n NS get KIND NAME` (or cluster-scoped) as one fragment.
fn get(object: &ObjectRef) -> Sh {
    match &object.namespace {
        Some(ns) => sh!("kubectl -n {} get {} {}", ns, object.kind, object.name),
        None => sh!("kubectl get {} {}", object.kind, object.name),
    }
}

/// A jsonpath output argument for a key of `.metadata.annotations` (dots escaped).
fn annotation_path(key: &str) -> String {
    format!("{{.metadata.annotations.{}}}", key.replace('.', "\\."))
}

/// A JSON string, as jsonpath and `kubectl get -o jsonpath` print map keys and values.
fn json(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

/// An extended regular expression that matches `text` literally.
pub fn ere_literal(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\^$.|?*+()[]{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// What a node's label selector says about `key=value`: (selector, `true` when the check
/// wants some node to match, `false` when it wants none).
fn node_label_selector(key: &str, value: Option<&str>) -> String {
    match value {
        Some(v) => format!("{key}={v}"),
        None => format!("!{key}"),
    }
}

pub fn already_done(action: &Action) -> Option<Sh> {
    Some(match action {
        Action::Backup { file, .. } => sh!("test -e {}", file),
        Action::Snapshot { dir, .. } => sh!("test -d {}", dir),
        Action::EtcdSnapshot { file, .. }
        | Action::Download { file, .. }
        | Action::RenderManifest { file, .. } => sh!("test -s {}", file),
        Action::Cordon { node, annotation } => {
            let path = format!(
                "jsonpath={{.spec.unschedulable}},{}",
                annotation_path(annotation)
            );
            sh!(
                "out=$(kubectl get node {} -o {}) && case \"$out\" in true,true|true,false) ;; *) false ;; esac",
                node,
                path
            )
        }
        Action::Uncordon { node, annotation } => {
            let path = format!("jsonpath={}", annotation_path(annotation));
            sh!(
                "out=$(kubectl get node {} -o {}) && [ -z \"$out\" ]",
                node,
                path
            )
        }
        Action::Drain { node, .. } => {
            let selector =
                format!("spec.nodeName={node},status.phase!=Succeeded,status.phase!=Failed");
            // Left on a drained node: DaemonSet pods and mirror pods (owned by the Node). Each
            // line starts with `pod:`, so a pod without an owner is a line too.
            sh!(
                "out=$(kubectl get pods -A --field-selector {} -o jsonpath='{{range .items[*]}}pod:{{.metadata.ownerReferences[0].kind}}{{\"\\n\"}}{{end}}') && {{ [ -z \"$out\" ] || ! printf '%s\\n' \"$out\" | grep -qvxE 'pod:(DaemonSet|Node)'; }}",
                selector
            )
        }
        Action::LabelNode { node, key, value } => {
            let field = format!("metadata.name={node}");
            let selector = node_label_selector(key, value.as_deref());
            sh!(
                "out=$(kubectl get nodes --field-selector {} -l {} -o name) && [ -n \"$out\" ]",
                field,
                selector
            )
        }
        Action::LabelAllNodes { key, value } => {
            // Done when no node differs: none without the value (or none with the key).
            let selector = match value {
                Some(v) => format!("{key}!={v}"),
                None => key.clone(),
            };
            sh!(
                "out=$(kubectl get nodes -l {} -o name) && [ -z \"$out\" ]",
                selector
            )
        }
        Action::NodeSelector {
            namespace,
            daemonset,
            key,
            value,
        } => {
            let read = sh!(
                "out=$(kubectl -n {} get daemonset {} -o jsonpath='{{.spec.template.spec.nodeSelector}}')",
                namespace,
                daemonset
            );
            match value {
                Some(v) => {
                    let needle = format!("{}:{}", json(key), json(v));
                    sh!(
                        "{} && printf '%s' \"$out\" | grep -qF -- {}",
                        Code(&read),
                        needle
                    )
                }
                None => {
                    let needle = format!("{}:", json(key));
                    sh!(
                        "{} && ! printf '%s' \"$out\" | grep -qF -- {}",
                        Code(&read),
                        needle
                    )
                }
            }
        }
        Action::ApplyManifest { file } => sh!(
            "kubectl diff --server-side --force-conflicts -f {} >/dev/null",
            file
        ),
        Action::RestoreBackup {
            path,
            replace: false,
        } if !path.ends_with('/') => crate::backup::restored(path),
        Action::ScaleDeployment {
            namespace,
            name,
            replicas,
        } => sh!(
            "out=$(kubectl -n {} get deployment {} -o jsonpath='{{.spec.replicas}}') && [ \"$out\" = {} ]",
            namespace,
            name,
            replicas
        ),
        Action::PatchObject {
            object,
            field,
            expected,
            ..
        } => {
            let path = format!("jsonpath={{{field}}}");
            sh!(
                "out=$({} -o {}) && [ \"$out\" = {} ]",
                Code(&get(object)),
                path,
                expected
            )
        }
        Action::DeleteObject { object, .. } => sh!(
            "out=$({} --ignore-not-found -o name) && [ -z \"$out\" ]",
            Code(&get(object))
        ),
        Action::DeleteManifest { file, .. } => sh!(
            "out=$(kubectl get -f {} --ignore-not-found -o name) && [ -z \"$out\" ]",
            file
        ),
        Action::DeleteCrds { groups, .. } => {
            let pattern = crd_pattern(groups);
            sh!(
                "crds=$(kubectl get crd -o name) && ! printf '%s\\n' \"$crds\" | grep -qE -- {}",
                pattern
            )
        }
        Action::ClearNodeCondition { node, condition } => {
            let path =
                format!("jsonpath={{.status.conditions[?(@.type==\"{condition}\")].status}}");
            sh!(
                "out=$(kubectl get node {} -o {}) && [ \"$out\" != True ]",
                node,
                path
            )
        }
        Action::OmniConfigPatch {
            patch_id: id,
            remove,
            ..
        } => {
            let list = sh!("out=$(omnictl get configpatches.omni.sidero.dev)");
            if *remove {
                sh!(
                    "{} && ! printf '%s\\n' \"$out\" | grep -qwF -- {}",
                    Code(&list),
                    id
                )
            } else {
                sh!(
                    "{} && printf '%s\\n' \"$out\" | grep -qwF -- {}",
                    Code(&list),
                    id
                )
            }
        }
        Action::HelmUpgrade {
            release,
            namespace,
            values_sha256,
            ..
        } => {
            let description = format!("\"description\":{}", json(&helm_description(values_sha256)));
            sh!(
                "out=$(helm -n {} status {} -o json) && printf '%s' \"$out\" | grep -qF '\"status\":\"deployed\"' && printf '%s' \"$out\" | grep -qF -- {}",
                namespace,
                release,
                description
            )
        }
        Action::HelmUninstall {
            release, namespace, ..
        } => {
            let filter = format!("^{}$", ere_literal(release));
            sh!(
                "out=$(helm -n {} list -a --filter {} -q) && [ -z \"$out\" ]",
                namespace,
                filter
            )
        }
        Action::HelmRollback {
            release,
            namespace,
            revision_file,
        } => {
            let filter = format!("^{}$", ere_literal(release));
            sh!(
                "r=$(cat {}) && if [ -z \"$r\" ]; then out=$(helm -n {} list -a --filter {} -q) && [ -z \"$out\" ]; else out=$(helm -n {} history {} --max 1 -o json) && printf '%s' \"$out\" | grep -qF \"\\\"description\\\":\\\"Rollback to $r\\\"\"; fi",
                revision_file,
                namespace,
                filter,
                namespace,
                release
            )
        }
        Action::WaitDaemonSetReady { namespace, name } => {
            let ds = format!("ds/{name}");
            sh!(
                "kubectl -n {} rollout status {} --timeout=5s >/dev/null",
                namespace,
                ds
            )
        }
        Action::RolloutRestart {
            kind,
            namespace,
            name,
            token,
        } => {
            let path = format!(
                "jsonpath={{.spec.template.metadata.annotations.{}}}",
                RESTART_ANNOTATION.replace('.', "\\.")
            );
            let target = format!("{kind}/{name}");
            sh!(
                "out=$(kubectl -n {} get {} -o {}) && [ \"$out\" = {} ] && kubectl -n {} rollout status {} --timeout=5s >/dev/null",
                namespace,
                target,
                path,
                token,
                namespace,
                target
            )
        }
        Action::WaitJob {
            namespace, name, ..
        } => {
            let job = format!("job/{name}");
            sh!(
                "kubectl -n {} wait {} --for=condition=Complete --timeout=5s >/dev/null",
                namespace,
                job
            )
        }
        _ => return None,
    })
}

/// The pod-template annotation a RolloutRestart sets.
pub const RESTART_ANNOTATION: &str = "cniswap.io/restart";

/// The Helm release description that records which values a release runs with.
pub fn helm_description(values_sha256: &str) -> String {
    format!("cniswap values sha256:{values_sha256}")
}

/// The pattern of CRD names (`kubectl get crd -o name`) of these API groups.
pub fn crd_pattern(groups: &[String]) -> String {
    let alternatives: Vec<String> = groups
        .iter()
        .map(|g| format!("\\.{}", ere_literal(g)))
        .collect();
    format!("({})$", alternatives.join("|"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CORDON_ANNOTATION;

    /// Runs a check with `kubectl`, `helm` and `omnictl` replaced by a script that prints
    /// `stdout` and exits `code`.
    fn run_with_fake_kubectl(check: &Sh, stdout: &str, code: i32) -> bool {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        for tool in ["kubectl", "helm", "omnictl"] {
            let fake = dir.path().join(tool);
            std::fs::write(
                &fake,
                format!("#!/bin/sh\nprintf '%s' '{stdout}'\nexit {code}\n"),
            )
            .unwrap_or_default();
            std::process::Command::new("chmod")
                .arg("+x")
                .arg(&fake)
                .status()
                .map(|s| s.success())
                .unwrap_or_default();
        }
        let path = format!(
            "{}:{}",
            dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        std::process::Command::new("sh")
            .arg("-c")
            .arg(check.as_str())
            .env("PATH", path)
            .status()
            .map(|s| s.success())
            .unwrap_or_default()
    }

    fn check(action: Action) -> Sh {
        already_done(&action).unwrap_or_else(|| panic!("no check for {action:?}"))
    }

    #[test]
    fn checks_read_the_state_and_fail_closed() {
        let delete = check(Action::DeleteObject {
            object: ObjectRef::new("daemonset", Some("kube-system"), "kube-flannel"),
            backup: "b.yaml".into(),
        });
        assert!(run_with_fake_kubectl(&delete, "", 0), "gone");
        assert!(!run_with_fake_kubectl(
            &delete,
            "daemonset.apps/kube-flannel",
            0
        ));
        assert!(
            !run_with_fake_kubectl(&delete, "", 1),
            "unreachable is not gone"
        );

        let crds = check(Action::DeleteCrds {
            groups: vec!["projectcalico.org".into(), "tigera.io".into()],
            backup: "backups/calico-crds".into(),
        });
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

        let cordon = check(Action::Cordon {
            node: "w1".into(),
            annotation: CORDON_ANNOTATION.into(),
        });
        assert!(run_with_fake_kubectl(&cordon, "true,false", 0));
        assert!(run_with_fake_kubectl(&cordon, "true,true", 0));
        assert!(
            !run_with_fake_kubectl(&cordon, "true,", 0),
            "not remembered"
        );
        assert!(!run_with_fake_kubectl(&cordon, ",false", 0), "not cordoned");
        let uncordon = check(Action::Uncordon {
            node: "w1".into(),
            annotation: CORDON_ANNOTATION.into(),
        });
        assert!(run_with_fake_kubectl(&uncordon, "", 0));
        assert!(!run_with_fake_kubectl(&uncordon, "false", 0));
        assert!(!run_with_fake_kubectl(&uncordon, "", 1));

        let drain = check(Action::Drain {
            node: "w1".into(),
            eviction_timeout_seconds: 900,
            bare_pods: Vec::new(),
            bare_pods_backup: None,
        });
        assert!(run_with_fake_kubectl(
            &drain,
            "pod:DaemonSet\npod:Node\n",
            0
        ));
        assert!(run_with_fake_kubectl(&drain, "", 0));
        assert!(!run_with_fake_kubectl(
            &drain,
            "pod:DaemonSet\npod:ReplicaSet\n",
            0
        ));
        assert!(
            !run_with_fake_kubectl(&drain, "pod:DaemonSet\npod:\n", 0),
            "a bare pod is left"
        );
        assert!(!run_with_fake_kubectl(&drain, "", 1));

        let all = check(Action::LabelAllNodes {
            key: "a.io/b".into(),
            value: Some("old".into()),
        });
        assert!(run_with_fake_kubectl(&all, "", 0), "no node differs");
        assert!(!run_with_fake_kubectl(&all, "node/w2", 0));

        let selector = check(Action::NodeSelector {
            namespace: "kube-flannel".into(),
            daemonset: "kube-flannel-ds".into(),
            key: "cniswap.io/cni".into(),
            value: Some("old".into()),
        });
        assert!(run_with_fake_kubectl(
            &selector,
            r#"{"cniswap.io/cni":"old"}"#,
            0
        ));
        assert!(!run_with_fake_kubectl(&selector, "", 0));
        let reset = check(Action::NodeSelector {
            namespace: "kube-flannel".into(),
            daemonset: "kube-flannel-ds".into(),
            key: "cniswap.io/cni".into(),
            value: None,
        });
        assert!(run_with_fake_kubectl(
            &reset,
            r#"{"kubernetes.io/os":"linux"}"#,
            0
        ));
        assert!(!run_with_fake_kubectl(
            &reset,
            r#"{"cniswap.io/cni":"old"}"#,
            0
        ));
        assert!(!run_with_fake_kubectl(&reset, "", 1));
    }

    #[test]
    fn helm_checks_prove_the_values_digest() {
        let up = check(Action::HelmUpgrade {
            release: "cilium".into(),
            namespace: "kube-system".into(),
            repo: "https://helm.cilium.io".into(),
            chart: "cilium/cilium".into(),
            version: "1.16.5".into(),
            values: vec!["artifacts/cilium/values-final.yaml".into()],
            values_sha256: "abc".into(),
            revision_backup: None,
        });
        let as_kubectl = up;
        assert!(run_with_fake_kubectl(
            &as_kubectl,
            r#"{"info":{"status":"deployed","description":"cniswap values sha256:abc"}}"#,
            0
        ));
        assert!(!run_with_fake_kubectl(
            &as_kubectl,
            r#"{"info":{"status":"deployed","description":"cniswap values sha256:def"}}"#,
            0
        ));
        assert!(!run_with_fake_kubectl(
            &as_kubectl,
            r#"{"info":{"status":"failed","description":"cniswap values sha256:abc"}}"#,
            0
        ));
    }
}
