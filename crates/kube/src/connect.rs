use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use std::path::PathBuf;

/// How to reach the cluster: the same precedence as kubectl (`--kubeconfig`, then
/// `KUBECONFIG`, then `~/.kube/config`, then in-cluster), and `--context`.
#[derive(Debug, Clone, Default)]
pub struct LiveOptions {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// Answer 429, 503 and 504 at once instead of retrying them inside the client (kube-rs
    /// retries them up to 15 times by default, for minutes). `apply` needs the answer: an
    /// eviction refused by a PodDisruptionBudget is a 429, and it retries transient errors
    /// itself, journaled.
    pub no_client_retry: bool,
}

/// A client and where it points, for messages ("https://10.0.0.1:6443, context prod").
#[derive(Clone)]
pub struct Connection {
    pub client: Client,
    pub server: String,
    /// The context asked for with `--context`, if any (else the kubeconfig's current one).
    pub context: Option<String>,
}

impl Connection {
    /// `https://host:port (context NAME)`, for error messages and provenance.
    pub fn describe(&self) -> String {
        match &self.context {
            Some(context) => format!("{} (context {context})", self.server),
            None => self.server.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot read kubeconfig {path}: {}", chain(source))]
    Kubeconfig {
        path: PathBuf,
        source: kube::config::KubeconfigError,
    },
    #[error("cannot load cluster credentials: {0}")]
    Infer(String),
    /// Not a regular file, or over the file budget (a FIFO would hang the read, a huge or
    /// sparse file would fill memory).
    #[error("kubeconfig {0}")]
    Unreadable(cniswap_snapshot::InputError),
    #[error("cannot create a Kubernetes client for {server}: {message}")]
    Client { server: String, message: String },
}

/// Builds a client. Credentials stay inside kube-rs; nothing of them is logged or printed.
pub async fn connect(options: &LiveOptions) -> Result<Connection, ConnectError> {
    for path in kubeconfig_files(options) {
        cniswap_snapshot::check_regular_file(&path, cniswap_config::limits::MAX_FILE_BYTES)
            .map_err(ConnectError::Unreadable)?;
    }
    let kube_options = KubeConfigOptions {
        context: options.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match &options.kubeconfig {
        Some(path) => {
            let kubeconfig =
                Kubeconfig::read_from(path).map_err(|source| ConnectError::Kubeconfig {
                    path: path.clone(),
                    source,
                })?;
            Config::from_custom_kubeconfig(kubeconfig, &kube_options)
                .await
                .map_err(|source| ConnectError::Kubeconfig {
                    path: path.clone(),
                    source,
                })?
        }
        None if options.context.is_some() => Config::from_kubeconfig(&kube_options)
            .await
            .map_err(|e| ConnectError::Infer(chain(&e)))?,
        None => Config::infer()
            .await
            .map_err(|e| ConnectError::Infer(chain(&e)))?,
    };
    let mut config = config;
    if options.no_client_retry {
        config.default_retry = false;
    }
    let server = config.cluster_url.to_string();
    let server = server.trim_end_matches('/').to_string();
    // Every answer bounded in bytes and time (`CNISWAP_MAX_RESPONSE_BYTES`,
    // `CNISWAP_MAX_REQUEST_SECONDS`): a stuck or endless answer ends in an error, so nothing
    // waits on it for ever (apply would keep renewing its Lease meanwhile).
    let layer = crate::bounds::BoundsLayer::new(&cniswap_config::limits::Limits::current());
    let client = kube::client::ClientBuilder::try_from(config)
        .map_err(|e| ConnectError::Client {
            server: server.clone(),
            message: chain(&e),
        })?
        .with_layer(&layer)
        .build();
    Ok(Connection {
        client,
        server,
        context: options.context.clone(),
    })
}

/// The kubeconfig files kube-rs will read, as kubectl finds them: `--kubeconfig`, else each
/// existing file of `KUBECONFIG`, else `~/.kube/config` if it exists.
fn kubeconfig_files(options: &LiveOptions) -> Vec<PathBuf> {
    if let Some(path) = &options.kubeconfig {
        return vec![path.clone()];
    }
    if let Some(list) = std::env::var_os("KUBECONFIG").filter(|l| !l.is_empty()) {
        return std::env::split_paths(&list)
            .filter(|p| !p.as_os_str().is_empty() && std::fs::symlink_metadata(p).is_ok())
            .collect();
    }
    std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".kube/config"))
        .filter(|p| std::fs::symlink_metadata(p).is_ok())
        .into_iter()
        .collect()
}

/// An error with its causes, `outer: inner: innermost`, skipping causes whose text the outer
/// message already contains. kube-rs wraps the useful part ("connection refused", "invalid
/// peer certificate: UnknownIssuer") several layers deep. An answer of the API server is said
/// in words ([`api_status`]) wherever it sits in the chain, never as kube-rs prints it (the
/// debug form of its `Status`).
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut answers = Vec::new();
    let mut link = Some(error);
    while let Some(cause) = link {
        if let Some(kube::Error::Api(status)) = cause.downcast_ref::<kube::Error>() {
            answers.push((cause.to_string(), api_status(status)));
        }
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        link = cause.source();
    }
    for (raw, words) in answers {
        text = text.replace(&raw, &words);
    }
    text
}

