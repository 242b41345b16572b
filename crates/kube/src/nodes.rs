//! The names of the cluster's nodes, from one metadata-only list (shell completion asks for
//! them on every Tab, so the answer must stay small and quick).

use crate::Connection;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};

/// At most this many names (one page): completion lists beyond it are of no use to a person.
const MAX_NAMES: u32 = 5000;

/// The node names, sorted. Errors are kube-rs's: completion drops them silently.
pub async fn node_names(connection: &Connection) -> Result<Vec<String>, kube::Error> {
    let api: Api<Node> = Api::all(connection.client.clone());
    let list = api
        .list_metadata(&ListParams::default().limit(MAX_NAMES))
        .await?;
    let mut names: Vec<String> = list
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    names.sort();
    Ok(names)
}
