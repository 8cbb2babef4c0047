//! A mock Bitcoin Core node and Esplora server for tests (feature `test-utils`).
//!
//! No bitcoind can run on the test machines, so the RPC tests replay either real recorded
//! answers (the bitcoin-etl `rpc_response_*.json` files) or generated blocks through this small
//! HTTP server. It speaks JSON-RPC (single and batch) for `getblockcount`, `getblockhash`,
//! `getblock` (verbosity 0 from generated blocks, 2 from recordings) and `getrawtransaction`,
//! and answers `GET` paths from a table (Esplora REST). It can require HTTP basic auth, slow
//! down answers, and serve broken answers.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)] // test support only

use bitcoin::{Block, Transaction, consensus::encode::serialize_hex};
use serde_json::{Value, json};
use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// A broken answer to serve instead of the real one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A JSON-RPC error for `getblock`.
    GetblockError,
    /// `getblock` answers hex that is not a block.
    BadHex,
}

/// What the node knows.
#[derive(Default)]
pub struct MockState {
    /// The best chain, by height.
    pub blocks: Vec<Block>,
    /// Transactions for `getrawtransaction`.
    pub txs: HashMap<String, Transaction>,
    /// Recorded answers keyed by `method` + params JSON (e.g. `getblock["<hash>",2]`).
    pub recorded: HashMap<String, Value>,
    /// `GET` answers by path.
    pub rest: HashMap<String, String>,
    /// Required `Authorization` header value.
    pub auth: Option<String>,
    /// Delay before each answer.
    pub delay: Duration,
    /// A fault to serve.
    pub fault: Option<Fault>,
    /// The next this many JSON-RPC answers are cut in half (a complete HTTP message whose
    /// JSON body is truncated).
    pub truncate_next: u32,
    /// Requests served.
    pub requests: u64,
    /// `GET` paths asked, in order.
    pub gets: Vec<String>,
}

impl MockState {
    /// Loads `rpc_response_*.json` recordings of a bitcoin-etl test folder.
    pub fn load_recordings(&mut self, dir: &Path) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let Some(rest) = name
                .strip_prefix("rpc_response_")
                .and_then(|r| r.strip_suffix(".json"))
            else {
                continue;
            };
            let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            let key = if let Some(h) = rest.strip_prefix("getblockhash_") {
                format!("getblockhash[{h}]")
            } else if rest == "getblockcount" {
                "getblockcount[]".to_owned()
            } else if let Some(r) = rest.strip_prefix("getblock_") {
                let (hash, verb) = r.split_once('_').unwrap();
                if verb == "None" {
                    continue;
                }
                format!("getblock[\"{hash}\",{verb}]")
            } else if let Some(t) = rest.strip_prefix("getrawtransaction_") {
                format!("getrawtransaction[\"{t}\",true]")
            } else {
                continue;
            };
            self.recorded.insert(key, v);
        }
    }

    /// A node whose best chain is `blocks` (their transactions served by `getrawtransaction`).
    pub fn with_blocks(blocks: Vec<Block>) -> Self {
        let mut s = Self {
            blocks,
            ..Self::default()
        };
        s.index_txs();
        s
    }

    /// Makes the generated blocks' transactions available to `getrawtransaction`.
    pub fn index_txs(&mut self) {
        for b in &self.blocks {
            for t in &b.txdata {
                self.txs.insert(t.compute_txid().to_string(), t.clone());
            }
        }
    }

    fn answer(&self, method: &str, params: &Value) -> Result<Value, (i64, String)> {
        let key = format!("{method}{}", serde_json::to_string(params).unwrap());
        if let Some(v) = self.recorded.get(&key) {
            return Ok(v.clone());
        }
        let p = |i: usize| params.get(i).cloned().unwrap_or(Value::Null);
        match method {
            "getblockcount" if !self.blocks.is_empty() => Ok(json!(self.blocks.len() - 1)),
            "getblockhash" => {
                let h = p(0).as_u64().and_then(|h| usize::try_from(h).ok());
                match h.and_then(|h| self.blocks.get(h)) {
                    Some(b) => Ok(json!(b.block_hash().to_string())),
                    None => Err((-8, "Block height out of range".into())),
                }
            }
            "getblock" => {
                if self.fault == Some(Fault::GetblockError) {
                    return Err((-1, "internal error (injected)".into()));
                }
                let hash = p(0).as_str().unwrap_or_default().to_owned();
                let verbosity = p(1).as_u64().unwrap_or(1);
                let block = self
                    .blocks
                    .iter()
                    .find(|b| b.block_hash().to_string() == hash);
                match (block, verbosity) {
                    (Some(_), 0) if self.fault == Some(Fault::BadHex) => Ok(json!("00zz")),
                    (Some(b), 0) => Ok(json!(serialize_hex(b))),
                    _ => Err((-8, format!("not recorded: getblock {hash} {verbosity}"))),
                }
            }
            "getrawtransaction" => {
                let id = p(0).as_str().unwrap_or_default().to_owned();
                match self.txs.get(&id) {
                    Some(t) => Ok(json!({ "txid": id, "hex": serialize_hex(t) })),
                    None => Err((-5, "No such mempool or blockchain transaction".into())),
                }
            }
            _ => Err((-32601, format!("Method not found: {method}"))),
        }
    }
}

