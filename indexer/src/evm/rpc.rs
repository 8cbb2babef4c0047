//! A JSON-RPC client over HTTP: batching, bounded concurrency, retries with exponential
//! backoff and jitter, `Retry-After`, a per-request timeout and a total deadline per request,
//! and an optional requests-per-second limit.
//!
//! Envelopes are alloy's (`alloy-json-rpc`); transport is reqwest; backoff delays are
//! `backon`'s; the rate limit is `governor`'s. Errors carry the method and what was asked.
//!
//! Every failure that may go away by asking again is retried with the same backoff and
//! limits: transport errors, HTTP 408/429/5xx, rate-limit and internal (-32603) node errors,
//! and malformed, truncated or incomplete replies. A batch reply missing some of its
//! elements keeps the answered ones and asks again only for the missing calls.

use alloy_json_rpc::{ErrorPayload, Id, Request, RequestPacket, ResponsePacket, ResponsePayload};
use backon::{BackoffBuilder, ExponentialBuilder};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::{Serialize, de::DeserializeOwned};
use std::{
    num::NonZeroU32,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::sync::Semaphore;

/// The longest `Retry-After` honoured; a node asking for more is retried after this long.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Settings of an [`RpcClient`].
#[derive(Clone, Debug)]
pub struct RpcConfig {
    /// Node URL.
    pub url: String,
    /// HTTP requests in flight at once.
    pub concurrency: usize,
    /// Requests per second (none: unlimited).
    pub rps: Option<u32>,
    /// Per-request timeout (one HTTP exchange).
    pub timeout: Duration,
    /// Total time for one request, retries and waits included: past it the request fails
    /// with [`RpcError::Deadline`] naming the method and what was asked.
    pub deadline: Duration,
    /// Retries of a retryable failure.
    pub max_retries: u32,
    /// First backoff delay.
    pub min_backoff: Duration,
}

impl RpcConfig {
    /// Defaults for `url`: 8 in flight, no rate limit, 30 s per request, 60 s deadline,
    /// 8 retries from 100 ms.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            concurrency: 8,
            rps: None,
            timeout: Duration::from_secs(30),
            deadline: Duration::from_secs(60),
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
        /// The node's `Retry-After` (seconds or HTTP date), when it sent one.
        retry_after: Option<Duration>,
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
    /// The response is not the JSON expected (truncated, wrong shape, batch elements missing).
    #[error("{method} ({what}): malformed response: {message}")]
    Malformed {
        /// Method.
        method: String,
        /// What was asked.
        what: String,
        /// Parser message.
        message: String,
    },
    /// The request could not be encoded (a bug of the caller, never retried).
    #[error("{method} ({what}): cannot encode the request: {message}")]
    Encode {
        /// Method.
        method: String,
        /// What was asked.
        what: String,
        /// Serializer message.
        message: String,
    },
    /// No complete answer within the total deadline (a hung or failing node).
    #[error(
        "{method} ({what}): no complete answer within {}s ({attempts} attempts); last error: {last}",
        deadline.as_secs_f64()
    )]
    Deadline {
        /// Method.
        method: String,
        /// What was asked.
        what: String,
        /// The deadline that passed (or would have passed before the next attempt).
        deadline: Duration,
        /// Attempts made (the last one may have been cut by the deadline).
        attempts: u32,
        /// The last failure, or that the node did not answer.
        last: String,
    },
}

impl RpcError {
    /// Whether the same request may succeed later: connection failures, timeouts, HTTP 408,
    /// 429 and 5xx, node errors that mean "rate limited" or "internal error" (-32603),
    /// malformed or incomplete replies, and an exceeded deadline.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport { source, .. } => {
                source.is_timeout()
                    || source.is_connect()
                    || source.is_request()
                    || source.is_body()
                    || source.is_decode()
            }
            Self::Status { status, .. } => *status == 408 || *status == 429 || *status >= 500,
            Self::Node { retry, code, .. } => *retry || *code == -32603,
            Self::Malformed { .. } | Self::Deadline { .. } => true,
            Self::Encode { .. } => false,
        }
    }

    /// The wait the node asked for (`Retry-After` on a 429 or 503), capped at
    /// [`MAX_RETRY_AFTER`].
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status {
                retry_after: Some(d),
                ..
            } => Some((*d).min(MAX_RETRY_AFTER)),
            _ => None,
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

