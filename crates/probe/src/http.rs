//! The agent's HTTP API (see `cniswap_verify::wire`).

use crate::State;
use bytes::Bytes;
use cniswap_verify::wire::{CheckRequest, CheckResponse, CheckResult, ProbeConfig};
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

async fn body<T: serde::de::DeserializeOwned>(req: Request<Incoming>) -> Result<T, Reply> {
    let bytes = Limited::new(req.into_body(), 16 << 20)
        .collect()
        .await
        .map_err(|e| text(StatusCode::BAD_REQUEST, format!("cannot read body: {e}")))?
        .to_bytes();
    serde_json::from_slice(&bytes)
        .map_err(|e| text(StatusCode::BAD_REQUEST, format!("bad JSON: {e}")))
}

pub async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Reply, std::convert::Infallible> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let reply = match (req.method().clone(), path.as_str()) {
        (Method::GET, "/") => json(StatusCode::OK, &state.identity),
        (Method::GET, "/healthz") => text(StatusCode::OK, "ok"),
        (Method::POST, "/check") => match body::<CheckRequest>(req).await {
            Ok(request) => json(StatusCode::OK, &check(&state, request).await),
            Err(reply) => reply,
        },
        (Method::PUT, "/probe") => match body::<ProbeConfig>(req).await {
            Ok(config) => {
                let prober = crate::prober::Prober::start(&state.shared, &config);
                if let Ok(mut running) = state.prober.lock() {
                    *running = Some(prober);
                }
                json(StatusCode::OK, &state.identity)
            }
            Err(reply) => reply,
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

/// Runs the checks with bounded concurrency and returns them in request order.
pub async fn check(state: &Arc<State>, request: CheckRequest) -> CheckResponse {
    let timeout = Duration::from_millis(request.timeout_ms.clamp(10, 60_000));
    let limit = Arc::new(tokio::sync::Semaphore::new(
        request.concurrency.clamp(1, 256),
    ));
    let mut tasks = vec![];
    for check in request.checks {
        let state = Arc::clone(state);
        let limit = Arc::clone(&limit);
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire().await;
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
