//! Bad input from the node: unreachable node, truncated responses, JSON-RPC errors, HTTP 5xx,
//! wrongly shaped results. Each gives a clear error naming the method (and range) and never a
//! panic, and the store keeps everything it had.
//!
//! A real anvil serves the chain. Anvil cannot be made to send broken answers, so a small
//! corrupting HTTP proxy written here sits between paytrace and anvil: this is the one place a
//! mock is used, because no real node misbehaves on demand.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use common::{CHAIN, index_cmd, paytrace, read_store, standard_chain};
use serde_json::{Value, json};
use std::{
    process::Output,
    sync::{Arc, Mutex},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// What the proxy does to requests that call `method`.
#[derive(Clone, Debug)]
enum Fault {
    /// Pass everything through.
    None,
    /// Cut the node's answer in half.
    Truncate(&'static str),
    /// Answer with a JSON-RPC error object.
    NodeError(&'static str),
    /// Answer HTTP 500.
    Http500(&'static str),
    /// Answer every call of the batch with a result of the wrong shape.
    WrongShape(&'static str),
}

async fn proxy(upstream: String, fault: Arc<Mutex<Fault>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = reqwest::Client::new();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let client = client.clone();
            let upstream = upstream.clone();
            let fault = fault.lock().unwrap().clone();
            tokio::spawn(async move {
                let Some(body) = read_request(&mut sock).await else {
                    return;
                };
                let text = String::from_utf8_lossy(&body).to_string();
                let hits = |m: &str| text.contains(&format!("\"method\":\"{m}\""));
                let (status, reply): (u16, Vec<u8>) = match fault {
                    Fault::Http500(m) if hits(m) => (500, b"internal error".to_vec()),
                    Fault::NodeError(m) if hits(m) => (
                        200,
                        json!({"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"boom"}})
                            .to_string()
                            .into_bytes(),
                    ),
                    Fault::WrongShape(m) if hits(m) => {
                        let req: Value = serde_json::from_slice(&body).unwrap();
                        let one = |r: &Value| json!({"jsonrpc":"2.0","id":r["id"],"result":{"number":"0xzz"}});
                        let v = match &req {
                            Value::Array(a) => Value::Array(a.iter().map(one).collect()),
                            r => one(r),
                        };
                        (200, v.to_string().into_bytes())
                    }
                    f => {
                        let resp = client
                            .post(&upstream)
                            .header("content-type", "application/json")
                            .body(body)
                            .send()
                            .await
                            .unwrap();
                        let mut bytes = resp.bytes().await.unwrap().to_vec();
                        if let Fault::Truncate(m) = f
                            && hits(m)
                        {
                            bytes.truncate(bytes.len() / 2);
                        }
                        (200, bytes)
                    }
                };
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    reply.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&reply).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = sock.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Some(buf[end + 4..end + 4 + len].to_vec());
        }
    }
}

fn run_fail(out: Output, must_contain: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure; stderr:\n{stderr}");
    assert_eq!(out.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(
        !stderr.contains("panicked"),
        "panic on bad input:\n{stderr}"
    );
    for s in must_contain {
        assert!(stderr.contains(s), "stderr lacks {s:?}:\n{stderr}");
    }
}

#[tokio::test]
async fn unreachable_node_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = paytrace(dir.path())
        .args([
            "index",
            "evm",
            "--chain",
            CHAIN,
            "--rpc",
            "http://127.0.0.1:9",
            "--max-retries",
            "0",
        ])
        .output()
        .unwrap();
    run_fail(
        out,
        &["transport error", "connecting to the node of chain \"dev\""],
    );
}

// The proxy runs on the runtime while the test thread blocks on the paytrace process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_answers_fail_clearly_and_keep_the_store() {
    let (anvil, generator) = standard_chain().await;
    let head = generator.head().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A good partial index first: blocks 0..=10.
    let out = index_cmd(dir.path(), anvil.url(), 10, &[])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, before, cp) = read_store(dir.path());
    assert_eq!(cp.map(|b| b.0), Some(10));

    let fault = Arc::new(Mutex::new(Fault::None));
    let url = proxy(anvil.url().to_owned(), Arc::clone(&fault)).await;
    let cases: Vec<(Fault, Vec<&str>)> = vec![
        (
            Fault::Truncate("eth_getLogs"),
            vec!["eth_getLogs", "malformed response", "blocks 11..="],
        ),
        (
            Fault::Truncate("eth_getBlockByNumber"),
            vec!["eth_getBlockByNumber", "malformed response"],
        ),
        (
            Fault::NodeError("trace_block"),
            vec!["trace_block", "node error -32000: boom"],
        ),
        (
            Fault::Http500("eth_getBlockByNumber"),
            vec!["eth_getBlockByNumber", "http status 500"],
        ),
        (
            Fault::WrongShape("eth_getBlockByNumber"),
            vec!["eth_getBlockByNumber", "malformed response"],
        ),
    ];
    for (f, expect) in cases {
        *fault.lock().unwrap() = f.clone();
        let out = paytrace(dir.path())
            .args([
                "index",
                "evm",
                "--chain",
                CHAIN,
                "--rpc",
                &url,
                "--to",
                &head.to_string(),
            ])
            .args(["--max-retries", "0", "--trace-mode", "parity"])
            .output()
            .unwrap();
        run_fail(out, &expect);
        let (_, now, cp) = read_store(dir.path());
        assert_eq!(cp.map(|b| b.0), Some(10), "checkpoint moved after {f:?}");
        assert_eq!(now, before, "store changed after {f:?}");
    }

    // The same store then completes through the proxy once it behaves.
    *fault.lock().unwrap() = Fault::None;
    let out = index_cmd(dir.path(), &url, head, &[]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (chain, all, _) = read_store(dir.path());
    common::assert_transfers_eq(&all, &generator.expected(chain));
}
