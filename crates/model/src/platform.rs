use serde::{Deserialize, Serialize};
use std::fmt;

/// The distribution that runs the cluster: it decides how a CNI and kube-proxy are deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PlatformKind {
    Talos,
    Kubeadm,
    K3s,
    Rke2,
    /// A cluster whose distribution could not be recognised.
    #[default]
    Generic,
}

impl fmt::Display for PlatformKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PlatformKind::Talos => "talos",
            PlatformKind::Kubeadm => "kubeadm",
            PlatformKind::K3s => "k3s",
            PlatformKind::Rke2 => "rke2",
            PlatformKind::Generic => "generic",
        })
    }
}

/// The shape of a Talos machine configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TalosConfigFormat {
    /// One `version: v1alpha1` document (Talos <= 1.13, still accepted by 1.14).
    V1alpha1,
    /// The Talos 1.14 multi-document form (`KubeNetworkConfig`, `KubeFlannelCNIConfig`, ...),
    /// usually next to a slimmer v1alpha1 document.
    MultiDocument,
}

impl fmt::Display for TalosConfigFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TalosConfigFormat::V1alpha1 => "v1alpha1",
            TalosConfigFormat::MultiDocument => "multi-document (1.14)",
        })
    }
}
