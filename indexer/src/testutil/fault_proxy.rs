//! A fault-injecting JSON-RPC proxy for tests: it sits in front of a real node (anvil) and,
//! as configured, truncates reply bodies, closes connections without an answer, drops
//! elements of batch replies, answers HTTP 429 with `Retry-After`, fails calls of a method
//! with a node error, hangs, or emulates geth's tracing API.
//!
//! Geth emulation: `trace_block` does not exist (`-32601`), `debug_traceBlockByNumber` of
//! block 0 fails with `-32000 genesis is not traceable`, and every other call (including
//! other `debug_traceBlockByNumber` calls, which anvil answers with geth's `callTracer`
//! format) goes to the node.
//!
//! The proxy runs on its own thread and runtime, so that a test may block on a child process
//! while the proxy serves it. Faults are chosen by a seeded generator: runs are repeatable.

use super::{Result, TestUtilError};
use http_body_util::{BodyExt, Full};
use hyper::{
    Request, Response, StatusCode,
    body::{Bytes, Incoming},
    header,
};
use serde_json::{Value, json};
use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

/// What the proxy does to the requests passing through. Shares are in percent (0-100) and
/// drawn independently for each request (or batch element).
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Replies whose JSON body is cut in half (the HTTP message itself is complete).
    pub truncate_pct: u32,
    /// Requests whose connection is closed without an answer.
    pub reset_pct: u32,
    /// Elements removed from batch replies (of batches of two calls or more).
    pub drop_element_pct: u32,
    /// The next this many requests are answered `429 Too Many Requests`.
    pub rate_limited: u32,
    /// The `Retry-After` header sent with those 429 answers (e.g. `"2"` or an HTTP date).
    pub retry_after: Option<String>,
    /// Node errors: the next `count` calls of `method` fail with `code` and `message`.
    pub fail_calls: Vec<FailCalls>,
    /// Never answer (until the proxy is dropped or `hang` is turned off for new requests).
    pub hang: bool,
    /// Emulate geth's tracing API (see the module documentation).
    pub geth: bool,
    /// Fault only calls of these methods (the first call of a request decides); empty: all.
    pub only_methods: Vec<String>,
}

/// The next `count` calls of `method` fail with a JSON-RPC error.
#[derive(Clone, Debug)]
pub struct FailCalls {
    /// The method.
    pub method: String,
    /// Calls left to fail.
    pub count: u32,
    /// JSON-RPC error code (e.g. -32603).
    pub code: i64,
    /// Error message.
    pub message: String,
}

/// A fault the proxy injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Body cut in half.
    Truncated,
    /// Connection closed without an answer.
    Reset,
    /// Batch elements removed (how many).
    Dropped(usize),
    /// Answered 429.
    RateLimited,
    /// A call failed with a configured node error.
    NodeError,
    /// Never answered.
    Hung,
}

/// One request seen by the proxy.
#[derive(Clone, Debug)]
pub struct Seen {
    /// When it arrived.
    pub at: Instant,
    /// The methods of its calls, in order.
    pub methods: Vec<String>,
    /// The fault injected, if any.
    pub fault: Option<Fault>,
}

struct State {
    faults: Faults,
    seen: Vec<Seen>,
    rng: u64,
}

impl State {
    /// A uniform draw in 0..100 (splitmix64).
    fn pct(&mut self) -> u32 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        u32::try_from(z % 100).unwrap_or(0)
    }

    fn roll(&mut self, pct: u32) -> bool {
        pct > 0 && self.pct() < pct
    }
}

struct Shared {
    upstream: String,
    http: reqwest::Client,
    state: Mutex<State>,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    url: String,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("url", &self.url)
            .finish()
    }
}

