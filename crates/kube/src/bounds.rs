//! Bounds on every answer of the API server, as a layer of the kube client: bytes per answer
//! (per event for watches) and time for an answer to arrive in full. A server that ignores
//! the page limit, sends gigabytes or trickles its answer (or something posing as one) ends
//! in an [`Exceeded`] error naming the budget and its `CNISWAP_MAX_*` variable, instead of an
//! out-of-memory abort or a hang. Pages and objects per list are bounded where lists are read
//! (`list.rs`).

use bytes::Bytes;
use cniswap_config::limits::{self, Budget, Limits};
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};
use tower::{BoxError, Layer, Service};

/// An answer that went over a budget.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("over the limit of {limit} {} ({})", budget.what, budget.env)]
pub struct Exceeded {
    pub budget: Budget,
    pub limit: u64,
}

impl Exceeded {
    fn new(budget: Budget, limit: u64) -> Exceeded {
        Exceeded { budget, limit }
    }

    /// The budget breached somewhere in `error`'s causes, if one was.
    pub fn find<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Exceeded> {
        let mut current = Some(error);
        while let Some(e) = current {
            if let Some(found) = e.downcast_ref::<Exceeded>() {
                return Some(found);
            }
            current = e.source();
        }
        None
    }

    /// What to do about it.
    pub fn help(&self) -> String {
        format!(
            "a real API server rarely needs this much: check that the kubeconfig points at the right cluster; if the cluster is that large or that slow, raise the budget: {}=<larger value> (now {})",
            self.budget.env, self.limit
        )
    }
}

/// The layer: add it to a `kube::client::ClientBuilder`.
#[derive(Debug, Clone, Copy)]
pub struct BoundsLayer {
    max_bytes: u64,
    time: Duration,
}

impl BoundsLayer {
    pub fn new(limits: &Limits) -> BoundsLayer {
        BoundsLayer {
            max_bytes: limits.max_response_bytes,
            time: Duration::from_secs(limits.max_request_seconds),
        }
    }
}

impl<S> Layer<S> for BoundsLayer {
    type Service = Bounded<S>;
    fn layer(&self, inner: S) -> Bounded<S> {
        Bounded {
            inner,
            bounds: *self,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Bounded<S> {
    inner: S,
    bounds: BoundsLayer,
}

/// `timeoutSeconds` of a watch request, or None when it is not a watch.
fn watch_timeout(query: &str) -> Option<Option<u64>> {
    let mut watch = false;
    let mut timeout = None;
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("watch", v)) => watch = v == "true" || v == "1",
            Some(("timeoutSeconds", v)) => timeout = v.parse().ok(),
            _ => {}
        }
    }
    watch.then_some(timeout)
}

/// The watch timeout kube-rs' watcher asks for when none is set (the API server's default is
/// 30-60 minutes, longer than anyone should wait for a stuck stream).
const DEFAULT_WATCH_SECONDS: u64 = 290;

impl<S, ReqBody, B> Service<Request<ReqBody>> for Bounded<S>
where
    S: Service<Request<ReqBody>, Response = Response<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<BoundedBody<B>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let watch = watch_timeout(request.uri().query().unwrap_or(""));
        // A watch streams for as long as it asked to; anything else must arrive in full
        // within the budget.
        let allowed = match watch {
            Some(seconds) => {
                Duration::from_secs(seconds.unwrap_or(DEFAULT_WATCH_SECONDS)) + self.bounds.time
            }
            None => self.bounds.time,
        };
        let time = Exceeded::new(limits::MAX_REQUEST_SECONDS, self.bounds.time.as_secs());
        let bytes = Exceeded::new(limits::MAX_RESPONSE_BYTES, self.bounds.max_bytes);
        let deadline = Instant::now() + allowed;
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = tokio::time::timeout_at(deadline, future)
                .await
                .map_err(|_| Box::new(time.clone()) as BoxError)?
                .map_err(Into::into)?;
            // A declared length over the budget is refused before a byte of it is read.
            let declared = response
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > bytes.limit) {
                return Err(Box::new(bytes) as BoxError);
            }
            Ok(response.map(|body| BoundedBody {
                inner: body,
                deadline: Box::pin(tokio::time::sleep_until(deadline)),
                time,
                bytes,
                per_line: watch.is_some(),
                seen: 0,
            }))
        })
    }
}

/// A response body that fails once it goes over its bytes or its deadline.
pub struct BoundedBody<B> {
    inner: B,
    deadline: Pin<Box<Sleep>>,
    time: Exceeded,
    bytes: Exceeded,
    /// Watches: count bytes since the last newline (one event), not in all.
    per_line: bool,
    seen: u64,
}

impl<B> Body for BoundedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(this.time.clone()))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    if this.per_line {
                        match data.iter().rposition(|b| *b == b'\n') {
                            Some(i) => this.seen = (data.len() - i - 1) as u64,
                            None => this.seen += data.len() as u64,
                        }
                    } else {
                        this.seen += data.len() as u64;
                    }
                    if this.seen > this.bytes.limit {
                        return Poll::Ready(Some(Err(Box::new(this.bytes.clone()))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::collections::VecDeque;

    /// A body that yields the given chunks.
    struct Chunks(VecDeque<Bytes>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
        }
    }

    fn bounded(chunks: &[&str], limit: u64, per_line: bool) -> BoundedBody<Chunks> {
        BoundedBody {
            inner: Chunks(chunks.iter().map(|c| Bytes::from(c.to_string())).collect()),
            deadline: Box::pin(tokio::time::sleep(Duration::from_secs(60))),
            time: Exceeded::new(limits::MAX_REQUEST_SECONDS, 60),
            bytes: Exceeded::new(limits::MAX_RESPONSE_BYTES, limit),
            per_line,
            seen: 0,
        }
    }

    /// Reads the whole bounded body of `chunks` (inside a runtime: the deadline is a timer).
    fn collect(chunks: &[&str], limit: u64, per_line: bool) -> Result<usize, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            bounded(chunks, limit, per_line)
                .collect()
                .await
                .map(|c| c.to_bytes().len())
                .map_err(|e| e.to_string())
        })
    }

    #[test]
    fn an_answer_over_its_bytes_fails_and_a_watch_is_counted_per_event() {
        let events = ["{\"a\":1}\n{\"b\"", ":2}\n", "{\"c\":3}\n"];
        // 24 bytes in all, no event over 9.
        assert_eq!(collect(&events, 10, true), Ok(24));
        let err = collect(&events, 10, false).unwrap_err();
        assert!(err.contains("over the limit of 10 bytes"), "{err}");
        assert!(err.contains("CNISWAP_MAX_RESPONSE_BYTES"), "{err}");
        // One event longer than the budget, split over chunks.
        let long = ["{\"a\":\"", "0123456789", "\"}\n"];
        assert!(collect(&long, 10, true).is_err());
    }

    #[test]
    fn watches_are_recognised_with_their_timeout() {
        assert_eq!(
            watch_timeout("watch=true&timeoutSeconds=290"),
            Some(Some(290))
        );
        assert_eq!(watch_timeout("watch=1"), Some(None));
        assert_eq!(watch_timeout("limit=500&continue=x"), None);
        assert_eq!(watch_timeout("watch=false"), None);
    }
}
