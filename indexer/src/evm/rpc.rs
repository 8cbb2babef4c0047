//! A JSON-RPC client over HTTP: batching, bounded concurrency, retries with exponential
//! backoff and jitter, and an optional requests-per-second limit.
//!
//! Envelopes are alloy's (`alloy-json-rpc`); transport is reqwest; retries are `backon`'s;
//! the rate limit is `governor`'s. Errors carry the method and what was asked.

use alloy_json_rpc::{ErrorPayload, Id, Request, RequestPacket, ResponsePacket, ResponsePayload};
use backon::{ExponentialBuilder, Retryable};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::{Serialize, de::DeserializeOwned};
use std::{
    num::NonZeroU32,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio::sync::Semaphore;

/// Settings of an [`RpcClient`].
#[derive(Clone, Debug)]
pub struct RpcConfig {
    /// Node URL.
    pub url: String,
    /// HTTP requests in flight at once.
    pub concurrency: usize,
    /// Requests per second (none: unlimited).
    pub rps: Option<u32>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries of a retryable failure.
    pub max_retries: u32,
    /// First backoff delay.
    pub min_backoff: Duration,
}

impl RpcConfig {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            concurrency: 8,
            rps: None,
            timeout: Duration::from_secs(30),
            max_retries: 8,
            min_backoff: Duration::from_millis(100),
        }
    }
}

/// Why a JSON-RPC call failed.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The request did not complete (connection refused, reset, timeout).
    #[error("{method} ({what}): transport error: {source}")]
    Transport {
        /// Method.
        method: String,
        /// What was asked (block, range).
        what: String,
        /// Cause.
        #[source]
        source: reqwest::Error,
    },
    /// The node answered with a non-success HTTP status.
    #[error("{method} ({what}): http status {status}: {body}")]
    Status {
        /// Method.
        method: String,
        /// What was asked.
        what: String,
        /// HTTP status code.
        status: u16,
        /// Start of the body.
        body: String,
    },
    /// The node answered with a JSON-RPC error object.
    #[error("{method} ({what}): node error {code}: {message}")]
    Node {
        /// Method.
        method: String,
        /// What was asked.
        what: String,
        /// JSON-RPC error code.
        code: i64,
        /// Message.
        message: String,
        /// alloy's judgement of the payload (rate limits).
        retry: bool,
    },
    /// The response is not the JSON expected (truncated, wrong shape).
    #[error("{method} ({what}): malformed response: {message}")]
    Malformed {
        /// Method.
        method: String,
        /// What was asked.
        what: String,
        /// Parser message.
        message: String,
    },
}

impl RpcError {
    /// Whether the same request may succeed later: connection failures, timeouts, HTTP 429
    /// and 5xx, and node errors that mean "rate limited".
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport { source, .. } => {
                source.is_timeout()
                    || source.is_connect()
                    || source.is_request()
                    || source.is_body()
            }
            Self::Status { status, .. } => *status == 429 || *status >= 500,
            Self::Node { retry, .. } => *retry,
            Self::Malformed { .. } => false,
        }
    }

    /// Whether the node says the method does not exist (or is not enabled).
    pub fn is_method_not_found(&self) -> bool {
        match self {
            Self::Node { code, message, .. } => {
                let m = message.to_ascii_lowercase();
                *code == -32601
                    || m.contains("method not found")
                    || m.contains("does not exist")
                    || m.contains("not available")
                    || m.contains("not supported")
                    || m.contains("unsupported method")
            }
            Self::Status { status, .. } => *status == 404 || *status == 405,
            _ => false,
        }
    }

    /// Whether an `eth_getLogs` failure means the block span or result set is too large, so
    /// that a smaller span may work. Nodes word this differently; these are the known forms.
    pub fn is_range_too_large(&self) -> bool {
        let text = match self {
            Self::Node { message, .. } => message.to_ascii_lowercase(),
            Self::Status { body, status, .. } if *status == 413 || *status >= 500 => {
                body.to_ascii_lowercase()
            }
            Self::Malformed { message, .. } => message.to_ascii_lowercase(),
            _ => return false,
        };
        [
            "query returned more than",
            "more than 10000 results",
            "block range",
            "range too large",
            "range is too large",
            "too many",
            "limit exceeded",
            "exceed maximum block range",
            "response size",
            "too large",
            "log response size exceeded",
            "max results",
        ]
        .iter()
        .any(|p| text.contains(p))
    }
}

/// One call of a batch.
#[derive(Clone, Debug)]
pub struct Call {
    /// Method.
    pub method: &'static str,
    /// Params (a JSON array).
    pub params: serde_json::Value,
}

/// A JSON-RPC client. Cheap to clone.
#[derive(Clone)]
pub struct RpcClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    cfg: RpcConfig,
    permits: Semaphore,
    limiter: Option<DefaultDirectRateLimiter>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcClient")
            .field("url", &redact(&self.inner.cfg.url))
            .finish()
    }
}

