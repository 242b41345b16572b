//! Waiting through watches: a wait re-reads its condition whenever the API server reports a
//! change to the objects it depends on (a watch), and at the latest after a fallback interval,
//! so a missed or broken watch only slows a wait down, never hangs it.

use crate::KubeActions;
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::watcher;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The longest a wait goes without reading its condition again.
pub const FALLBACK: Duration = Duration::from_secs(2);

pub struct Wake {
    changes: Pin<Box<dyn Stream<Item = ()> + Send>>,
    waited: Arc<AtomicU64>,
}

/// Adds the time `since` to a wait counter (nanoseconds).
pub fn count(counter: &AtomicU64, since: Instant) {
    let nanos = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
    counter.fetch_add(nanos, Ordering::Relaxed);
}

impl Wake {
    fn of<K>(api: Api<K>, config: watcher::Config, waited: Arc<AtomicU64>) -> Wake
    where
        K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
        K::DynamicType: Default + Eq + std::hash::Hash + Clone,
    {
        Wake {
            changes: Box::pin(watcher(api, config).map(|_| ())),
            waited,
        }
    }

    /// Returns after the next change (or `at_most`).
    pub async fn next(&mut self, at_most: Duration) {
        let started = Instant::now();
        let _ = tokio::time::timeout(at_most, self.changes.next()).await;
        count(&self.waited, started);
    }
}

impl KubeActions {
    /// Changes to the pods on a node.
    pub fn wake_on_node_pods(&self, node: &str) -> Wake {
        let api: Api<Pod> = Api::all(self.client.clone());
        Wake::of(
            api,
            watcher::Config::default().fields(&format!("spec.nodeName={node}")),
            self.waited.clone(),
        )
    }

    /// Changes to one object of a typed kind.
    pub fn wake_on<K>(&self, api: Api<K>, name: &str) -> Wake
    where
        K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
        K::DynamicType: Default + Eq + std::hash::Hash + Clone,
    {
        Wake::of(
            api,
            watcher::Config::default().fields(&format!("metadata.name={name}")),
            self.waited.clone(),
        )
    }

    /// Changes to any object of a dynamic kind in a namespace (deletes of backed-up objects).
    pub fn wake_on_dynamic(
        &self,
        kind: &crate::objects::Kind,
        namespace: Option<&str>,
        name: &str,
    ) -> Wake {
        let api = self.dynamic(kind, namespace);
        Wake {
            changes: Box::pin(
                kube::runtime::watcher::watcher(
                    api,
                    watcher::Config::default().fields(&format!("metadata.name={name}")),
                )
                .map(|_| ()),
            ),
            waited: self.waited.clone(),
        }
    }
}

impl KubeActions {
    /// Sleeps, counted as waiting.
    pub async fn pause(&self, d: Duration) {
        let started = Instant::now();
        tokio::time::sleep(d).await;
        count(&self.waited, started);
    }

    /// Time spent waiting for the cluster (watches, pauses, pod and node conditions) so far:
    /// what the plan asks to wait for, not cniswap's own work.
    pub fn waited(&self) -> Duration {
        Duration::from_nanos(self.waited.load(Ordering::Relaxed))
    }
}
