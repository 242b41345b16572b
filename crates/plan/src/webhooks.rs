//! Which admission webhooks can see the pods a plan recreates, read from their rules and
//! selectors (the snapshot's webhook configurations, namespaces and pods): only those need
//! relaxing while their own pods move. And which mutating webhooks inject sidecars: relaxing
//! one would let pods start without their sidecar, so it is never relaxed.

use cniswap_snapshot::Snapshot;
use cniswap_snapshot::objects::{LabelSelector, Webhook};
use std::collections::{BTreeMap, HashMap};

/// What the plan knows of one webhook (by `Kind/configuration` and webhook name).
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    /// Its rules cover creating pods (the plan recreates pods; agents' pods are created too).
    pub creates_pods: bool,
    /// A selector can match a recreated pod or its namespace: `None` when the snapshot cannot
    /// tell (an operator Kubernetes does not define, a namespace whose labels were not read).
    pub sees_recreated: Option<bool>,
    /// A mutating webhook on pod creation named as an injector (`*inject*`, Vault's agent
    /// injector, Istio's, Linkerd's proxy injector ...).
    pub injects_sidecars: bool,
}

/// A recreated pod: its namespace and labels.
pub struct RecreatedPod<'a> {
    pub namespace: &'a str,
    pub labels: BTreeMap<String, String>,
}

fn covers_pod_creation(webhook: &Webhook) -> bool {
    webhook.rules.iter().any(|r| {
        let group = r.api_groups.iter().any(|g| g.is_empty() || g == "*");
        let resource = r
            .resources
            .iter()
            .any(|x| x == "pods" || x == "*" || x == "*/*");
        let create =
            r.operations.is_empty() || r.operations.iter().any(|o| o == "CREATE" || o == "*");
        group && resource && create
    })
}

fn selects(selector: Option<&LabelSelector>, labels: &BTreeMap<String, String>) -> Option<bool> {
    match selector {
        None => Some(true),
        Some(s) => s.matches(labels),
    }
}

/// Whether the webhook's selectors can match one of `pods` (each in a namespace whose labels
/// are in `namespaces`, or not read).
fn sees(
    webhook: &Webhook,
    pods: &[RecreatedPod],
    namespaces: &HashMap<&str, BTreeMap<String, String>>,
) -> Option<bool> {
    let mut unknown = false;
    for pod in pods {
        // The API server adds kubernetes.io/metadata.name to every namespace.
        let namespace_labels = namespaces.get(pod.namespace).map(|l| {
            let mut l = (*l).clone();
            l.insert(
                "kubernetes.io/metadata.name".to_string(),
                pod.namespace.to_string(),
            );
            l
        });
        let in_namespace = match (&webhook.namespace_selector, namespace_labels) {
            // An empty selector selects every namespace, read or not.
            (None, _) => Some(true),
            (Some(s), _) if s.match_labels.is_empty() && s.match_expressions.is_empty() => {
                Some(true)
            }
            (Some(s), Some(labels)) => s.matches(&labels),
            (Some(_), None) => None,
        };
        match (
            in_namespace,
            selects(webhook.object_selector.as_ref(), &pod.labels),
        ) {
            (Some(true), Some(true)) => return Some(true),
            (Some(false), _) | (_, Some(false)) => {}
            _ => unknown = true,
        }
    }
    if unknown { None } else { Some(false) }
}

fn injector_name(name: &str) -> bool {
    let name = name.to_lowercase();
    name.contains("inject")
}

/// The scope of every webhook of the snapshot, keyed by (`Kind/configuration`, webhook).
pub fn scopes(snapshot: &Snapshot, pods: &[RecreatedPod]) -> HashMap<(String, String), Scope> {
    let namespaces: HashMap<&str, BTreeMap<String, String>> = snapshot
        .objects
        .namespaces
        .iter()
        .map(|n| (n.metadata.name.as_str(), n.metadata.labels.to_map()))
        .collect();
    let configs = snapshot
        .objects
        .validating_webhooks
        .iter()
        .map(|c| ("ValidatingWebhookConfiguration", c))
        .chain(
            snapshot
                .objects
                .mutating_webhooks
                .iter()
                .map(|c| ("MutatingWebhookConfiguration", c)),
        );
    let mut out = HashMap::new();
    for (kind, config) in configs {
        for webhook in &config.webhooks {
            let creates_pods = covers_pod_creation(webhook);
            let injects_sidecars = kind == "MutatingWebhookConfiguration"
                && creates_pods
                && (injector_name(&webhook.name) || injector_name(&config.metadata.name));
            out.insert(
                (
                    format!("{kind}/{}", config.metadata.name),
                    webhook.name.clone(),
                ),
                Scope {
                    creates_pods,
                    sees_recreated: sees(webhook, pods, &namespaces),
                    injects_sidecars,
                },
            );
        }
    }
    out
}
