//! End-to-end tests of `paytrace labels ...` on the shared label files, including
//! `labels fetch ofac` against a local HTTP server serving the OFAC CSV set.

#![allow(clippy::unwrap_used)] // `unwrap` is allowed in tests only (project rule)

use serde_json::Value;
use std::{path::Path, process::Command};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DATA: &str = "../shared/data/labels";

fn paytrace(dir: &Path, args: &[&str]) -> (Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_paytrace"))
        .arg("--data-dir")
        .arg(dir)
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "paytrace {args:?} failed: {stderr}");
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not json ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    (v, stderr)
}

#[test]
fn import_show_list_sources_and_delisting() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = [
        "labels",
        "import",
        "--format",
        "csv",
        "--source",
        "ofac-eth",
        "--category",
        "sanctioned",
        "--chain",
        "ETH",
    ];
    let f2025 = format!("{DATA}/ofac/ofac-eth-2025-03-12.csv");
    let mut args = base.to_vec();
    args.extend(["--version", "2025-03-12", &f2025]);
    let (r, _) = paytrace(d, &args);
    for k in [
        "source",
        "version",
        "read",
        "imported",
        "duplicates",
        "rejected",
        "removed",
        "rejects",
    ] {
        assert!(r.get(k).is_some(), "key {k} in {r}");
    }
    assert_eq!(r["imported"], 156);
    assert_eq!(r["version"], "2025-03-12");

    let f2026 = format!("{DATA}/ofac/ofac-eth-2026-05.csv");
    let mut args = base.to_vec();
    args.extend(["--version", "2026-05-26", &f2026]);
    let (r, _) = paytrace(d, &args);
    assert_eq!(r["removed"], 92);
    assert_eq!(r["imported"], 33);

    let tornado = "0x8589427373d6d84e98730d7795d8f6f8731fda16";
    let (s, _) = paytrace(d, &["labels", "show", tornado, "--as-of", "2023-01-01"]);
    assert_eq!(s["address"], "0x8589427373D6D84E98730D7795D8f6f8731FDA16");
    assert_eq!(s["chain"], "evm");
    assert_eq!(s["as_of"], "2023-01-01");
    let l = s["labels"].as_array().unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0]["category"], "sanctioned");
    assert_eq!(l[0]["entity"], "TORNADO CASH");
    assert_eq!(l[0]["valid_from"], "2022-08-08");
    assert_eq!(l[0]["valid_to"], "2026-05-26");
    assert_eq!(l[0]["removed_in"], "2026-05-26");
    let (s, _) = paytrace(d, &["labels", "show", tornado, "--as-of", "2026-06-01"]);
    assert_eq!(s["labels"].as_array().unwrap().len(), 0);
    let (s, _) = paytrace(d, &["labels", "show", tornado, "--history"]);
    assert_eq!(s["labels"].as_array().unwrap().len(), 1);

    let (list, _) = paytrace(d, &["labels", "list", "--category", "sanctioned"]);
    assert_eq!(list.as_array().unwrap().len(), 97);
    let (list, _) = paytrace(d, &["labels", "list", "--source", "ofac-eth", "--all"]);
    assert_eq!(list.as_array().unwrap().len(), 156 + 33);

    let (src, _) = paytrace(d, &["labels", "sources"]);
    let src = src.as_array().unwrap();
    assert_eq!(src.len(), 1);
    assert_eq!(src[0]["name"], "ofac-eth");
    assert_eq!(src[0]["versions"].as_array().unwrap().len(), 2);
    assert_eq!(src[0]["versions"][1]["removed"], 92);

    // a tagpack, and an address of a currency paytrace does not index
    let (r, _) = paytrace(
        d,
        &[
            "labels",
            "import",
            "--format",
            "tagpack",
            &format!("{DATA}/tagpacks/ofac.yaml"),
        ],
    );
    assert_eq!(r["rejected"], 1);
    let rej = &r["rejects"][0];
    assert!(rej["file"].as_str().unwrap().ends_with("ofac.yaml"));
    assert_eq!(rej["line"], 1069);
    let ltc = list_first(d, "ofac", "ltc");
    let (s, _) = paytrace(d, &["labels", "show", &ltc, "--chain", "LTC"]);
    assert_eq!(s["labels"].as_array().unwrap().len(), 1);
}