/// The URL without credentials or query (API keys), for logs and errors.
pub fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_password(None);
            let _ = u.set_username("");
            u.set_query(None);
            let mut s = u.to_string();
            if let Some(seg) = u.path_segments().and_then(|mut s| s.next_back()) {
                // Keys embedded as the last path segment (`/v2/<key>`).
                if seg.len() >= 20
                    && seg
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    s = s.replace(seg, "***");
                }
            }
            s
        }
        Err(_) => "<invalid url>".to_owned(),
    }
}

impl RpcClient {
    /// Builds a client.
    pub fn new(cfg: RpcConfig) -> Result<Self, RpcError> {
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .pool_max_idle_per_host(cfg.concurrency.max(1))
            .tcp_nodelay(true)
            .build()
            .map_err(|source| RpcError::Transport {
                method: "connect".into(),
                what: redact(&cfg.url),
                source,
            })?;
        let limiter = cfg
            .rps
            .and_then(NonZeroU32::new)
            .map(|n| RateLimiter::direct(Quota::per_second(n)));
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                permits: Semaphore::new(cfg.concurrency.max(1)),
                limiter,
                next_id: AtomicU64::new(1),
                cfg,
            }),
        })
    }

    /// The node URL, redacted.
    pub fn url(&self) -> String {
        redact(&self.inner.cfg.url)
    }

    /// One call. `what` describes the request for errors (e.g. `block 17`).
    pub async fn call<P: Serialize, T: DeserializeOwned>(
        &self,
        method: &'static str,
        params: P,
        what: &str,
    ) -> Result<T, RpcError> {
        let params = serde_json::to_value(params).map_err(|e| RpcError::Malformed {
            method: method.into(),
            what: what.into(),
            message: format!("cannot encode params: {e}"),
        })?;
        let mut out = self.batch(&[Call { method, params }], what).await?;
        out.pop().ok_or_else(|| RpcError::Malformed {
            method: method.into(),
            what: what.into(),
            message: "empty response".into(),
        })
    }

    /// A batch of calls in one HTTP request; results in call order. A node error on any call
    /// fails the batch (with that call's method). Retries the whole batch when retryable.
    pub async fn batch<T: DeserializeOwned>(
        &self,
        calls: &[Call],
        what: &str,
    ) -> Result<Vec<T>, RpcError> {
        let Some(first) = calls.first() else {
            return Ok(Vec::new());
        };
        let method = first.method;
        let attempt = || async { self.batch_once::<T>(calls, what).await };
        attempt
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(self.inner.cfg.min_backoff)
                    .with_max_delay(Duration::from_secs(20))
                    .with_max_times(usize::try_from(self.inner.cfg.max_retries).unwrap_or(usize::MAX))
                    .with_jitter(),
            )
            .when(RpcError::is_retryable)
            .notify(|e, dur| {
                tracing::warn!(method, what, error = %e, retry_in_ms = dur.as_millis(), "retrying request");
            })
            .await
    }

    async fn batch_once<T: DeserializeOwned>(
        &self,
        calls: &[Call],
        what: &str,
    ) -> Result<Vec<T>, RpcError> {
        let method = calls.first().map(|c| c.method).unwrap_or("batch");
        let malformed = |m: &str, message: String| RpcError::Malformed {
            method: m.into(),
            what: what.into(),
            message,
        };
        let base = self.inner.next_id.fetch_add(
            u64::try_from(calls.len()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        let mut packet = RequestPacket::with_capacity(calls.len());
        for (i, c) in calls.iter().enumerate() {
            let id = base + u64::try_from(i).unwrap_or(u64::MAX);
            let req = Request::new(c.method, Id::Number(id), &c.params)
                .serialize()
                .map_err(|e| malformed(c.method, format!("cannot encode request: {e}")))?;
            packet.push(req);
        }
        let single = calls.len() == 1;
        let body = if single {
            match packet {
                RequestPacket::Batch(mut v) => {
                    v.pop().map(|r| r.into_serialized().get().to_owned())
                }
                RequestPacket::Single(r) => Some(r.into_serialized().get().to_owned()),
            }
            .unwrap_or_default()
        } else {
            packet
                .serialize()
                .map_err(|e| malformed(method, format!("cannot encode batch: {e}")))?
                .get()
                .to_owned()
        };
        if let Some(l) = &self.inner.limiter {
            l.until_n_ready(
                NonZeroU32::new(u32::try_from(calls.len()).unwrap_or(u32::MAX))
                    .unwrap_or(NonZeroU32::MIN),
            )
            .await
            .ok();
        }
        let queued = std::time::Instant::now();
        let bytes = {
            let _permit = self
                .inner
                .permits
                .acquire()
                .await
                .map_err(|_| malformed(method, "client closed".into()))?;
            let sent = std::time::Instant::now();
            let transport = |source| RpcError::Transport {
                method: method.into(),
                what: what.into(),
                source,
            };
            let resp = self
                .inner
                .http
                .post(&self.inner.cfg.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body)
                .send()
                .await
                .map_err(transport)?;
            let status = resp.status();
            let bytes = read_body(resp).await.map_err(transport)?;
            if !status.is_success() {
                let body: String = String::from_utf8_lossy(&bytes).chars().take(300).collect();
                return Err(RpcError::Status {
                    method: method.into(),
                    what: what.into(),
                    status: status.as_u16(),
                    body,
                });
            }
            tracing::trace!(
                method,
                what,
                wait_ms = sent.duration_since(queued).as_millis(),
                rtt_ms = sent.elapsed().as_millis(),
                bytes = bytes.len(),
                "rpc response"
            );
            bytes
        };
        let parse_started = std::time::Instant::now();
        // One typed pass over the body; only a failure is parsed again, untyped, to say why.
        let packet: ResponsePacket<T> = match serde_json::from_slice(&bytes) {
            Ok(p) => p,
            Err(e) => return Err(diagnose(&bytes, calls, what, e)),
        };
        tracing::trace!(
            method,
            what,
            parse_ms = parse_started.elapsed().as_millis(),
            "rpc parsed"
        );
        let responses = match packet {
            ResponsePacket::Single(r) => vec![r],
            ResponsePacket::Batch(v) => v,
        };
        if responses.len() != calls.len() {
            // A single error object for a batch request.
            if let [r] = responses.as_slice()
                && let ResponsePayload::Failure(err) = &r.payload
            {
                return Err(node_error(method, what, err));
            }
            return Err(malformed(
                method,
                format!("{} responses for {} calls", responses.len(), calls.len()),
            ));
        }
        let mut slots: Vec<Option<T>> = (0..calls.len()).map(|_| None).collect();
        for r in responses {
            let Id::Number(id) = r.id else {
                // An error object without a usable id (some nodes answer a failed request,
                // batch or not, with `"id": null`).
                if let ResponsePayload::Failure(err) = &r.payload {
                    return Err(node_error(method, what, err));
                }
                return Err(malformed(
                    method,
                    format!("response id {:?} is not a number", r.id),
                ));
            };
            let idx = id
                .checked_sub(base)
                .and_then(|i| usize::try_from(i).ok())
                .filter(|i| *i < calls.len())
                .ok_or_else(|| malformed(method, format!("unexpected response id {id}")))?;
            match r.payload {
                ResponsePayload::Success(v) => slots[idx] = Some(v),
                ResponsePayload::Failure(err) => {
                    return Err(node_error(calls[idx].method, what, &err));
                }
            }
        }
        slots
            .into_iter()
            .zip(calls)
            .map(|(v, c)| v.ok_or_else(|| malformed(c.method, "missing response".into())))
            .collect()
    }
}

/// The most bytes reserved up front for a body from its `Content-Length` (a larger body still
/// arrives whole, the buffer grows).
const MAX_BODY_RESERVE: u64 = 64 << 20;

/// Reads a response body into one buffer sized by its `Content-Length`: no list of chunks
/// copied into a second buffer at the end, no repeated growth (bodies of traces and logs are
/// megabytes).
async fn read_body(mut resp: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let reserve = resp.content_length().unwrap_or(0).min(MAX_BODY_RESERVE);
    let mut buf = Vec::with_capacity(usize::try_from(reserve).unwrap_or(0));
    while let Some(chunk) = resp.chunk().await? {
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// Explains a body that did not parse as the expected typed responses: a node error object
/// (for the whole batch or one call), or malformed JSON / a result of the wrong shape.
fn diagnose(bytes: &[u8], calls: &[Call], what: &str, typed: serde_json::Error) -> RpcError {
    let method = calls.first().map(|c| c.method).unwrap_or("batch");
    let malformed = |message: String| RpcError::Malformed {
        method: method.into(),
        what: what.into(),
        message,
    };
    match serde_json::from_slice::<ResponsePacket>(bytes) {
        Ok(packet) => {
            let responses = match packet {
                ResponsePacket::Single(r) => vec![r],
                ResponsePacket::Batch(v) => v,
            };
            for r in &responses {
                if let ResponsePayload::Failure(err) = &r.payload {
                    return node_error(method, what, err);
                }
            }
            malformed(format!("unexpected result: {typed}"))
        }
        Err(_) => malformed(format!("{typed} (response of {} bytes)", bytes.len())),
    }
}

fn node_error(method: &str, what: &str, err: &ErrorPayload) -> RpcError {
    RpcError::Node {
        method: method.into(),
        what: what.into(),
        code: err.code,
        message: err.message.to_string(),
        retry: err.is_retry_err(),
    }
}