/// A running mock node; stops when dropped.
pub struct MockNode {
    /// Base URL (`http://127.0.0.1:PORT/`).
    pub url: String,
    /// Shared state (change it to change the chain).
    pub state: Arc<Mutex<MockState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockNode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockNode {
    /// Starts a node serving `state` on a free local port.
    pub async fn start(state: MockState) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(state));
        let st = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let st = Arc::clone(&st);
                tokio::spawn(async move {
                    let _ = serve(sock, st).await;
                });
            }
        });
        Self { url, state, task }
    }

    /// Replaces the chain (e.g. with a reorganised one).
    pub fn set_blocks(&self, blocks: Vec<Block>) {
        let mut s = self.state.lock().unwrap();
        s.blocks = blocks;
        s.index_txs();
    }
}

async fn serve(mut sock: TcpStream, st: Arc<Mutex<MockState>>) -> std::io::Result<()> {
    loop {
        let Some((head, body)) = read_request(&mut sock).await? else {
            return Ok(());
        };
        let (delay, auth) = {
            let mut s = st.lock().unwrap();
            s.requests += 1;
            (s.delay, s.auth.clone())
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let head_l = head.to_ascii_lowercase();
        let (status, out) = if let Some(a) =
            auth.filter(|a| !head_l.contains(&format!("authorization: {}", a.to_ascii_lowercase())))
        {
            let _ = a;
            ("401 Unauthorized", String::new())
        } else if head.starts_with("GET ") {
            let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
            let mut s = st.lock().unwrap();
            s.gets.push(path.clone());
            match s.rest.get(&path) {
                Some(b) => ("200 OK", b.clone()),
                None => ("404 Not Found", format!("no mock answer for {path}")),
            }
        } else {
            let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let mut s = st.lock().unwrap();
            let truncate = s.truncate_next > 0;
            if truncate {
                s.truncate_next -= 1;
            }
            let one = |r: &Value| {
                let id = r.get("id").cloned().unwrap_or(Value::Null);
                let method = r.get("method").and_then(Value::as_str).unwrap_or_default();
                let params = r.get("params").cloned().unwrap_or(json!([]));
                match s.answer(method, &params) {
                    Ok(v) => json!({"jsonrpc": "2.0", "id": id, "result": v}),
                    Err((code, message)) => {
                        json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
                    }
                }
            };
            let v = match &req {
                Value::Array(rs) => Value::Array(rs.iter().map(one).collect()),
                r => one(r),
            };
            let mut text = v.to_string();
            if truncate {
                let mut cut = text.len() / 2;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
            }
            ("200 OK", text)
        };
        let resp = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{out}",
            out.len()
        );
        sock.write_all(resp.as_bytes()).await?;
    }
}

async fn read_request(sock: &mut TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    let end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = buf[end..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&tmp[..n]);
    }
    Ok(Some((head, body)))
}

/// The `Authorization` header value of HTTP basic auth.
pub fn basic_auth(user: &str, pass: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{user}:{pass}").into_bytes();
    let mut out = String::new();
    for c in input.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= c.len() {
                out.push(char::from(T[usize::try_from((n >> shift) & 63).unwrap()]));
            } else {
                out.push('=');
            }
        }
    }
    format!("Basic {out}")
}

#[test]
fn basic_auth_encoding() {
    assert_eq!(
        basic_auth("Aladdin", "open sesame"),
        "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    );
}
