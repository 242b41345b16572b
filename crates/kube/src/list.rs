use crate::connect::Connection;
use cniswap_snapshot::decode::{CNI_CONFIG_KINDS, CNI_POLICY_KINDS};
use cniswap_snapshot::objects::{self, CustomResource, RELEVANT_CONFIG_MAPS};
use cniswap_snapshot::{Object, Snapshot};
use kube::Client;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Objects per request: small enough to keep each response modest, large enough to keep a
/// 5,000-node cluster to a few hundred requests.
const PAGE_SIZE: u32 = 500;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot list {what} from {server}: {}", crate::connect::chain(source))]
    Request {
        what: String,
        server: String,
        source: kube::Error,
    },
    /// The answers went over a budget (pages, objects, bytes or time of one list).
    #[error("cannot list {what} from {server}: {exceeded}")]
    Exceeded {
        what: String,
        server: String,
        exceeded: crate::bounds::Exceeded,
    },
    /// The server returned an object that Kubernetes' own rules refuse (a name that is not a
    /// DNS name, say): it is not put in the snapshot, whose names end up in commands.
    #[error("{what} from {server}: {message}")]
    Invalid {
        what: String,
        server: String,
        message: String,
    },
}

impl ReadError {
    /// What to do next, by the kind of failure.
    pub fn hint(&self) -> String {
        let source = match self {
            ReadError::Request { source, .. } => source,
            ReadError::Exceeded { exceeded, .. } => return exceeded.help(),
            ReadError::Invalid { .. } => {
                return "an API server never returns such an object: check that the kubeconfig \
                        points at a real Kubernetes API server"
                    .into();
            }
        };
        let text = crate::connect::chain(source).to_lowercase();
        let hint = if text.contains("certificate")
            || text.contains("tls")
            || text.contains("handshake")
        {
            "the server's certificate is not trusted by this kubeconfig: check that the context \
             points at the right cluster and that its certificate-authority-data is current, \
             or use --snapshot DIR to work offline"
        } else if matches!(source, kube::Error::Api(status) if status.code == 401) {
            "the server refused the credentials: renew them (`kubectl get nodes` shows the same \
             error), or use --snapshot DIR to work offline"
        } else {
            "check that the API server is up and reachable from here (`kubectl get nodes` with \
             the same kubeconfig and context), or use --snapshot DIR to work offline"
        };
        hint.into()
    }
}

/// Why a list could not be read.
enum ListError {
    Kube(kube::Error),
    Exceeded(crate::bounds::Exceeded),
}

impl From<kube::Error> for ListError {
    fn from(error: kube::Error) -> ListError {
        match crate::bounds::Exceeded::find(&error) {
            Some(exceeded) => ListError::Exceeded(exceeded.clone()),
            None => ListError::Kube(error),
        }
    }
}

#[derive(Deserialize)]
struct Page<T> {
    #[serde(default = "Vec::new")]
    items: Vec<T>,
    #[serde(default)]
    metadata: ListMeta,
}

#[derive(Deserialize, Default)]
struct ListMeta {
    #[serde(rename = "continue", default)]
    next: Option<String>,
}

/// Lists every object at `path`, following `continue` tokens, within the budgets of pages
/// and objects per list (a `continue` that never ends, a server that ignores `limit`).
async fn list_all<T: DeserializeOwned>(
    client: &Client,
    path: &str,
    query: &str,
) -> Result<Vec<T>, ListError> {
    let budgets = cniswap_config::limits::Limits::current();
    let mut items = Vec::new();
    let mut next: Option<String> = None;
    let mut pages = 0u64;
    loop {
        pages += 1;
        if pages > budgets.max_list_pages {
            return Err(ListError::Exceeded(crate::bounds::Exceeded {
                budget: cniswap_config::limits::MAX_LIST_PAGES,
                limit: budgets.max_list_pages,
            }));
        }
        let mut uri = format!("{path}?limit={PAGE_SIZE}{query}");
        if let Some(token) = &next {
            uri.push_str("&continue=");
            uri.push_str(&encode(token));
        }
        let request = http::Request::get(uri)
            .body(Vec::new())
            .map_err(kube::Error::HttpError)?;
        let page: Page<T> = client.request(request).await?;
        items.extend(page.items);
        if items.len() as u64 > budgets.max_list_objects {
            return Err(ListError::Exceeded(crate::bounds::Exceeded {
                budget: cniswap_config::limits::MAX_LIST_OBJECTS,
                limit: budgets.max_list_objects,
            }));
        }
        match page.metadata.next {
            Some(token) if !token.is_empty() => next = Some(token),
            _ => return Ok(items),
        }
    }
}

/// Percent-encodes a query value (continue tokens are base64 and may hold `=`, `+`, `/`).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Whether an API error means "you may not see this" rather than "the cluster is unreachable":
/// the kind is then unknown (never empty), and what depends on it says so.
fn is_skippable(error: &kube::Error) -> Option<String> {
    match error {
        kube::Error::Api(status) if matches!(status.code, 401 | 403 | 404 | 405) => Some(format!(
            "{} {}: {}",
            status.code, status.reason, status.message
        )),
        _ => None,
    }
}

