use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use std::path::PathBuf;

/// How to reach the cluster: the same precedence as kubectl (`--kubeconfig`, then
/// `KUBECONFIG`, then `~/.kube/config`, then in-cluster), and `--context`.
#[derive(Debug, Clone, Default)]
pub struct LiveOptions {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot read kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        source: kube::config::KubeconfigError,
    },
    #[error("cannot load cluster credentials: {0}")]
    Infer(String),
    #[error("cannot create a Kubernetes client: {0}")]
    Client(String),
}

/// Builds a client. Credentials stay inside kube-rs; nothing of them is logged or printed.
pub async fn connect(options: &LiveOptions) -> Result<(Client, String), ConnectError> {
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
            .map_err(|e| ConnectError::Infer(e.to_string()))?,
        None => Config::infer()
            .await
            .map_err(|e| ConnectError::Infer(e.to_string()))?,
    };
    let label = options
        .context
        .clone()
        .unwrap_or_else(|| config.cluster_url.to_string());
    let client = Client::try_from(config).map_err(|e| ConnectError::Client(e.to_string()))?;
    Ok((client, label))
}