impl FaultProxy {
    /// Starts a proxy of the JSON-RPC node at `upstream` on a free loopback port, with no
    /// faults and fault generator seed `seed`.
    pub fn start(upstream: &str, seed: u64) -> Result<Self> {
        let err = TestUtilError::Proxy;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(err)?;
        listener.set_nonblocking(true).map_err(err)?;
        let addr: SocketAddr = listener.local_addr().map_err(err)?;
        let http = reqwest::Client::builder()
            .build()
            .map_err(|source| TestUtilError::Http {
                method: "fault proxy".into(),
                source,
            })?;
        let shared = Arc::new(Shared {
            upstream: upstream.to_owned(),
            http,
            state: Mutex::new(State {
                faults: Faults::default(),
                seen: Vec::new(),
                rng: seed,
            }),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(err)?;
        let serving = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("fault-proxy".into())
            .spawn(move || {
                rt.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    let mut conns = tokio::task::JoinSet::new();
                    tokio::pin!(stopped);
                    loop {
                        tokio::select! {
                            _ = &mut stopped => break,
                            accepted = listener.accept() => {
                                let Ok((stream, _)) = accepted else { continue };
                                let shared = Arc::clone(&serving);
                                conns.spawn(async move {
                                    let svc = hyper::service::service_fn(move |req| {
                                        let shared = Arc::clone(&shared);
                                        async move { handle(&shared, req).await }
                                    });
                                    let _ = hyper::server::conn::http1::Builder::new()
                                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                                        .await;
                                });
                            }
                        }
                    }
                    conns.abort_all();
                });
            })
            .map_err(err)?;
        Ok(Self {
            url: format!("http://{addr}"),
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The proxy's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Replaces the faults (requests in progress keep theirs).
    pub fn set(&self, faults: Faults) {
        self.shared.state().faults = faults;
    }

    /// Changes the faults in place.
    pub fn update(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut self.shared.state().faults);
    }

    /// The requests seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.state().seen.clone()
    }

    /// How many of the requests seen so far got fault `pred`.
    pub fn count(&self, pred: impl Fn(&Fault) -> bool) -> usize {
        self.shared
            .state()
            .seen
            .iter()
            .filter(|s| s.fault.as_ref().is_some_and(&pred))
            .count()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Why a connection is closed without an answer (hyper drops it on a service error).
#[derive(Debug, thiserror::Error)]
#[error("connection reset by the fault proxy")]
struct ResetConnection;

fn reply(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

fn rpc_error(id: &Value, code: i64, message: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } })
}

/// The geth answer to `call` when it differs from anvil's.
fn geth_answer(call: &Value) -> Option<Value> {
    let id = call.get("id").cloned().unwrap_or(Value::Null);
    match call.get("method").and_then(Value::as_str) {
        Some("trace_block") => Some(rpc_error(
            &id,
            -32601,
            "the method trace_block does not exist/is not available",
        )),
        Some("debug_traceBlockByNumber") => {
            let block = call.pointer("/params/0").and_then(Value::as_str);
            matches!(block, Some("0x0" | "0x00" | "earliest"))
                .then(|| rpc_error(&id, -32000, "genesis is not traceable"))
        }
        _ => None,
    }
}

async fn handle(
    shared: &Shared,
    req: Request<Incoming>,
) -> std::result::Result<Response<Full<Bytes>>, ResetConnection> {
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(ResetConnection),
    };
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (calls, is_batch) = match parsed {
        Value::Array(v) => (v, true),
        v @ Value::Object(_) => (vec![v], false),
        _ => {
            return Ok(reply(
                StatusCode::BAD_REQUEST,
                br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}"#
                    .to_vec(),
            ));
        }
    };
    let methods: Vec<String> = calls
        .iter()
        .map(|c| {
            c.get("method")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        })
        .collect();

    // Decide the request-level faults under the lock, then act without it.
    let (faults, hang, rate_limited, reset, eligible, failing, seen_idx) = {
        let mut st = shared.state();
        let faults = st.faults.clone();
        let eligible = faults.only_methods.is_empty()
            || methods
                .first()
                .is_some_and(|m| faults.only_methods.contains(m));
        let hang = eligible && faults.hang;
        let rate_limited = eligible && !hang && st.faults.rate_limited > 0;
        if rate_limited {
            st.faults.rate_limited -= 1;
        }
        let reset = eligible && !hang && !rate_limited && st.roll(faults.reset_pct);
        // Node errors of configured methods.
        let mut failing: Vec<Option<(i64, String)>> = vec![None; calls.len()];
        if !hang && !rate_limited && !reset {
            for (i, m) in methods.iter().enumerate() {
                if let Some(f) = st
                    .faults
                    .fail_calls
                    .iter_mut()
                    .find(|f| &f.method == m && f.count > 0)
                {
                    f.count -= 1;
                    failing[i] = Some((f.code, f.message.clone()));
                }
            }
        }
        let fault = if hang {
            Some(Fault::Hung)
        } else if rate_limited {
            Some(Fault::RateLimited)
        } else if reset {
            Some(Fault::Reset)
        } else if failing.iter().any(Option::is_some) {
            Some(Fault::NodeError)
        } else {
            None
        };
        let seen_idx = st.seen.len();
        st.seen.push(Seen {
            at: Instant::now(),
            methods: methods.clone(),
            fault,
        });
        (
            faults,
            hang,
            rate_limited,
            reset,
            eligible,
            failing,
            seen_idx,
        )
    };
    if hang {
        tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
        return Err(ResetConnection);
    }
    if rate_limited {
        let mut r = reply(
            StatusCode::TOO_MANY_REQUESTS,
            br#"{"jsonrpc":"2.0","id":null,"error":{"code":429,"message":"too many requests"}}"#
                .to_vec(),
        );
        if let Some(v) = faults
            .retry_after
            .as_deref()
            .and_then(|v| header::HeaderValue::from_str(v).ok())
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Ok(r);
    }
    if reset {
        return Err(ResetConnection);
    }

    // Answers made here (geth emulation, configured node errors); the rest go upstream.
    let mut answers: Vec<Option<Value>> = calls
        .iter()
        .zip(&failing)
        .map(|(c, f)| {
            let id = c.get("id").cloned().unwrap_or(Value::Null);
            match f {
                Some((code, message)) => Some(rpc_error(&id, *code, message)),
                None if faults.geth => geth_answer(c),
                None => None,
            }
        })
        .collect();
    let forward: Vec<&Value> = calls
        .iter()
        .zip(&answers)
        .filter_map(|(c, a)| a.is_none().then_some(c))
        .collect();
    if !forward.is_empty() {
        let body = if is_batch {
            json!(forward)
        } else {
            forward[0].clone()
        };
        let upstream = shared
            .http
            .post(&shared.upstream)
            .json(&body)
            .send()
            .await
            .map_err(|_| ResetConnection)?;
        let got: Value = upstream.json().await.map_err(|_| ResetConnection)?;
        let got = match got {
            Value::Array(v) => v,
            v => vec![v],
        };
        // Upstream answers by id.
        for g in got {
            let id = g.get("id").cloned().unwrap_or(Value::Null);
            if let Some(slot) = calls
                .iter()
                .zip(answers.iter_mut())
                .find(|(c, a)| a.is_none() && c.get("id") == Some(&id))
                .map(|(_, a)| a)
            {
                *slot = Some(g);
            }
        }
    }
    let mut out: Vec<Value> = answers.into_iter().flatten().collect();

    // Reply-level faults.
    let mut fault = None;
    let truncate;
    {
        let mut st = shared.state();
        if eligible && is_batch && out.len() >= 2 && faults.drop_element_pct > 0 {
            let before = out.len();
            out.retain(|_| !st.roll(faults.drop_element_pct));
            if out.len() < before {
                fault = Some(Fault::Dropped(before - out.len()));
            }
        }
        truncate = eligible && st.roll(faults.truncate_pct);
        if truncate {
            fault = Some(Fault::Truncated);
        }
        if let (Some(f), Some(seen)) = (fault, st.seen.get_mut(seen_idx)) {
            seen.fault = Some(f);
        }
    }
    let mut bytes = if is_batch {
        serde_json::to_vec(&out)
    } else {
        serde_json::to_vec(&out.into_iter().next().unwrap_or(Value::Null))
    }
    .unwrap_or_default();
    if truncate {
        bytes.truncate(bytes.len() / 2);
    }
    Ok(reply(StatusCode::OK, bytes))
}
