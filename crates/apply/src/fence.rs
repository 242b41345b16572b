//! Fencing: the apply lock is only worth something if its holder stops writing when it no
//! longer holds it. Every write apply makes to the cluster goes through a client that first
//! confirms the Lease is still this process's (read again when the last confirmation is older
//! than a second), and refuses the write otherwise: for good when someone else holds the
//! Lease, for now (a transient error, retried) when it cannot be read.

use cniswap_exec::LEASE_NAME;
use futures::future::BoxFuture;
use http::{Method, Request, Response};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Client;
use kube::api::Api;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Why a write was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FenceError {
    #[error(
        "this apply no longer holds the cluster's lock ({0}); it stopped before its next write"
    )]
    Lost(String),
    #[error("the cluster's lock could not be confirmed before a write: {0}")]
    Unconfirmed(String),
}

/// How often a write re-reads the Lease at most.
const CONFIRM_EVERY: Duration = Duration::from_secs(1);

struct State {
    confirmed: Option<Instant>,
    lost: Option<String>,
}

/// The holder's view of its lock, shared by the renewer and every write.
#[derive(Clone)]
pub struct Fence {
    client: Client,
    identity: String,
    state: Arc<Mutex<State>>,
}

impl Fence {
    pub fn new(client: Client, identity: &str) -> Fence {
        Fence {
            client,
            identity: identity.to_string(),
            state: Arc::new(Mutex::new(State {
                confirmed: Some(Instant::now()),
                lost: None,
            })),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut state)
    }

    /// The renewer read the Lease: still ours (`None`), or held by someone else.
    pub fn observed(&self, other: Option<String>) {
        self.with(|s| match other {
            None if s.lost.is_none() => s.confirmed = Some(Instant::now()),
            None => {}
            Some(holder) => s.lost = Some(holder),
        });
    }

    /// Whether the lock is lost for good, and to whom.
    pub fn lost(&self) -> Option<String> {
        self.with(|s| s.lost.clone())
    }

    /// Confirms the lock before a write.
    pub async fn confirm(&self) -> Result<(), FenceError> {
        let fresh = self.with(|s| {
            if let Some(lost) = &s.lost {
                return Err(FenceError::Lost(lost.clone()));
            }
            Ok(s.confirmed.is_some_and(|c| c.elapsed() < CONFIRM_EVERY))
        })?;
        if fresh {
            return Ok(());
        }
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), crate::lease::NAMESPACE);
        match leases.get_opt(LEASE_NAME).await {
            Ok(lease) => {
                let holder = lease
                    .as_ref()
                    .and_then(|l| l.spec.as_ref())
                    .and_then(|s| s.holder_identity.clone())
                    .unwrap_or_default();
                if holder == self.identity {
                    self.observed(None);
                    Ok(())
                } else {
                    let who = if holder.is_empty() {
                        "the Lease was deleted".to_string()
                    } else {
                        format!("now held by {holder}")
                    };
                    self.observed(Some(who.clone()));
                    Err(FenceError::Lost(who))
                }
            }
            Err(e) => Err(FenceError::Unconfirmed(cniswap_kube::chain(&e))),
        }
    }

    /// A client whose writes (anything but GET/HEAD/OPTIONS) wait for [`Fence::confirm`].
    pub fn client(&self, inner: &Client) -> Client {
        let namespace = inner.default_namespace().to_string();
        Client::new(
            Fenced {
                inner: inner.clone(),
                fence: self.clone(),
            },
            namespace,
        )
    }
}

#[derive(Clone)]
struct Fenced {
    inner: Client,
    fence: Fence,
}

impl tower::Service<Request<kube::client::Body>> for Fenced {
    type Response = Response<kube::client::Body>;
    type Error = kube::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<kube::client::Body>) -> Self::Future {
        let inner = self.inner.clone();
        let fence = self.fence.clone();
        Box::pin(async move {
            if !matches!(
                *request.method(),
                Method::GET | Method::HEAD | Method::OPTIONS
            ) {
                fence
                    .confirm()
                    .await
                    .map_err(|e| kube::Error::Service(Box::new(e)))?;
            }
            inner.send(request).await
        })
    }
}

/// The fence's refusal inside a kube error, if that is what it is.
pub fn refusal(error: &kube::Error) -> Option<&FenceError> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(f) = e.downcast_ref::<FenceError>() {
            return Some(f);
        }
        cause = e.source();
    }
    None
}
