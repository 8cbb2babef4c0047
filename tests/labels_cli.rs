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

/// Runs paytrace expecting a failure: (exit code, stderr).
fn paytrace_fails(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_paytrace"))
        .arg("--data-dir")
        .arg(dir)
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "paytrace {args:?} succeeded: {stderr}"
    );
    (out.status.code().unwrap_or(-1), stderr)
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
    // the 2026 list delists 92 of 156: refused without --allow-shrink, nothing changes
    let (code, err) = paytrace_fails(d, &args);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(
            "would remove 92 of its 156 active labels (58.9 %), more than the limit of 10 %"
        ) && err.contains("pass --allow-shrink if this is intended"),
        "{err}"
    );
    let (src, _) = paytrace(d, &["labels", "sources"]);
    assert_eq!(src[0]["versions"].as_array().unwrap().len(), 1);
    args.push("--allow-shrink");
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

/// Serves `/MODE/sdn.csv`, `/MODE/sdn_comments.csv` (the 2021 set) and
/// `/MODE/sdn_advanced.xml` over HTTP/1.1 on 127.0.0.1: a test-only stand-in for OFAC's site,
/// which cannot be reached here (no internet). MODE `ofac` serves the files whole; for
/// `sdn.csv` and `sdn_advanced.xml`, `short` announces the whole length but sends half and
/// closes, `cut` sends half without a Content-Length and closes (a body cut off by the
/// connection closing), `empty` sends an empty body.
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
            let (mode, name) = path
                .trim_start_matches('/')
                .split_once('/')
                .unwrap_or(("", ""));
            let mode = if ["ofac", "short", "cut", "empty"].contains(&mode) {
                mode
            } else {
                ""
            };
            let file = match name {
                "sdn.csv" => Some("sdn-2021.csv"),
                "sdn_comments.csv" => Some("sdn_comments-2021.csv"),
                "sdn_advanced.xml" => Some("sdn_advanced-excerpt.xml"),
                _ => None,
            };
            let (status, body) = match file {
                Some(f) if !mode.is_empty() => {
                    ("200 OK", std::fs::read(format!("{DATA}/ofac/{f}")).unwrap())
                }
                _ => ("404 Not Found", b"not found".to_vec()),
            };
            let spoiled = name != "sdn_comments.csv";
            let (length, sent) = match mode {
                "short" if spoiled => (Some(body.len()), &body[..body.len() / 2]),
                "cut" if spoiled => (None, &body[..body.len() / 2]),
                "empty" if spoiled => (Some(0), &body[..0]),
                _ => (Some(body.len()), &body[..]),
            };
            let length = length.map_or(String::new(), |n| format!("Content-Length: {n}\r\n"));
            let head = format!(
                "HTTP/1.1 {status}\r\n{length}Content-Type: text/csv\r\nConnection: close\r\n\r\n"
            );
            let _ = sock.write_all(head.as_bytes()).await;
            let _ = sock.write_all(sent).await;
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

/// `labels fetch ofac` from the local stand-in server: a body broken off before its
/// Content-Length, a body cut off by the connection closing (no Content-Length), and an empty
/// body are each refused, and the imported version stays as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_ofac_refuses_incomplete_downloads() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(serve(listener));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_owned();
    let run = |mode: &'static str, format: &'static str, ok: bool| {
        let d = d.clone();
        tokio::task::spawn_blocking(move || {
            let url = format!("http://127.0.0.1:{port}/{mode}");
            let args = [
                "labels",
                "fetch",
                "ofac",
                "--url",
                &url,
                "--format",
                format,
                "--version",
            ];
            let mut args = args.to_vec();
            args.push(if mode == "ofac" {
                "2021-07-07"
            } else {
                "2021-08-01"
            });
            if ok {
                (0, paytrace(&d, &args).0.to_string())
            } else {
                paytrace_fails(&d, &args)
            }
        })
    };
    let (_, r) = run("ofac", "csv", true).await.unwrap();
    assert!(r.contains("\"read\":97"), "{r}");
    let before = tokio::task::spawn_blocking({
        let d = d.clone();
        move || paytrace(&d, &["labels", "list", "--all"]).0
    })
    .await
    .unwrap();
    assert_eq!(before.as_array().unwrap().len(), 96);

    let (code, err) = run("short", "csv", false).await.unwrap();
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("/short/sdn.csv") && err.contains("incomplete download"),
        "{err}"
    );
    let (code, err) = run("cut", "csv", false).await.unwrap();
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("/cut/sdn.csv:")
            && (err.contains("unbalanced quote") || err.contains("expected 12 columns"))
            && err.contains("nothing was imported"),
        "{err}"
    );
    let (code, err) = run("empty", "csv", false).await.unwrap();
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("empty body"), "{err}");
    for mode in ["short", "cut", "empty"] {
        let (code, err) = run(mode, "xml", false).await.unwrap();
        assert_eq!(code, 1, "{mode}: {err}");
        assert!(err.contains("sdn_advanced.xml"), "{mode}: {err}");
    }

    let (after, src) = tokio::task::spawn_blocking(move || {
        (
            paytrace(&d, &["labels", "list", "--all"]).0,
            paytrace(&d, &["labels", "sources"]).0,
        )
    })
    .await
    .unwrap();
    assert_eq!(after, before, "labels unchanged");
    let versions = src[0]["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0]["version"], "2021-07-07");
}