/// What the API server answered, for people: its own message with the HTTP code and reason
/// (`pods "x" not found (HTTP 404 NotFound)`). A body that was not a Kubernetes `Status` (a
/// proxy's page, `404 page not found` for an API that is not served) is quoted briefly.
pub fn api_status(status: &kube::core::Status) -> String {
    let code = status.code;
    let http = http::StatusCode::from_u16(code)
        .ok()
        .and_then(|c| c.canonical_reason())
        .unwrap_or("");
    // kube-rs' reason when the body was not a Status it could read.
    if status.reason == "Failed to parse error data" {
        let body: String = status
            .message
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(200)
            .collect();
        return if body.is_empty() {
            format!("the API server answered HTTP {code} {http} without details")
        } else {
            format!("the API server answered HTTP {code} {http}: {body}")
        };
    }
    let reason = if status.reason.is_empty() {
        http
    } else {
        status.reason.as_str()
    };
    match (status.message.is_empty(), reason.is_empty()) {
        (false, false) => format!("{} (HTTP {code} {reason})", status.message),
        (false, true) => format!("{} (HTTP {code})", status.message),
        (true, _) => format!("the API server answered HTTP {code} {reason}")
            .trim_end()
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn not_found() -> kube::Error {
        let mut status = Status::failure("pods \"w1-agent\" not found", "NotFound").with_code(404);
        status.details = None;
        kube::Error::Api(status.boxed())
    }

    #[test]
    fn api_answers_are_words_not_debug_structures() {
        let text = chain(&not_found());
        assert_eq!(text, "pods \"w1-agent\" not found (HTTP 404 NotFound)");
        // As a watch reports it, two wrappers deep.
        let wrapped = kube::runtime::wait::Error::ProbeFailed(
            kube::runtime::watcher::Error::WatchFailed(not_found()),
        );
        let text = chain(&wrapped);
        assert!(!text.contains("Status {"), "{text}");
        assert!(!text.contains("ApiError"), "{text}");
        assert!(
            text.ends_with("pods \"w1-agent\" not found (HTTP 404 NotFound)"),
            "{text}"
        );
    }

    #[test]
    fn a_body_that_is_not_a_status_is_quoted_briefly() {
        // What kube-rs makes of `404 page not found` (an API group that is not served).
        let status =
            Status::failure("404 page not found\n", "Failed to parse error data").with_code(404);
        let text = chain(&kube::Error::Api(status.boxed()));
        assert_eq!(
            text,
            "the API server answered HTTP 404 Not Found: 404 page not found"
        );
        let empty = Status::failure("", "Failed to parse error data").with_code(502);
        assert_eq!(
            api_status(&empty),
            "the API server answered HTTP 502 Bad Gateway without details"
        );
    }
}
