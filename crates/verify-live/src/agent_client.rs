//! Talking to one agent through a port-forward (API server -> kubelet -> the pod), so verify
//! reaches its agents even when the pod network it is checking is broken.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::Portforwarder;
use std::time::Duration;

pub struct AgentClient {
    api: Api<Pod>,
    pub pod: String,
    port: u16,
    /// The run's token, sent with every request.
    token: String,
    sender: Option<SendRequest<Full<Bytes>>>,
    /// When the connection last carried a request.
    used: std::time::Instant,
    forwarder: Option<Portforwarder>,
}

impl Drop for AgentClient {
    fn drop(&mut self) {
        if let Some(f) = &self.forwarder {
            f.abort();
        }
    }
}

impl AgentClient {
    pub fn new(api: Api<Pod>, pod: String, port: u16, token: String) -> AgentClient {
        AgentClient {
            api,
            pod,
            port,
            token,
            sender: None,
            used: std::time::Instant::now(),
            forwarder: None,
        }
    }

    async fn connect(&mut self) -> Result<(), String> {
        if let Some(f) = self.forwarder.take() {
            f.abort();
        }
        let mut forwarder = self
            .api
            .portforward(&self.pod, &[self.port])
            .await
            .map_err(|e| format!("port-forward to pod {}: {}", self.pod, crate::describe(&e)))?;
        let stream = forwarder
            .take_stream(self.port)
            .ok_or_else(|| format!("port-forward to pod {} gave no stream", self.pod))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP to pod {}: {e}", self.pod))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        self.sender = Some(sender);
        self.forwarder = Some(forwarder);
        Ok(())
    }

    /// One request; reconnects once when the forwarded connection has gone away.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<String>,
        timeout: Duration,
    ) -> Result<Bytes, String> {
        let mut last = String::new();
        // The agent closes connections silent for a minute; do not race it.
        let reuse = Duration::from_secs(cniswap_verify::wire::bounds::CLIENT_REUSE_SECONDS);
        if self.used.elapsed() > reuse {
            self.sender = None;
        }
        self.used = std::time::Instant::now();
        // A second try only when an existing connection turned out stale.
        let tries = if self.sender.is_some() { 2 } else { 1 };
        for _ in 0..tries {
            let ready = match &mut self.sender {
                Some(s) => s.ready().await.is_ok(),
                None => false,
            };
            if !ready {
                self.sender = None;
                // The API server may wait long for a kubelet it cannot reach.
                match tokio::time::timeout(timeout, self.connect()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        last = e;
                        continue;
                    }
                    Err(_) => {
                        last = format!(
                            "port-forward to pod {} not established within {}s",
                            self.pod,
                            timeout.as_secs()
                        );
                        continue;
                    }
                }
            }
            let Some(sender) = self.sender.as_mut() else {
                continue;
            };
            let request = hyper::Request::builder()
                .method(method)
                .uri(path)
                .header("host", "agent")
                .header("content-type", "application/json")
                .header("authorization", format!("Bearer {}", self.token))
                .body(Full::new(Bytes::from(body.clone().unwrap_or_default())))
                .map_err(|e| e.to_string())?;
            let result = tokio::time::timeout(timeout, async {
                let response = sender
                    .send_request(request)
                    .await
                    .map_err(|e| format!("HTTP to pod {}: {e}", self.pod))?;
                let status = response.status();
                let bytes = response
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| format!("HTTP body from pod {}: {e}", self.pod))?
                    .to_bytes();
                if status.is_success() {
                    Ok(bytes)
                } else {
                    Err(format!(
                        "pod {} answered {status}: {}",
                        self.pod,
                        String::from_utf8_lossy(&bytes)
                    ))
                }
            })
            .await;
            match result {
                Ok(Ok(bytes)) => {
                    self.used = std::time::Instant::now();
                    return Ok(bytes);
                }
                Ok(Err(e)) => {
                    last = e;
                    self.sender = None;
                }
                Err(_) => {
                    last = format!(
                        "no answer from pod {} within {}s",
                        self.pod,
                        timeout.as_secs()
                    );
                    self.sender = None;
                }
            }
        }
        Err(last)
    }

    pub async fn json<T: serde::de::DeserializeOwned>(
        &mut self,
        method: &str,
        path: &str,
        body: Option<String>,
        timeout: Duration,
    ) -> Result<T, String> {
        let bytes = self.request(method, path, body, timeout).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| format!("unexpected answer from pod {}: {e}", self.pod))
    }
}
