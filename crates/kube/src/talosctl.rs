//! Reading machine configs through `talosctl` (only when the user asks, with `--talos-nodes`).
//!
//! The output holds every cluster secret; it is redacted before it leaves this module.

use cniswap_config::redact;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum TalosctlError {
    #[error(
        "talosctl was not found on PATH; install it, or save configs with `talosctl get mc -o yaml` into the snapshot's talos/ directory"
    )]
    NotInstalled,
    #[error("talosctl failed for node {node}: {message}")]
    Failed { node: String, message: String },
}

/// One node's machine config as `talosctl get machineconfig -o yaml` printed it, redacted.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub node: String,
    /// YAML text, secrets replaced.
    pub text: String,
    /// Paths of the fields that were redacted.
    pub redacted: Vec<String>,
}

pub fn find_talosctl() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("talosctl"))
        .find(|p| p.is_file())
}

/// Reads the machine config of each node.
pub fn read_machine_configs(
    nodes: &[String],
    talosconfig: Option<&Path>,
) -> Result<Vec<NodeConfig>, TalosctlError> {
    let talosctl = find_talosctl().ok_or(TalosctlError::NotInstalled)?;
    let mut configs = Vec::new();
    for node in nodes {
        let mut command = Command::new(&talosctl);
        if let Some(path) = talosconfig {
            command.arg("--talosconfig").arg(path);
        }
        command.args(["--nodes", node, "get", "machineconfig", "-o", "yaml"]);
        let output = command.output().map_err(|e| TalosctlError::Failed {
            node: node.clone(),
            message: e.to_string(),
        })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(TalosctlError::Failed {
                node: node.clone(),
                message: stderr.lines().next().unwrap_or("no output").to_string(),
            });
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let (text, redacted) = redact_resource_output(&text);
        configs.push(NodeConfig {
            node: node.clone(),
            text,
            redacted,
        });
    }
    Ok(configs)
}

/// Redacts `talosctl get mc -o yaml` output: the config is a string in `spec`, so it is
/// redacted on its own and written back as a block scalar.
pub fn redact_resource_output(text: &str) -> (String, Vec<String>) {
    let Ok(docs) = cniswap_config::yaml::parse_documents(text) else {
        return (
            redact::REDACTED.to_string(),
            vec!["<unparseable talosctl output>".to_string()],
        );
    };
    let mut out = String::new();
    let mut paths = Vec::new();
    for doc in &docs {
        let Some((node, inner)) = cniswap_config::talos::unwrap_talosctl_resource(doc) else {
            continue;
        };
        let redacted = redact::redact_embedded(inner);
        paths.extend(redacted.paths);
        out.push_str("node: ");
        out.push_str(node.as_deref().unwrap_or(""));
        out.push_str("\nmetadata:\n  namespace: config\n  type: MachineConfigs.config.talos.dev\n  id: v1alpha1\nspec: |\n");
        for line in redacted.text.lines() {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
        out.push_str("---\n");
    }
    (out, paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_output_is_redacted_and_still_a_talos_config() {
        let secret = format!("s{}x", 7 * 6 * 1000 + 17);
        let text = format!(
            "node: 10.0.1.61\nmetadata:\n  namespace: config\n  type: MachineConfigs.config.talos.dev\n  id: v1alpha1\nspec: |\n  version: v1alpha1\n  machine:\n    type: controlplane\n    token: {secret}\n  cluster:\n    secret: {secret}\n    network:\n      cni:\n        name: none\n"
        );
        let (out, paths) = redact_resource_output(&text);
        assert!(!out.contains(&secret), "{out}");
        assert_eq!(paths, vec!["machine.token", "cluster.secret"]);
        let docs = cniswap_config::yaml::parse_documents(&out).unwrap();
        let (node, inner) = cniswap_config::talos::unwrap_talosctl_resource(&docs[0]).unwrap();
        assert_eq!(node.as_deref(), Some("10.0.1.61"));
        assert!(inner.contains("name: none"));
    }
}
