//! Turning kube-rs errors into the executor's: which are worth retrying (the API server did not
//! answer, was restarting, or a write raced another), which stop the step.

use cniswap_exec::{ActionError, Failure};

/// Classifies an API error for `what` (e.g. `PATCH node/w1`).
pub fn api(what: &str, object: &str, error: kube::Error) -> ActionError {
    if let Some(refusal) = crate::fence::refusal(&error) {
        let failure = Failure::new(format!("{what}: {refusal}"))
            .object(object.to_string())
            .command(what.to_string());
        return match refusal {
            crate::fence::FenceError::Lost(_) => ActionError::failed(failure.next(
                "another cniswap apply (or --force-unlock) took the lock: let it finish, then see `cniswap apply status`; this run wrote nothing after it lost the lock",
            )),
            crate::fence::FenceError::Unconfirmed(_) => ActionError::transient(
                failure.next("check that the API server is up (`kubectl get --raw /readyz`)"),
            ),
        };
    }
    let text = cniswap_kube::chain(&error);
    let failure = Failure::new(format!("{what}: {text}"))
        .object(object.to_string())
        .command(what.to_string());
    // An answer over a budget (bytes, time) is not retried: the same request gets the same
    // answer, and a stuck read must end rather than hold the lock.
    if let Some(exceeded) = cniswap_kube::Exceeded::find(&error) {
        return ActionError::failed(failure.next(exceeded.help()));
    }
    if transient(&error) {
        ActionError::transient(failure.next(
            "check that the API server is up (`kubectl get --raw /readyz`), then run `cniswap apply` again",
        ))
    } else {
        let next = match &error {
            kube::Error::Api(s) if s.code == 403 => {
                "the credentials may not do this: check RBAC for your user (`kubectl auth can-i`)"
            }
            kube::Error::Api(s) if s.code == 404 => {
                "the object is missing: check the plan against the cluster (`cniswap inspect`)"
            }
            _ => "fix the cause above, then run `cniswap apply` again (done steps are skipped)",
        };
        ActionError::failed(failure.next(next))
    }
}

pub fn transient(error: &kube::Error) -> bool {
    if cniswap_kube::Exceeded::find(error).is_some() {
        return false;
    }
    match error {
        kube::Error::Api(status) => matches!(status.code, 409 | 429 | 500 | 502 | 503 | 504),
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        kube::Error::HttpError(_) => true,
        _ => {
            let text = cniswap_kube::chain(error).to_lowercase();
            [
                "connection",
                "timed out",
                "eof",
                "reset",
                "broken pipe",
                "unavailable",
            ]
            .iter()
            .any(|w| text.contains(w))
        }
    }
}

pub fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(s) if s.code == 404)
}

pub fn failed(message: impl Into<String>) -> ActionError {
    ActionError::failed(Failure::new(message))
}

/// A failed whole-cluster read: retried unless it went over a budget (the same read would again).
pub fn read_error(error: cniswap_kube::ReadError) -> ActionError {
    let failure = Failure::new(error.to_string()).next(error.hint());
    match error {
        cniswap_kube::ReadError::Exceeded { .. } => ActionError::failed(failure),
        _ => ActionError::transient(failure),
    }
}
