//! Pods that run on one node (the node agent `cniswap node ...`, or a shell for a few files),
//! as the plan describes them: privileged, pinned by nodeName, the host at /host, in
//! kube-system (exempt from Pod Security enforcement on Talos and kubeadm). cniswap creates the
//! pod, waits for it through a watch, reads its output and exit code into the journal, and
//! removes it; a pod left by an interrupted attempt is removed before the step runs again.

use crate::KubeActions;
use crate::errors::{api, failed, is_not_found};
use cniswap_exec::{ActionError, Failure};
use cniswap_model::{Inventory, Owner};
use cniswap_plan::NodePod;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, LogParams, PostParams};
use serde_json::{Value, json};
use std::time::Duration;

/// What the agent printed and how it ended.
pub struct AgentRun {
    pub pod: String,
    pub code: i32,
    pub output: String,
}

/// The pod the plan describes, pinned to `node`: privileged, host network and PID namespace,
/// every taint tolerated, the host's root at /host.
pub fn pod_spec(node: &str, pod: &NodePod, image: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod.name,
            "namespace": pod.namespace,
            "labels": {"app.kubernetes.io/name": "cniswap-node-pod", "app.kubernetes.io/managed-by": "cniswap"},
        },
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never",
            "hostNetwork": true,
            "hostPID": true,
            "priorityClassName": "system-node-critical",
            "automountServiceAccountToken": false,
            "tolerations": [{"operator": "Exists"}],
            "containers": [{
                "name": "node",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": pod.command,
                "securityContext": {"privileged": true},
                "volumeMounts": [{"name": "host", "mountPath": "/host"}],
            }],
            "volumes": [{"name": "host", "hostPath": {"path": "/"}}],
        },
    })
}

fn exit_code(pod: &Pod) -> Option<i32> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == "node")?
        .state
        .as_ref()?
        .terminated
        .as_ref()
        .map(|t| t.exit_code)
}

impl KubeActions {
    /// The image a node pod runs: the plan's, or --agent-image for the cniswap agent.
    pub fn image_for(&self, pod: &NodePod) -> String {
        match &self.agent_image {
            Some(image) if pod.image == self.plan_agent_image => image.clone(),
            _ => pod.image.clone(),
        }
    }

