//! Waiting through watches: a wait re-reads its condition whenever the API server reports a
//! change to the objects it depends on (a watch), and at the latest after a fallback interval,
//! so a missed or broken watch only slows a wait down, never hangs it.

use crate::KubeActions;
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::watcher;
use std::pin::Pin;
use std::time::Duration;

/// The longest a wait goes without reading its condition again.
pub const FALLBACK: Duration = Duration::from_secs(2);

pub struct Wake {
    changes: Pin<Box<dyn Stream<Item = ()> + Send>>,
}

impl Wake {
    fn of<K>(api: Api<K>, config: watcher::Config) -> Wake
    where
        K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
        K::DynamicType: Default + Eq + std::hash::Hash + Clone,
    {
        Wake {
            changes: Box::pin(watcher(api, config).map(|_| ())),
        }
    }

    /// Returns after the next change (or `at_most`).
    pub async fn next(&mut self, at_most: Duration) {
        let _ = tokio::time::timeout(at_most, self.changes.next()).await;
    }
}

impl KubeActions {
    /// Changes to the pods on a node.
    pub fn wake_on_node_pods(&self, node: &str) -> Wake {
        let api: Api<Pod> = Api::all(self.client.clone());
        Wake::of(
            api,
            watcher::Config::default().fields(&format!("spec.nodeName={node}")),
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
        }
    }
}
