//! The apply lock: a coordination.k8s.io Lease in kube-system. One `cniswap apply` (or
//! rollback) per cluster at a time; the holder renews it while it runs. A Lease whose holder
//! stopped renewing is taken over only after it expires, or at once with --force-unlock.

use crate::errors::{api, is_not_found};
use cniswap_exec::{ActionError, Failure, LEASE_NAME};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use std::time::Duration;

pub use jiff::Timestamp;

pub const NAMESPACE: &str = "kube-system";

/// Who holds the Lease and until when.
#[derive(Debug, Clone, PartialEq)]
pub struct Holder {
    pub identity: String,
    pub renewed: Option<jiff::Timestamp>,
    pub duration: Duration,
}

impl Holder {
    pub fn expires(&self) -> Option<jiff::Timestamp> {
        let d = jiff::SignedDuration::try_from(self.duration).ok()?;
        self.renewed.and_then(|r| r.checked_add(d).ok())
    }
    pub fn expired(&self, now: jiff::Timestamp) -> bool {
        self.expires().is_none_or(|e| e <= now)
    }
    pub fn describe(&self) -> String {
        match (self.renewed, self.expires()) {
            (Some(r), Some(e)) => format!(
                "{} (renewed {}, expires {})",
                self.identity,
                r.strftime("%Y-%m-%d %H:%M:%S UTC"),
                e.strftime("%H:%M:%S UTC")
            ),
            _ => self.identity.clone(),
        }
    }
}

fn holder(lease: &Lease) -> Option<Holder> {
    let spec = lease.spec.as_ref()?;
    let identity = spec.holder_identity.clone().filter(|h| !h.is_empty())?;
    Some(Holder {
        identity,
        renewed: spec.renew_time.as_ref().map(|t| t.0),
        duration: Duration::from_secs(
            u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0),
        ),
    })
}

pub async fn read(client: &Client) -> Result<Option<Holder>, ActionError> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
    match leases.get_opt(LEASE_NAME).await {
        Ok(lease) => Ok(lease.as_ref().and_then(holder)),
        Err(e) => Err(api(
            "GET lease",
            &format!("{NAMESPACE}/Lease/{LEASE_NAME}"),
            e,
        )),
    }
}

/// The lock, held.
pub struct Lock {
    client: Client,
    identity: String,
    duration: Duration,
    /// Said when an expired (or forced) lock was taken over.
    pub took_over: Option<Holder>,
    /// What every write of this run confirms first.
    pub fence: crate::fence::Fence,
    renewer: Option<tokio::task::JoinHandle<()>>,
}

fn spec(identity: &str, duration: Duration, transitions: i32) -> LeaseSpec {
    let now = MicroTime(jiff::Timestamp::now());
    LeaseSpec {
        holder_identity: Some(identity.to_string()),
        lease_duration_seconds: Some(i32::try_from(duration.as_secs()).unwrap_or(i32::MAX)),
        acquire_time: Some(now.clone()),
        renew_time: Some(now),
        lease_transitions: Some(transitions),
        ..LeaseSpec::default()
    }
}

/// Takes the lock, or says who holds it. `force` takes it from a live holder too.
pub async fn acquire(
    client: &Client,
    identity: &str,
    duration: Duration,
    force: bool,
) -> Result<Lock, ActionError> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
    let object = format!("{NAMESPACE}/Lease/{LEASE_NAME}");
    for _ in 0..5 {
        let existing = leases
            .get_opt(LEASE_NAME)
            .await
            .map_err(|e| api("GET lease", &object, e))?;
        let mut took_over = None;
        let result = match existing {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(LEASE_NAME.into()),
                        namespace: Some(NAMESPACE.into()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec(identity, duration, 0)),
                };
                leases.create(&PostParams::default(), &lease).await
            }
            Some(mut lease) => {
                let transitions = lease
                    .spec
                    .as_ref()
                    .and_then(|s| s.lease_transitions)
                    .unwrap_or(0);
                if let Some(h) = holder(&lease)
                    && h.identity != identity
                {
                    if !h.expired(jiff::Timestamp::now()) && !force {
                        return Err(ActionError::failed(
                            Failure::new(format!(
                                "another cniswap apply holds this cluster's lock: {}",
                                h.describe()
                            ))
                            .object(object)
                            .next(
                                "wait for it to finish; if that process is gone, run again after the lock expires, or now with --force-unlock",
                            ),
                        ));
                    }
                    took_over = Some(h);
                }
                lease.spec = Some(spec(identity, duration, transitions + 1));
                // The resourceVersion from the read makes this fail if someone else got there first.
                leases
                    .replace(LEASE_NAME, &PostParams::default(), &lease)
                    .await
            }
        };
        match result {
            Ok(_) => {
                let mut lock = Lock {
                    client: client.clone(),
                    identity: identity.to_string(),
                    duration,
                    took_over,
                    fence: crate::fence::Fence::new(client.clone(), identity),
                    renewer: None,
                };
                lock.start_renewing();
                return Ok(lock);
            }
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(api("write lease", &object, e)),
        }
    }
    Err(ActionError::transient(Failure::new(
        "the apply lock changed hands while cniswap tried to take it",
    )))
}

impl Lock {
    fn start_renewing(&mut self) {
        let client = self.client.clone();
        let identity = self.identity.clone();
        let duration = self.duration;
        let fence = self.fence.clone();
        self.renewer = Some(tokio::spawn(async move {
            let leases: Api<Lease> = Api::namespaced(client, NAMESPACE);
            let every = (duration / 3).max(Duration::from_secs(1));
            loop {
                tokio::time::sleep(every).await;
                let mut lease = match leases.get_opt(LEASE_NAME).await {
                    Ok(Some(lease)) => lease,
                    Ok(None) => {
                        fence.observed(Some("the Lease was deleted".into()));
                        return;
                    }
                    Err(_) => continue,
                };
                let holder = lease
                    .spec
                    .as_ref()
                    .and_then(|s| s.holder_identity.clone())
                    .unwrap_or_default();
                if holder != identity {
                    tracing::warn!("the apply lock was taken over by {holder}");
                    fence.observed(Some(format!("now held by {holder}")));
                    return;
                }
                if let Some(spec) = lease.spec.as_mut() {
                    spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
                }
                // The resourceVersion from the read: a takeover in between makes this fail.
                if leases
                    .replace(LEASE_NAME, &PostParams::default(), &lease)
                    .await
                    .is_ok()
                {
                    fence.observed(None);
                }
            }
        }));
    }

    /// Gives the lock back (deletes the Lease if it is still ours).
    pub async fn release(mut self) {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), NAMESPACE);
        if let Ok(Some(lease)) = leases.get_opt(LEASE_NAME).await
            && lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref())
                == Some(self.identity.as_str())
        {
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    resource_version: lease.metadata.resource_version.clone(),
                    uid: None,
                }),
                ..DeleteParams::default()
            };
            match leases.delete(LEASE_NAME, &params).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => tracing::warn!("could not release the apply lock: {e}"),
            }
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
    }
}
