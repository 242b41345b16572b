//! The agent's HTTP API (see `cniswap_verify::wire`). Every endpoint but `/healthz` answers
//! only requests that carry the run's token; bodies and their contents are bounded
//! (`wire::bounds`), and a body that does not arrive within the idle timeout is refused.

use crate::State;
use bytes::Bytes;
use cniswap_verify::wire::{CheckRequest, CheckResponse, CheckResult, ProbeConfig, bounds};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use std::sync::Arc;
use std::time::Duration;

type Reply = Response<Full<Bytes>>;

fn json(status: StatusCode, value: &impl serde::Serialize) -> Reply {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn text(status: StatusCode, body: impl Into<String>) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from(body.into())));
    *response.status_mut() = status;
    response
}

async fn body<T: serde::de::DeserializeOwned>(
    req: Request<Incoming>,
    within: Duration,
) -> Result<T, Reply> {
    let collect = Limited::new(req.into_body(), bounds::MAX_BODY_BYTES).collect();
    let bytes = tokio::time::timeout(within, collect)
        .await
        .map_err(|_| {
            text(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the body did not arrive within {}",
                    crate::probes::human(within)
                ),
            )
        })?
        .map_err(|e| text(StatusCode::BAD_REQUEST, format!("cannot read body: {e}")))?
        .to_bytes();
    serde_json::from_slice(&bytes)
        .map_err(|e| text(StatusCode::BAD_REQUEST, format!("bad JSON: {e}")))
}

/// The body as `T` if it is within the agent's bounds, else a 400 saying which it breaks.
async fn valid_body<T: serde::de::DeserializeOwned>(
    req: Request<Incoming>,
    within: Duration,
    validate: fn(&T) -> Result<(), String>,
) -> Result<T, Reply> {
    let value = body::<T>(req, within).await?;
    match validate(&value) {
        Ok(()) => Ok(value),
        Err(why) => Err(text(StatusCode::BAD_REQUEST, format!("refused: {why}\n"))),
    }
}

/// Whether the request carries the run's token (`Authorization: Bearer <token>`). The
/// comparison takes the same time wherever the first difference is.
fn authorized(state: &State, req: &Request<Incoming>) -> bool {
    let Some(given) = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let want = state.token.as_bytes();
    let given = given.as_bytes();
    given.len() == want.len()
        && given
            .iter()
            .zip(want)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

pub async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Reply, std::convert::Infallible> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    if path == "/healthz" && req.method() == Method::GET {
        return Ok(text(StatusCode::OK, "ok"));
    }
    if !authorized(&state, &req) {
        return Ok(text(
            StatusCode::UNAUTHORIZED,
            "this agent answers only the cniswap verify run that deployed it (Authorization: Bearer <token>)\n",
        ));
    }
    let within = state.idle;
    let reply = match (req.method().clone(), path.as_str()) {
        (Method::GET, "/") => json(StatusCode::OK, &state.identity),
        (Method::POST, "/check") => match valid_body(req, within, CheckRequest::validate).await {
            Ok(request) => json(StatusCode::OK, &check(&state, request).await),
            Err(reply) => reply,
        },
        (Method::PUT, "/probe") => match valid_body(req, within, ProbeConfig::validate).await {
            Err(reply) => reply,
            Ok(config) => {
                let prober = crate::prober::Prober::start(&state.shared, &config);
                if let Ok(mut running) = state.prober.lock() {
                    *running = Some(prober);
                }
                json(StatusCode::OK, &state.identity)
            }
        },
        (Method::DELETE, "/probe") => {
            if let Ok(mut running) = state.prober.lock() {
                *running = None;
            }
            text(StatusCode::OK, "stopped")
        }
        (Method::GET, "/results") => {
            let since = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("since="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            json(StatusCode::OK, &state.shared.page(since))
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "endpoints: GET /, GET /healthz, POST /check, PUT /probe, DELETE /probe, GET /results?since=N\n",
        ),
    };
    Ok(reply)
}

/// Runs the checks with bounded concurrency (the request's, and the agent's across all
/// requests) and returns them in request order. A task exists only for a running probe.
pub async fn check(state: &Arc<State>, request: CheckRequest) -> CheckResponse {
    let timeout = Duration::from_millis(
        request
            .timeout_ms
            .clamp(*bounds::TIMEOUT_MS.start(), *bounds::TIMEOUT_MS.end()),
    );
    let limit = Arc::new(tokio::sync::Semaphore::new(
        request.concurrency.clamp(1, bounds::MAX_PROBES_IN_FLIGHT),
    ));
    let mut tasks = vec![];
    for check in request.checks {
        let state = Arc::clone(state);
        let (Ok(permit), Ok(global)) = (
            Arc::clone(&limit).acquire_owned().await,
            Arc::clone(&state.probes).acquire_owned().await,
        ) else {
            break;
        };
        tasks.push(tokio::spawn(async move {
            let _permits = (permit, global);
            let result =
                crate::probes::run(&check.probe, state.shared.resolver.as_ref(), timeout).await;
            match result {
                Ok(rtt) => CheckResult {
                    id: check.id,
                    ok: true,
                    rtt_us: Some(rtt.as_micros() as u64),
                    error: None,
                },
                Err(e) => CheckResult {
                    id: check.id,
                    ok: false,
                    rtt_us: None,
                    error: Some(e),
                },
            }
        }));
    }
    let mut results = vec![];
    for task in tasks {
        if let Ok(result) = task.await {
            results.push(result);
        }
    }
    CheckResponse { results }
}
