//! Removing the Tigera operator's Calico in the order Calico documents for an operator
//! install (docs.tigera.io, "Uninstall Calico", operator method): the custom resources
//! (Installation, APIServer) first, while the operator runs, so it tears down what it
//! rendered; then wait until calico-system and calico-apiserver hold no pod and the
//! aggregated API `v3.projectcalico.org` is gone (an APIService without its server makes
//! every API discovery fail); only then the operator, and the CRDs last.
//! Forward (the cleanup phase) and backward (the rollback of a Calico install) use the same
//! steps.

use crate::model::{ObjectRef, PatchType, Probe};
use crate::ops::{self, S};

/// Namespaces the operator renders Calico into (`calico-apiserver` before operator 1.39).
pub const NAMESPACES: [&str; 2] = ["calico-system", "calico-apiserver"];
/// The aggregated API the Calico API server serves.
pub const APISERVICE: &str = "v3.projectcalico.org";
/// A nodeSelector key no node carries: calico-node scheduled nowhere.
pub const NOWHERE_KEY: &str = "cniswap-calico-teardown";

pub fn installation() -> ObjectRef {
    ObjectRef::new("installation", None, "default")
}

pub fn apiserver() -> ObjectRef {
    ObjectRef::new("apiserver", None, "default")
}

/// Before a stopped operator starts again while the Installation still stands (the cleanup
/// phase: calico-node was deleted with the operator stopped), calico-node is scheduled on no
/// node, so the operator does not put Calico's CNI config back on nodes that run the target
/// (10-calico.conflist sorts before 10-flannel.conflist). The Installation is saved first;
/// that backup is the one its restore uses. Returns the step and its undo.
pub fn schedule_calico_node_nowhere() -> (S, S) {
    let object = installation();
    let backup = ops::backup_file(&object);
    let patch = serde_json::json!({"spec": {"calicoNodeDaemonSet": {"spec": {"template": {"spec": {"nodeSelector": {NOWHERE_KEY: "none"}}}}}}});
    let set = ops::patch_object(
        object,
        PatchType::Merge,
        patch,
        &format!(".spec.calicoNodeDaemonSet.spec.template.spec.nodeSelector.{NOWHERE_KEY}"),
        "none",
        Some(backup.clone()),
        format!(
            "Save the Installation, then schedule calico-node on no node (nodeSelector {NOWHERE_KEY}=none), so the operator, started to tear Calico down, does not bring it back on a node first."
        ),
    );
    let restore = ops::replace_from_backup(
        &backup,
        "Put the Installation back as it was (calico-node scheduled as before).".into(),
    );
    (set, restore)
}

/// Deletes the APIServer and then the Installation (each saved first), with the operator
/// running: it removes what it rendered and then their finalizers. Returns the deletes and
/// their restores in rollback order.
pub fn delete_custom_resources() -> (Vec<S>, Vec<S>) {
    let mut steps = Vec::new();
    let mut undo = Vec::new();
    for object in [apiserver(), installation()] {
        let (delete, restore) = ops::delete_object(
            object,
            ": the running operator tears down what it rendered (Calico's documented uninstall order)",
        );
        steps.push(delete);
        undo.insert(0, restore);
    }
    (steps, undo)
}

/// Waits until the operator has torn Calico down: no Installation or APIServer, no pod in its
/// namespaces, and no `v3.projectcalico.org` APIService.
pub fn torn_down() -> S {
    let mut probes = vec![
        Probe::Absent {
            object: installation(),
        },
        Probe::Absent {
            object: apiserver(),
        },
    ];
    probes.extend(NAMESPACES.iter().map(|ns| Probe::NoPods {
        namespace: ns.to_string(),
    }));
    probes.push(Probe::Absent {
        object: ObjectRef::new("apiservice", None, APISERVICE),
    });
    ops::verify(
        "Calico is torn down",
        probes,
        format!(
            "Wait until the operator has removed Calico: {} hold no pod and the APIService {APISERVICE} is gone (before the operator and the CRDs go).",
            NAMESPACES.join(" and ")
        ),
        format!(
            "no Installation or APIServer, no pod in {}, no APIService {APISERVICE}",
            NAMESPACES.join(" or ")
        ),
    )
}

/// The rollback of a Calico the plan installed with the operator, before the operator's own
/// removal (helm, or the rendered manifests): custom resources, then the wait.
pub fn uninstall_before_operator() -> Vec<S> {
    let (mut steps, _) = delete_custom_resources();
    steps.push(torn_down());
    steps
}
