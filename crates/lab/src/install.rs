//! Installing the lab's CNI the way a user does: Cilium with the real helm binary from the
//! chart directory and values the lab wrote, Calico by applying its manifest with kubectl.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::cni::InstallFiles;
use crate::error::{LabError, Result};

/// `helm install cilium DIR/charts/cilium -n kube-system -f DIR/values/cilium.yaml`, with
/// helm's cache, configuration and data kept in the lab's directory (never the user's home).
pub fn cilium(helm: &Path, kubeconfig: &Path, lab_dir: &Path, files: &InstallFiles) -> Result<()> {
    let helm_home = lab_dir.join("helm");
    let chart = files.cilium_chart.display().to_string();
    let values = files.cilium_values.display().to_string();
    let kubeconfig = kubeconfig.display().to_string();
    let mut command = Command::new(helm);
    command
        .args([
            "install",
            "cilium",
            &chart,
            "--namespace",
            "kube-system",
            "--values",
            &values,
            "--kubeconfig",
            &kubeconfig,
        ])
        .env("HELM_CACHE_HOME", helm_home.join("cache"))
        .env("HELM_CONFIG_HOME", helm_home.join("config"))
        .env("HELM_DATA_HOME", helm_home.join("data"));
    run(command, "helm install cilium")
}

/// `kubectl apply --server-side -f DIR/manifests/calico.yaml`.
pub fn calico(kubectl: &Path, kubeconfig: &Path, files: &InstallFiles) -> Result<()> {
    let manifest = files.calico_manifest.display().to_string();
    let kubeconfig = kubeconfig.display().to_string();
    let mut command = Command::new(kubectl);
    command.args([
        "--kubeconfig",
        &kubeconfig,
        "apply",
        "--server-side",
        "--field-manager",
        "cniswap-lab",
        "-f",
        &manifest,
    ]);
    run(command, "kubectl apply calico.yaml")
}

fn run(mut command: Command, what: &str) -> Result<()> {
    let shown = format!("{command:?}");
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| LabError::Command {
            command: shown.clone(),
            status: "not started".into(),
            output: e.to_string(),
        })?;
    if output.status.success() {
        return Ok(());
    }
    Err(LabError::Command {
        command: format!("{what}: {shown}"),
        status: output.status.to_string(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        )
        .trim()
        .to_string(),
    })
}