    /// Runs the plan's pod on the node and returns its exit code and output. A pod an
    /// interrupted attempt started on this node is waited for (or its result read) instead of
    /// starting the command twice; the pod is removed once its output is read.
    pub async fn run_pod(
        &mut self,
        node: &str,
        pod: &NodePod,
        timeout: Duration,
    ) -> Result<AgentRun, ActionError> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace);
        let name = pod.name.clone();
        let object = format!("{}/Pod/{name}", pod.namespace);
        let existing = pods
            .get_opt(&name)
            .await
            .map_err(|e| api(&format!("GET {object}"), &object, e))?;
        let ours = existing.as_ref().is_some_and(|p| {
            p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node)
                && p.spec.as_ref().is_some_and(|s| {
                    s.containers.first().and_then(|c| c.command.as_ref()) == Some(&pod.command)
                })
        });
        if existing.is_some() && !ours {
            self.remove_pod(&pods, &name, &object).await?;
        }
        if !ours {
            let spec: Pod = serde_json::from_value(pod_spec(node, pod, &self.image_for(pod)))
                .map_err(|e| failed(format!("node pod: {e}")))?;
            match pods.create(&PostParams::default(), &spec).await {
                Ok(_) => {}
                Err(e) => return Err(api(&format!("POST {object}"), &object, e)),
            }
        }
        // Finished, or stuck on an image the node cannot get (which waiting does not fix).
        let done = |p: Option<&Pod>| {
            p.is_some_and(|p| {
                matches!(
                    p.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                ) || cniswap_kube::pods::image_pull_failure(p).is_some()
            })
        };
        let started = std::time::Instant::now();
        let waited = tokio::time::timeout(
            timeout,
            kube::runtime::wait::await_condition(pods.clone(), &name, done),
        )
        .await;
        crate::wake::count(&self.waited, started);
        let finished = match waited {
            Ok(Ok(Some(p))) => p,
            Ok(Ok(None)) => {
                return Err(failed(format!(
                    "{object} disappeared while cniswap waited for it"
                )));
            }
            Ok(Err(e)) => {
                return Err(ActionError::transient(Failure::new(format!(
                    "watching {object}: {}",
                    cniswap_kube::chain(&e)
                ))));
            }
            Err(_) => {
                return Err(ActionError::failed(
                    Failure::new(format!("the pod on {node} did not finish within {} s", timeout.as_secs()))
                        .object(object.clone())
                        .next(format!(
                            "look at the pod (`kubectl -n {} describe pod {name}`: image pull, scheduling), then run `cniswap apply` again",
                            pod.namespace
                        )),
                ));
            }
        };
        if let Some(failure) = cniswap_kube::pods::image_pull_failure(&finished) {
            self.remove_pod(&pods, &name, &object).await?;
            return Err(ActionError::failed(
                Failure::new(failure.describe())
                    .object(object.clone())
                    .next(format!(
                        "{}; then `cniswap apply --agent-image REGISTRY/cniswap:TAG` (the plan's image is {})",
                        failure.fix(),
                        failure.image
                    )),
            ));
        }
        let output = pods
            .logs(
                &name,
                &LogParams {
                    container: Some("node".into()),
                    ..LogParams::default()
                },
            )
            .await
            .unwrap_or_else(|e| format!("(could not read the pod's output: {e})"));
        let code = exit_code(&finished).unwrap_or(-1);
        self.remove_pod(&pods, &name, &object).await?;
        Ok(AgentRun {
            pod: object,
            code,
            output,
        })
    }

    async fn remove_pod(
        &self,
        pods: &Api<Pod>,
        name: &str,
        object: &str,
    ) -> Result<(), ActionError> {
        match pods
            .delete(
                name,
                &DeleteParams {
                    grace_period_seconds: Some(0),
                    ..DeleteParams::default()
                },
            )
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => return Err(api(&format!("DELETE {object}"), object, e)),
        }
        let gone = |p: Option<&Pod>| p.is_none();
        let _ = tokio::time::timeout(
            Duration::from_secs(60),
            kube::runtime::wait::await_condition(pods.clone(), name, gone),
        )
        .await;
        Ok(())
    }

    /// Runs the pod and insists on exit code 0; returns the transcript for the journal.
    pub async fn run_pod_ok(
        &mut self,
        node: &str,
        pod: &NodePod,
        timeout: Duration,
    ) -> Result<String, ActionError> {
        let run = self.run_pod(node, pod, timeout).await?;
        let transcript = format!(
            "$ {} (pod {} on {node})\nexit {}\n{}",
            pod.command.join(" "),
            run.pod,
            run.code,
            run.output
        );
        if run.code != 0 {
            return Err(ActionError::failed(
                Failure::new(format!("the pod on {node} exited with {}", run.code))
                    .object(run.pod)
                    .command(pod.command.join(" "))
                    .output(run.output)
                    .next("read the pod's output above, fix the cause on the node, then run `cniswap apply` again"),
            ));
        }
        Ok(transcript)
    }

    pub async fn node_cleaned(
        &mut self,
        node: &str,
        cni: &str,
        include_kube_proxy: bool,
        pod: &NodePod,
        timeout: Duration,
    ) -> Result<(bool, String), ActionError> {
        let mut name: String = format!("{}-inv", pod.name);
        if name.len() > 63 {
            name = format!(
                "cniswap-inv-{}",
                &cniswap_exec::digest::sha256(name.as_bytes())[..12]
            );
        }
        let inventory_pod = NodePod {
            namespace: pod.namespace.clone(),
            name,
            image: pod.image.clone(),
            command: crate::tools::args(&[
                "cniswap",
                "node",
                "inventory",
                "--root",
                "/host",
                "--output",
                "json",
            ]),
        };
        let run = self.run_pod(node, &inventory_pod, timeout).await?;
        if run.code != 0 && run.code != 1 {
            return Err(ActionError::failed(
                Failure::new(format!(
                    "the node agent's inventory on {node} exited with {}",
                    run.code
                ))
                .object(format!("node/{node}"))
                .output(run.output),
            ));
        }
        let json_start = run.output.find('{').unwrap_or(0);
        let inventory: Inventory =
            serde_json::from_str(&run.output[json_start..]).map_err(|e| {
                failed(format!(
                    "the node agent's inventory on {node} is not readable: {e}"
                ))
            })?;
        // Unknown is not empty: an inventory that could not read the node (the agent image
        // lacks iptables or ip) must not pass for a clean node.
        if !inventory.unreadable.is_empty() {
            return Ok((
                false,
                format!(
                    "the inventory of {node} could not read {}: the agent image needs iptables (nft and legacy), nft, ipset and iproute2 (cniswap image build/push put them in)",
                    inventory.unreadable.join("; ")
                ),
            ));
        }
        let owner: Owner = serde_json::from_value(Value::String(cni.to_string()))
            .map_err(|_| failed(format!("unknown CNI {cni}")))?;
        let mut left: Vec<String> = inventory.owned_by(owner).map(|i| i.id.clone()).collect();
        if include_kube_proxy {
            left.extend(inventory.owned_by(Owner::KubeProxy).map(|i| i.id.clone()));
        }
        Ok(if left.is_empty() {
            (
                true,
                format!("the inventory of {node} lists nothing of {cni}"),
            )
        } else {
            (
                false,
                format!(
                    "{node} still has {} item(s) of {cni}: {}",
                    left.len(),
                    left.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })
    }
}
