//! What a pod's status says about its image, for the commands that start pods of their own
//! (verify's agents, apply's node steps): an image that cannot be pulled is reported as soon as
//! the kubelet says so, with the node and the fix, instead of after a long wait.

use k8s_openapi::api::core::v1::Pod;

/// The kubelet's reasons for a container that waits on an image it cannot get.
const PULL_FAILURES: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "InvalidImageName",
    "ImageInspectError",
];

/// Why a pod cannot get its image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePullFailure {
    pub node: String,
    pub image: String,
    /// The kubelet's reason (`ImagePullBackOff`, `ErrImageNeverPull`, ...).
    pub reason: String,
    /// The kubelet's message, first line, at most 300 characters.
    pub message: String,
}

impl ImagePullFailure {
    /// In words: what failed, where.
    pub fn describe(&self) -> String {
        let message = if self.message.is_empty() {
            String::new()
        } else {
            format!(": {}", self.message)
        };
        format!(
            "node {} cannot get image {} ({}{message})",
            self.node, self.image, self.reason
        )
    }

    /// What to do about it.
    pub fn fix(&self) -> String {
        if self.reason == "ErrImageNeverPull" {
            format!(
                "the pull policy is Never and {} is not on node {}: load it there, or let nodes pull from a registry: \
                 `cniswap image push REGISTRY/cniswap`, then use the reference it prints",
                self.image, self.node
            )
        } else {
            "put the image where the nodes can pull it: `cniswap image push REGISTRY/cniswap` and pass the \
             reference it prints (air-gapped: `cniswap image build --out-dir DIR`, docs/air-gapped.md); \
             a private registry needs an image pull Secret"
                .to_string()
        }
    }
}

/// The first container (init containers first) of `pod` that waits on an image it cannot get.
pub fn image_pull_failure(pod: &Pod) -> Option<ImagePullFailure> {
    let status = pod.status.as_ref()?;
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_else(|| "(not scheduled)".into());
    status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .find_map(|c| {
            let waiting = c.state.as_ref()?.waiting.as_ref()?;
            let reason = waiting.reason.clone()?;
            PULL_FAILURES
                .contains(&reason.as_str())
                .then(|| ImagePullFailure {
                    node: node.clone(),
                    image: c.image.clone(),
                    reason,
                    message: waiting
                        .message
                        .as_deref()
                        .unwrap_or("")
                        .lines()
                        .next()
                        .unwrap_or("")
                        .chars()
                        .take(300)
                        .collect(),
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(reason: &str, message: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"nodeName": "w1", "containers": [{"name": "node", "image": "ghcr.io/x/cniswap:0.1.0"}]},
            "status": {"phase": "Pending", "containerStatuses": [{
                "name": "node", "image": "ghcr.io/x/cniswap:0.1.0", "imageID": "", "ready": false,
                "restartCount": 0, "state": {"waiting": {"reason": reason, "message": message}}
            }]}
        }))
        .unwrap_or_default()
    }

    #[test]
    fn pull_failures_name_the_node_the_image_and_the_fix() {
        let failure =
            image_pull_failure(&pod("ImagePullBackOff", "Back-off pulling image\nmore")).unwrap();
        assert_eq!(failure.node, "w1");
        assert_eq!(
            failure.describe(),
            "node w1 cannot get image ghcr.io/x/cniswap:0.1.0 (ImagePullBackOff: Back-off pulling image)"
        );
        assert!(
            failure
                .fix()
                .contains("cniswap image push REGISTRY/cniswap")
        );
        let never = image_pull_failure(&pod("ErrImageNeverPull", "")).unwrap();
        assert!(
            never.fix().contains("pull policy is Never"),
            "{}",
            never.fix()
        );
        // Waiting for other reasons is not a pull failure.
        assert_eq!(image_pull_failure(&pod("ContainerCreating", "")), None);
    }
}