#[test]
fn shrink_guard_flags_and_config() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sdn = format!("{DATA}/ofac/sdn-2025-05-subset.csv");
    let com = format!("{DATA}/ofac/sdn_comments-2025-05-subset.csv");
    let (r, _) = paytrace(
        d,
        &[
            "labels",
            "import",
            "--format",
            "ofac-csv",
            "--version",
            "2025-05-16",
            &sdn,
            &com,
        ],
    );
    assert_eq!(r["imported"], 32);
    // the next version without the comments file drops SUEX's 11 continuation addresses and
    // the XBT address cut at the end of its sdn.csv remarks
    let v2 = [
        "labels",
        "import",
        "--format",
        "ofac-csv",
        "--version",
        "2025-06-01",
        &sdn,
    ];
    let (code, err) = paytrace_fails(d, &v2);
    assert_eq!(code, 1);
    assert!(
        err.contains("would remove 12 of its 32 active labels (37.5 %)"),
        "{err}"
    );
    // --max-shrink below the share still refuses; the config's limit applies without the flag
    let mut low = v2.to_vec();
    low.extend(["--max-shrink", "30"]);
    assert!(paytrace_fails(d, &low).1.contains("limit of 30 %"));
    let cfg = d.join("paytrace.toml");
    std::fs::write(&cfg, "[labels]\nmax_shrink_pct = 40\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_paytrace"))
        .arg("--data-dir")
        .arg(d)
        .arg("--config")
        .arg(&cfg)
        .arg("--json")
        .args(v2)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (r["read"].as_u64(), r["removed"].as_u64()),
        (Some(21), Some(12))
    );
    // an empty file as the next version: refused, then accepted with --allow-shrink
    let empty = d.join("empty.csv");
    std::fs::write(&empty, b"").unwrap();
    let e = empty.to_str().unwrap();
    let v3 = [
        "labels",
        "import",
        "--format",
        "ofac-csv",
        "--version",
        "2025-07-01",
        e,
    ];
    let (_, err) = paytrace_fails(d, &v3);
    assert!(
        err.contains("would remove 20 of its 20") && err.contains("no row was read"),
        "{err}"
    );
    let mut allowed = v3.to_vec();
    allowed.push("--allow-shrink");
    let (r, _) = paytrace(d, &allowed);
    assert_eq!(
        (r["read"].as_u64(), r["removed"].as_u64()),
        (Some(0), Some(20))
    );
    // a bad limit in the config is an error naming the key
    std::fs::write(&cfg, "[labels]\nmax_shrink_pct = 200\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_paytrace"))
        .arg("--data-dir")
        .arg(d)
        .arg("--config")
        .arg(&cfg)
        .args(["labels", "sources"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("labels.max_shrink_pct"));
}

#[test]
fn wrong_format_and_numeric_tagpack_address() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sdn = format!("{DATA}/ofac/sdn-2025-05-subset.csv");
    let (code, err) = paytrace_fails(d, &["labels", "import", "--format", "ofac-xml", &sdn]);
    assert_eq!(code, 1);
    assert!(
        err.contains("sdn-2025-05-subset.csv: not XML input") && err.contains("--format ofac-csv"),
        "{err}"
    );
    let pack = d.join("pack.yaml");
    std::fs::write(
        &pack,
        "currency: ETH\ncategory: exchange\ntags:\n- address: 0x1234\n",
    )
    .unwrap();
    let (r, _) = paytrace(
        d,
        &[
            "labels",
            "import",
            "--format",
            "tagpack",
            pack.to_str().unwrap(),
        ],
    );
    assert_eq!(r["rejected"], 1);
    assert_eq!(r["rejects"][0]["line"], 4);
    let reason = r["rejects"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("0x1234") && reason.contains("quote it"),
        "{reason}"
    );
}
