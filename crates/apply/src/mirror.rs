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

/// A step's start waits this long before it is mirrored: most steps finish sooner, and their
/// finish line replaces the start line in one write instead of two (the mirror's writes were
/// the largest part of apply's own time per node on a loaded API server).
const START_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// A start line not yet in the mirror, written by its task after START_DELAY.
pub struct PendingStart {
    key: String,
    text: String,
    task: tokio::task::JoinHandle<Result<(), ActionError>>,
}

impl KubeActions {
    /// Mirrors a record. A step's start is written later by a task (see START_DELAY); the
    /// next record settles it: the start is dropped if the next line replaces it (same step),
    /// written along with the next line otherwise.
    pub async fn mirror_record(&mut self, record: &Record) -> Result<(), ActionError> {
        let Some((key, text)) = line(record) else {
            return Ok(());
        };
        let mut lines = Vec::new();
        if let Some(pending) = self.mirror_pending.take() {
            pending.task.abort();
            let written = matches!(pending.task.await, Ok(Ok(())));
            if !written && pending.key != key {
                lines.push((pending.key, pending.text));
            }
        }
        if matches!(record.event, Event::Start { .. }) && lines.is_empty() {
            let client = self.client.clone();
            let start = vec![(key.clone(), text.clone())];
            let task = tokio::spawn(async move {
                tokio::time::sleep(START_DELAY).await;
                write(&client, start).await
            });
            self.mirror_pending = Some(PendingStart { key, text, task });
            return Ok(());
        }
        lines.push((key, text));
        write(&self.client, lines).await
    }
}

impl KubeActions {
    /// Writes a start line still waiting (a run that ends inside a step), before the process
    /// exits.
    pub fn flush_mirror(&mut self) {
        if let Some(pending) = self.mirror_pending.take() {
            let _ = self.rt.block_on(pending.task);
        }
    }
}

/// One merge patch with the given keys; the map is created the first time.
async fn write(client: &kube::Client, lines: Vec<(String, String)>) -> Result<(), ActionError> {
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-system");
    let object = format!("kube-system/ConfigMap/{MIRROR_NAME}");
    let data: serde_json::Map<String, serde_json::Value> = lines
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    let patch = json!({"data": data});
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
                "data": data,
            }))
            .map_err(|e| crate::errors::failed(format!("mirror: {e}")))?;
            match maps.create(&PostParams::default(), &map).await {
                Ok(_) => Ok(()),
                // Created meanwhile (by the start task): patch it after all.
                Err(kube::Error::Api(s)) if s.code == 409 => maps
                    .patch(MIRROR_NAME, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(|_| ())
                    .map_err(|e| api("PATCH ConfigMap", &object, e)),
                Err(e) => Err(api("POST ConfigMap", &object, e)),
            }
        }
        Err(e) => Err(api("PATCH ConfigMap", &object, e)),
    }
}