/// Reads everything facts need from the cluster into a snapshot. `progress` is told each kind
/// as it is read, with the number of objects so far.
pub async fn read_cluster(
    connection: &Connection,
    progress: &mut dyn FnMut(&str, usize),
) -> Result<Snapshot, ReadError> {
    let client = &connection.client;
    let mut snapshot = Snapshot {
        source: format!(
            "live:{}",
            connection.context.as_deref().unwrap_or(&connection.server)
        ),
        ..Snapshot::default()
    };

    macro_rules! read {
        ($what:expr, $path:expr, $query:expr, $ty:ty, $wrap:expr) => {{
            progress($what, snapshot.objects.len());
            match list_all::<$ty>(client, $path, $query).await {
                Ok(items) => {
                    for item in items {
                        let object = cniswap_snapshot::admit($wrap(item)).map_err(|message| {
                            ReadError::Invalid {
                                what: $what.to_string(),
                                server: connection.describe(),
                                message,
                            }
                        })?;
                        snapshot.objects.add(object);
                    }
                    snapshot.files_read += 1;
                }
                Err(ListError::Exceeded(exceeded)) => {
                    return Err(ReadError::Exceeded {
                        what: $what.to_string(),
                        server: connection.describe(),
                        exceeded,
                    });
                }
                Err(ListError::Kube(error)) => match is_skippable(&error) {
                    Some(reason) => {
                        snapshot.mark_unread(cniswap_snapshot::UnreadKind::from_path($path, reason))
                    }
                    None => {
                        return Err(ReadError::Request {
                            what: $what.to_string(),
                            server: connection.describe(),
                            source: error,
                        });
                    }
                },
            }
        }};
    }

    read!("nodes", "/api/v1/nodes", "", objects::Node, Object::Node);
    read!(
        "pods",
        "/api/v1/pods",
        "",
        objects::Pod,
        |mut pod: objects::Pod| {
            pod.compact();
            Object::Pod(pod)
        }
    );
    read!(
        "daemonsets",
        "/apis/apps/v1/daemonsets",
        "",
        objects::Workload,
        Object::DaemonSet
    );
    read!(
        "deployments",
        "/apis/apps/v1/deployments",
        "",
        objects::Workload,
        Object::Deployment
    );
    for name in RELEVANT_CONFIG_MAPS {
        let query = format!("&fieldSelector=metadata.name%3D{name}");
        read!(
            "configmaps",
            "/api/v1/configmaps",
            &query,
            objects::ConfigMap,
            Object::ConfigMap
        );
    }
    read!(
        "poddisruptionbudgets",
        "/apis/policy/v1/poddisruptionbudgets",
        "",
        objects::PodDisruptionBudget,
        Object::PodDisruptionBudget
    );
    read!(
        "validatingwebhookconfigurations",
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
        "",
        objects::WebhookConfiguration,
        Object::ValidatingWebhookConfiguration
    );
    read!(
        "mutatingwebhookconfigurations",
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
        "",
        objects::WebhookConfiguration,
        Object::MutatingWebhookConfiguration
    );
    read!(
        "services",
        "/api/v1/services",
        "",
        objects::Service,
        Object::Service
    );
    read!(
        "networkpolicies",
        "/apis/networking.k8s.io/v1/networkpolicies",
        "",
        objects::Named,
        Object::NetworkPolicy
    );
    read!(
        "namespaces",
        "/api/v1/namespaces",
        "",
        objects::Named,
        Object::Namespace
    );
    read!(
        "csidrivers",
        "/apis/storage.k8s.io/v1/csidrivers",
        "",
        objects::Named,
        Object::CsiDriver
    );
    read!(
        "storageclasses",
        "/apis/storage.k8s.io/v1/storageclasses",
        "",
        objects::StorageClass,
        Object::StorageClass
    );
    read!(
        "customresourcedefinitions",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        "",
        objects::CustomResourceDefinition,
        Object::CustomResourceDefinition
    );

    // CNI custom resources, only for the CRDs this cluster has.
    let wanted: Vec<(String, String, String, bool)> = snapshot
        .objects
        .crds
        .iter()
        .filter_map(|crd| {
            let kind = crd.spec.names.kind.as_str();
            let policy = CNI_POLICY_KINDS.contains(&kind);
            if !(CNI_CONFIG_KINDS.contains(&kind) || policy) {
                return None;
            }
            let version = crd
                .spec
                .versions
                .iter()
                .find(|v| v.storage)
                .or_else(|| crd.spec.versions.iter().find(|v| v.served))?;
            Some((
                crd.spec.group.clone(),
                version.name.clone(),
                crd.spec.names.plural.clone(),
                policy,
            ))
        })
        .collect();
    for (group, version, plural, policy) in wanted {
        let path = format!("/apis/{group}/{version}/{plural}");
        let api_version = format!("{group}/{version}");
        read!(
            &plural,
            &path,
            "",
            CustomResource,
            |mut cr: CustomResource| {
                if cr.api_version.is_empty() {
                    cr.api_version = api_version.clone();
                }
                if policy {
                    cr.spec = serde_json::Value::Null;
                    Object::CniPolicy(cr)
                } else {
                    Object::CniConfig(cr)
                }
            }
        );
    }
    progress("done", snapshot.objects.len());
    Ok(snapshot)
}
