//! The journal's mirror in the cluster: ConfigMap kube-system/cniswap-journal, one key per step
//! (its latest state in one line) plus the plan and session, so that someone without the plan
//! directory can see what ran. The local journal stays the authority.

use crate::KubeActions;
use crate::errors::api;
use cniswap_exec::{ActionError, Event, MIRROR_NAME, Record};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

/// The key and line a record becomes, if it is mirrored.
pub fn line(record: &Record) -> Option<(String, String)> {
    let at = &record.at;
    let (key, text) = match &record.event {
        Event::Begin {
            digest, cluster, ..
        } => (
            "plan".to_string(),
            format!("{} cluster {cluster} began {at}", digest.plan),
        ),
        Event::Session { mode, holder, .. } => (
            "session".to_string(),
            format!("{mode:?} by {holder} at {at}").to_lowercase(),
        ),
        Event::Start {
            step,
            attempt,
            node,
            ..
        } => (
            step.clone(),
            format!(
                "started {at} attempt {attempt}{}",
                node.as_ref()
                    .map(|n| format!(" node {n}"))
                    .unwrap_or_default()
            ),
        ),
        Event::Finish {
            step, duration_ms, ..
        } => (step.clone(), format!("done {at} in {duration_ms} ms")),
        Event::Skip { step, .. } => (step.clone(), format!("already done {at}")),
        Event::Fail { step, failure, .. } => {
            (step.clone(), format!("failed {at}: {}", failure.message))
        }
        Event::Gate { step, question, .. } => {
            (step.clone(), format!("waiting at a gate {at}: {question}"))
        }
        Event::RolledBack { phase } => (format!("rolled-back.{phase}"), at.clone()),
        _ => return None,
    };
    let mut text = text;
    text.truncate(500);
    Some((key, text))
}

impl KubeActions {
    pub async fn mirror_record(&self, record: &Record) -> Result<(), ActionError> {
        let Some((key, text)) = line(record) else {
            return Ok(());
        };
        let maps: Api<ConfigMap> = Api::namespaced(self.client.clone(), "kube-system");
        let object = format!("kube-system/ConfigMap/{MIRROR_NAME}");
        // A merge patch touches this key only; the map is created the first time.
        let patch = json!({"data": {key.clone(): text.clone()}});
        match maps
            .patch(MIRROR_NAME, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if crate::errors::is_not_found(&e) => {
                let map: ConfigMap = serde_json::from_value(json!({
                    "metadata": {
                        "name": MIRROR_NAME,
                        "namespace": "kube-system",
                        "labels": {"app.kubernetes.io/managed-by": "cniswap"},
                    },
                    "data": {key: text},
                }))
                .map_err(|e| crate::errors::failed(format!("mirror: {e}")))?;
                match maps.create(&PostParams::default(), &map).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
                    Err(e) => Err(api("POST ConfigMap", &object, e)),
                }
            }
            Err(e) => Err(api("PATCH ConfigMap", &object, e)),
        }
    }
}