fn list_first(d: &Path, source: &str, chain: &str) -> String {
    let (list, _) = paytrace(d, &["labels", "list", "--source", source]);
    list.as_array()
        .unwrap()
        .iter()
        .find(|l| l["chain"] == chain)
        .unwrap()["address"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn malformed_rows_are_reported_in_text_mode() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.csv");
    std::fs::write(
        &f,
        "address,category\n0x098b716b8aaf21512996dc57eb0615e2383e2f96,exchange\n0x123,exchange\n0x098b716b8aaf21512996dc57eb0615e2383e2f96,weird\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_paytrace"))
        .arg("--data-dir")
        .arg(dir.path().join("store"))
        .args(["labels", "import", "--format", "csv"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let outs = String::from_utf8_lossy(&out.stdout);
    assert!(err.contains("bad.csv:3: address \"0x123\""), "{err}");
    assert!(
        err.contains("bad.csv:4: unknown category \"weird\""),
        "{err}"
    );
    assert!(
        outs.contains("read 3, imported 1, duplicates 0, rejected 2"),
        "{outs}"
    );
}

/// Serves `/sdn.csv` and `/sdn_comments.csv` (the 2021 set) over HTTP/1.1 on 127.0.0.1.
async fn serve(listener: tokio::net::TcpListener) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match sock.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&req);
            let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
            let file = match path.as_str() {
                "/ofac/sdn.csv" => Some("sdn-2021.csv"),
                "/ofac/sdn_comments.csv" => Some("sdn_comments-2021.csv"),
                "/ofac/sdn_advanced.xml" => Some("sdn_advanced-excerpt.xml"),
                _ => None,
            };
            let (status, body) = match file {
                Some(f) => ("200 OK", std::fs::read(format!("{DATA}/ofac/{f}")).unwrap()),
                None => ("404 Not Found", b"not found".to_vec()),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: text/csv\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = sock.write_all(head.as_bytes()).await;
            let _ = sock.write_all(&body).await;
            let _ = sock.shutdown().await;
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_ofac_from_local_server() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(serve(listener));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_owned();
    let url = format!("http://127.0.0.1:{port}/ofac");
    let (r, _) = tokio::task::spawn_blocking({
        let d = d.clone();
        let url = url.clone();
        move || {
            paytrace(
                &d,
                &[
                    "labels",
                    "fetch",
                    "ofac",
                    "--url",
                    &url,
                    "--version",
                    "2021-07-07",
                ],
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(r["source"], "ofac-sdn");
    assert_eq!(r["read"], 97);
    assert_eq!(r["rejected"], 1);
    assert!(
        r["rejects"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("0xa7e5d5a720f06526557c513402f2e6b5fa20b00")
    );
    let (s, _) = tokio::task::spawn_blocking(move || {
        paytrace(
            &d,
            &["labels", "show", "1GqChmWqGtsaLrGbHfgdrV5Nkvahtjjuxr"],
        )
    })
    .await
    .unwrap();
    assert_eq!(s["chain"], "bitcoin");
    assert_eq!(s["labels"][0]["entity"], "SECONDEYE SOLUTION");
    assert_eq!(s["labels"][0]["category"], "sanctioned");
    // a missing file on the server is an error, and nothing is imported
    let d2 = tempfile::tempdir().unwrap();
    let out = tokio::task::spawn_blocking({
        let p = d2.path().to_owned();
        move || {
            Command::new(env!("CARGO_BIN_EXE_paytrace"))
                .arg("--data-dir")
                .arg(&p)
                .args(["labels", "fetch", "ofac", "--url"])
                .arg(format!("http://127.0.0.1:{port}/missing"))
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("404"));

    // the advanced XML, with the base URL from the config file's [labels] section
    let d3 = tempfile::tempdir().unwrap();
    let cfg = d3.path().join("paytrace.toml");
    std::fs::write(&cfg, format!("[labels]\nofac_url = \"{url}\"\n")).unwrap();
    let out = tokio::task::spawn_blocking({
        let p = d3.path().to_owned();
        move || {
            Command::new(env!("CARGO_BIN_EXE_paytrace"))
                .arg("--data-dir")
                .arg(p.join("data"))
                .arg("--config")
                .arg(&cfg)
                .args(["--json", "labels", "fetch", "ofac", "--format", "xml"])
                .env_remove("PAYTRACE_OFAC_URL")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["source"], "ofac-sdn");
    assert_eq!(
        (r["read"].as_u64(), r["imported"].as_u64()),
        (Some(1), Some(1))
    );
}