/// Parses a `Retry-After` header value: delay seconds, or an HTTP date (the wait until it,
/// zero when it has passed). `None` when it is neither.
pub fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(v)
        .ok()?;
    let wait = at.duration_since(now);
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
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
        let params = serde_json::to_value(params).map_err(|e| RpcError::Encode {
            method: method.into(),
            what: what.into(),
            message: format!("params: {e}"),
        })?;
        let mut out = self.batch(&[Call { method, params }], what).await?;
        out.pop().ok_or_else(|| RpcError::Malformed {
            method: method.into(),
            what: what.into(),
            message: "empty response".into(),
        })
    }

    /// A batch of calls in one HTTP request; results in call order.
    ///
    /// Retryable failures are retried with exponential backoff (or after the node's
    /// `Retry-After`), at most `max_retries` times and within the total `deadline`. Answered
    /// calls are kept: a retry asks only for the calls still unanswered (a reply missing
    /// elements, or elements failing with a retryable node error). A non-retryable node
    /// error on any call fails the batch (with that call's method).
    pub async fn batch<T: DeserializeOwned>(
        &self,
        calls: &[Call],
        what: &str,
    ) -> Result<Vec<T>, RpcError> {
        let Some(first) = calls.first() else {
            return Ok(Vec::new());
        };
        let method = first.method;
        let cfg = &self.inner.cfg;
        let started = Instant::now();
        let deadline = started + cfg.deadline;
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(cfg.min_backoff)
            .with_max_delay(Duration::from_secs(20))
            .with_max_times(usize::try_from(cfg.max_retries).unwrap_or(usize::MAX))
            .with_jitter()
            .build();
        let mut slots: Vec<Option<T>> = (0..calls.len()).map(|_| None).collect();
        let mut attempts = 0u32;
        let mut last: Option<RpcError> = None;
        let past_deadline = |attempts: u32, last: Option<&RpcError>| RpcError::Deadline {
            method: method.into(),
            what: what.into(),
            deadline: cfg.deadline,
            attempts,
            last: last.map_or_else(|| "no answer".to_owned(), ToString::to_string),
        };
        loop {
            let pending: Vec<usize> = slots
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.is_none().then_some(i))
                .collect();
            if pending.is_empty() {
                break;
            }
            let sub: Vec<&Call> = pending.iter().map(|&i| &calls[i]).collect();
            let remaining = deadline.saturating_duration_since(Instant::now());
            attempts = attempts.saturating_add(1);
            let err =
                match tokio::time::timeout(remaining, self.batch_once::<T>(&sub, what, remaining))
                    .await
                {
                    Err(_) => return Err(past_deadline(attempts, last.as_ref())),
                    Ok(Err(e)) => e,
                    Ok(Ok(partial)) => {
                        let asked = pending.len();
                        let mut unanswered = 0usize;
                        for (i, got) in pending.into_iter().zip(partial.got) {
                            match got {
                                Some(v) => slots[i] = Some(v),
                                None => unanswered += 1,
                            }
                        }
                        match partial.err {
                            Some(e) => e,
                            None if unanswered == 0 => continue,
                            None => RpcError::Malformed {
                                method: method.into(),
                                what: what.into(),
                                message: format!("{unanswered} of {asked} calls unanswered"),
                            },
                        }
                    }
                };
            if !err.is_retryable() {
                return Err(err);
            }
            let Some(delay) = backoff.next() else {
                return Err(err);
            };
            let delay = err.retry_after().unwrap_or(delay);
            if Instant::now() + delay >= deadline {
                return Err(past_deadline(attempts, Some(&err)));
            }
            tracing::warn!(
                method,
                what,
                attempt = attempts,
                error = %err,
                retry_in_ms = delay.as_millis(),
                retry_after = err.retry_after().is_some(),
                "retrying request"
            );
            tokio::time::sleep(delay).await;
            last = Some(err);
        }
        Ok(slots.into_iter().flatten().collect())
    }

    /// One HTTP exchange for `calls`. Answers come back in call order, `None` for a call the
    /// reply does not answer; `err` is a retryable node error of some element (its call is
    /// unanswered). Other failures are the `Err`.
    async fn batch_once<T: DeserializeOwned>(
        &self,
        calls: &[&Call],
        what: &str,
        timeout: Duration,
    ) -> Result<Partial<T>, RpcError> {
        let method = calls.first().map(|c| c.method).unwrap_or("batch");
        let malformed = |m: &str, message: String| RpcError::Malformed {
            method: m.into(),
            what: what.into(),
            message,
        };
        let encode = |m: &str, message: String| RpcError::Encode {
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
                .map_err(|e| encode(c.method, format!("request: {e}")))?;
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
                .map_err(|e| encode(method, format!("batch: {e}")))?
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
        let queued = Instant::now();
        let bytes = {
            let _permit = self
                .inner
                .permits
                .acquire()
                .await
                .map_err(|_| malformed(method, "client closed".into()))?;
            let sent = Instant::now();
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
                .timeout(
                    timeout
                        .min(self.inner.cfg.timeout)
                        .max(Duration::from_millis(1)),
                )
                .body(body)
                .send()
                .await
                .map_err(transport)?;
            let status = resp.status();
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, jiff::Timestamp::now()));
            let bytes = read_body(resp).await.map_err(transport)?;
            if !status.is_success() {
                let body: String = String::from_utf8_lossy(&bytes).chars().take(300).collect();
                return Err(RpcError::Status {
                    method: method.into(),
                    what: what.into(),
                    status: status.as_u16(),
                    body,
                    retry_after,
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
        let parse_started = Instant::now();
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
        let mut got: Vec<Option<T>> = (0..calls.len()).map(|_| None).collect();
        let mut err = None;
        for r in responses {
            let Id::Number(id) = r.id else {
                // An error object without a usable id (some nodes answer a failed request,
                // batch or not, with `"id": null`).
                if let ResponsePayload::Failure(e) = &r.payload {
                    return Err(node_error(method, what, e));
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
                ResponsePayload::Success(v) => got[idx] = Some(v),
                ResponsePayload::Failure(e) => {
                    let e = node_error(calls[idx].method, what, &e);
                    if !e.is_retryable() {
                        return Err(e);
                    }
                    err.get_or_insert(e);
                }
            }
        }
        Ok(Partial { got, err })
    }
}

/// What one exchange answered (see [`RpcClient::batch_once`]).
struct Partial<T> {
    got: Vec<Option<T>>,
    err: Option<RpcError>,
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
fn diagnose(bytes: &[u8], calls: &[&Call], what: &str, typed: serde_json::Error) -> RpcError {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::{MAX_RETRY_AFTER, RpcError, parse_retry_after};
    use std::time::Duration;

    #[test]
    fn retry_after_in_seconds_or_http_date() {
        let now: jiff::Timestamp = "2026-12-07T18:00:00Z".parse().unwrap();
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Mon, 07 Dec 2026 18:00:05 GMT", now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            parse_retry_after("Mon, 07 Dec 2026 17:59:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past: no wait"
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
        let long = RpcError::Status {
            method: "eth_getLogs".into(),
            what: "blocks 1..=2".into(),
            status: 429,
            body: String::new(),
            retry_after: Some(Duration::from_secs(3_600)),
        };
        assert_eq!(long.retry_after(), Some(MAX_RETRY_AFTER), "capped");
    }

    #[test]
    fn malformed_and_incomplete_replies_are_retryable() {
        let m = |message: &str| RpcError::Malformed {
            method: "trace_block".into(),
            what: "blocks 84..=93".into(),
            message: message.into(),
        };
        assert!(m("EOF while parsing a list at line 1 column 4096").is_retryable());
        assert!(m("1 of 10 calls unanswered").is_retryable());
        let node = |code: i64, message: &str| RpcError::Node {
            method: "trace_block".into(),
            what: "block 7".into(),
            code,
            message: message.into(),
            retry: false,
        };
        assert!(node(-32603, "internal error").is_retryable());
        assert!(!node(-32000, "genesis is not traceable").is_retryable());
        assert!(!node(-32601, "method not found").is_retryable());
        assert!(
            !RpcError::Encode {
                method: "eth_call".into(),
                what: "x".into(),
                message: "bad".into(),
            }
            .is_retryable()
        );
        let status = |status: u16| RpcError::Status {
            method: "eth_blockNumber".into(),
            what: "head".into(),
            status,
            body: String::new(),
            retry_after: None,
        };
        assert!(status(429).is_retryable() && status(503).is_retryable());
        assert!(status(408).is_retryable());
        assert!(!status(400).is_retryable() && !status(401).is_retryable());
        let d = RpcError::Deadline {
            method: "eth_getBlockByNumber".into(),
            what: "blocks 10..=19".into(),
            deadline: Duration::from_secs(60),
            attempts: 2,
            last: "no answer".into(),
        };
        assert_eq!(
            d.to_string(),
            "eth_getBlockByNumber (blocks 10..=19): no complete answer within 60s (2 attempts); \
             last error: no answer"
        );
    }
}
