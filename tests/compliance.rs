//! End-to-end tests of risk screening, patterns, transfer import, alerts and webhooks through
//! the `paytrace` binary:
//!
//! * screening verdicts on an anvil chain built here, including as-of (an address sanctioned
//!   after the payout date is reported as such, not as sanctioned at the time);
//! * the planted AMLSim fan-ins found, scored at the level of the planted patterns (the
//!   transfers are converted to the ethereum-etl `token_transfers` CSV here and imported);
//! * re-screening after a label import (exactly one new alert; re-import: none);
//! * webhook delivery to a local HTTP receiver that fails the first attempts (exactly-once
//!   effect through the idempotency key; nothing lost across a restart of paytrace).

#![allow(clippy::unwrap_used)] // `unwrap` is allowed in tests only (project rule)

mod common;

use alloy_primitives::U256;
use common::*;
use paytrace_indexer::{Address, labels::Date};
use serde_json::Value;
use std::{
    collections::{BTreeMap, BTreeSet},
    io::{BufRead, BufReader, Read, Write},
    net::TcpListener,
    path::Path,
    sync::{Arc, Mutex},
};

fn json_lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn screen(dir: &Path, addr: &str, extra: &[&str]) -> (Value, Option<i32>) {
    let mut c = paytrace(dir);
    c.args(["--json", "screen", addr]).args(extra);
    let out = c.output().unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "screen output not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (v, out.status.code())
}

fn exposure<'a>(r: &'a Value, list: &str, cat: &str) -> &'a Value {
    r[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["category"] == cat)
        .unwrap_or_else(|| panic!("no {list} {cat} exposure in {r:#}"))
}

fn hex(a: &alloy_primitives::Address) -> String {
    format!("{a:#x}")
}

/// Payer pays worker 10 ETH; worker sends 6 to hop; hop sends 5 to X (sanctioned from the day
/// after the payout). Payer pays worker2 10 ETH; worker2 sends 3 to Y (sanctioned a year
/// before). Screened as of two days after the payout and as of the payout day.
#[tokio::test]
async fn screening_verdicts_on_an_anvil_chain_with_as_of_labels() {
    let anvil = paytrace_indexer::testutil::Anvil::builder()
        .no_mining()
        .spawn()
        .await
        .expect("start anvil (run scripts/install-anvil)");
    let mut g = paytrace_indexer::testutil::ChainGenerator::new(anvil.rpc())
        .await
        .unwrap();
    let a = g.accounts().to_vec();
    let (payer, worker, hop, x, y, worker2) = (a[0], a[1], a[2], a[3], a[4], a[5]);
    let eth = |n: u64| U256::from(n) * U256::from(10u64).pow(U256::from(18u64));
    for (from, to, v) in [
        (payer, worker, 10),
        (worker, hop, 6),
        (hop, x, 5),
        (payer, worker2, 10),
        (worker2, y, 3),
    ] {
        let spec = g.native(from, to, eth(v));
        g.send(spec).await.unwrap();
        g.mine().await.unwrap();
    }
    let head = g.head().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run_json(&mut index_cmd(d, anvil.url(), head, &[]));
    let (_, transfers, _) = read_store(d);
    let payout = transfers
        .iter()
        .find(|t| t.from == Address::evm(payer) && t.to == Address::evm(worker))
        .unwrap();
    let day: Date =
        paytrace_indexer::labels::date_of_unix(i64::try_from(payout.time.0).unwrap()).unwrap();
    let listed = day.tomorrow().unwrap();
    let later = listed.tomorrow().unwrap();
    let long_before = day.checked_sub(jiff::Span::new().days(365)).unwrap();
    let labels = d.join("labels.csv");
    std::fs::write(
        &labels,
        format!(
            "address,category,entity,valid_from\n{},sanctioned,Listed Later,{listed}\n{},sanctioned,Listed Before,{long_before}\n",
            hex(&x),
            hex(&y)
        ),
    )
    .unwrap();
    let mut imp = paytrace(d);
    imp.args([
        "--json", "labels", "import", "--format", "csv", "--source", "test-sdn",
    ])
    .args(["--version", &long_before.to_string(), "--chain", "ETH"])
    .arg(&labels);
    run_json(&mut imp);
    let later_s = later.to_string();
    let day_s = day.to_string();

    // Worker: indirect exposure (hop 1) to an address sanctioned only after the transfers.
    let (r, code) = screen(
        d,
        &hex(&worker),
        &["--as-of", &later_s, "--fail-on", "high"],
    );
    assert_eq!(code, Some(0), "{r:#}");
    let e = exposure(&r, "indirect", "sanctioned");
    assert_eq!(e["direction"], "sent");
    assert_eq!(e["hops"], 1);
    assert_eq!(e["labelled_at_time"], false);
    assert_eq!(e["listed_since"], listed.to_string());
    assert_eq!(e["counterparties"][0], Address::evm(x).to_string());
    assert_eq!(e["amount"], eth(5).to_string());
    assert_eq!(r["level"], "medium", "{r:#}");
    assert!(
        r["reasons"][0]["text"]
            .as_str()
            .unwrap()
            .contains(&format!("only since {listed}")),
        "{r:#}"
    );
    // As of the payout day X is not sanctioned: nothing.
    let (r, code) = screen(d, &hex(&worker), &["--as-of", &day_s, "--fail-on", "low"]);
    assert_eq!(code, Some(0));
    assert_eq!(r["level"], "none", "{r:#}");
    assert!(r["indirect"].as_array().unwrap().is_empty());
    // Hop: direct exposure, labelled after the fact.
    let (r, _) = screen(d, &hex(&hop), &["--as-of", &later_s]);
    let e = exposure(&r, "direct", "sanctioned");
    assert_eq!(e["labelled_at_time"], false);
    assert_eq!(e["transfers"], 1);
    assert_eq!(r["level"], "medium");
    // Worker2 sent directly to an address sanctioned at the time: severe, exit 3.
    let (r, code) = screen(
        d,
        &hex(&worker2),
        &["--as-of", &later_s, "--fail-on", "high"],
    );
    let e = exposure(&r, "direct", "sanctioned");
    assert_eq!(e["labelled_at_time"], true);
    assert_eq!(e["share"], 1.0);
    assert_eq!(r["level"], "severe");
    assert_eq!(code, Some(3));
    // The payer: its payouts reach both (X at hop 2, Y at hop 1).
    let (r, _) = screen(d, &hex(&payer), &["--as-of", &later_s]);
    let e = exposure(&r, "indirect", "sanctioned");
    assert_eq!(e["hops"], 1);
    assert_eq!(e["labelled_at_time"], true);
    assert_eq!(e["counterparties"].as_array().unwrap().len(), 2);

    // Bulk: one JSON line per address; a bad line names file and line.
    let file = d.join("addresses.txt");
    std::fs::write(
        &file,
        format!("# screened daily\n{}\n\n{}\n", hex(&worker), hex(&worker2)),
    )
    .unwrap();
    let out = paytrace(d)
        .args(["--json", "screen", "--file"])
        .arg(&file)
        .args(["--as-of", &later_s, "--fail-on", "severe"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["level"], "medium");
    assert_eq!(lines[1]["level"], "severe");
    // Every address of the chain, some twice, on 1 and on 3 threads: the same lines, in file
    // order, each equal to screening the address alone.
    let all = [payer, worker, hop, x, y, worker2, worker, payer];
    std::fs::write(&file, all.iter().map(|a| hex(a) + "\n").collect::<String>()).unwrap();
    let bulk = |threads: &str| {
        let out = paytrace(d)
            .args(["--json", "screen", "--file"])
            .arg(&file)
            .args(["--as-of", &later_s, "--threads", threads])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let serial = bulk("1");
    assert_eq!(bulk("3"), serial);
    let lines = json_lines(&serial);
    assert_eq!(lines.len(), all.len());
    for (l, a) in lines.iter().zip(&all) {
        assert_eq!(l, &screen(d, &hex(a), &["--as-of", &later_s]).0);
    }
    std::fs::write(&file, format!("{}\nnot-an-address\n", hex(&worker))).unwrap();
    let out = paytrace(d)
        .args(["screen", "--file"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("addresses.txt:2"), "{err}");
}

/// Converts the AMLSim transactions to the ethereum-etl token_transfers CSV: node n is address
/// n + 1, values are cents, the time step is the block and a day of block time.
fn amlsim_csv(path: &Path) -> usize {
    let src = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/aml/amlsim-20K_fanin200/transactions.csv"
    );
    let text = std::fs::read_to_string(src).unwrap();
    let mut out = String::from(
        "token_address,from_address,to_address,value,transaction_hash,log_index,block_number,block_timestamp\n",
    );
    let mut log_index: BTreeMap<u64, u64> = BTreeMap::new();
    let mut n = 0;
    for (i, line) in text.lines().skip(1).enumerate() {
        let f: Vec<&str> = line.split(',').collect();
        let (s, t, v, step): (u64, u64, &str, u64) = (
            f[0].parse().unwrap(),
            f[1].parse().unwrap(),
            f[2],
            f[3].parse().unwrap(),
        );
        let (whole, frac) = v.split_once('.').unwrap_or((v, ""));
        let cents = whole.parse::<u64>().unwrap() * 100
            + format!("{frac:0<2}")[..2].parse::<u64>().unwrap();
        let li = log_index.entry(step).or_default();
        out.push_str(&format!(
            "0x{:040x},0x{:040x},0x{:040x},{cents},0x{:064x},{li},{step},{}\n",
            0xaa,
            s + 1,
            t + 1,
            i + 1,
            1_600_000_000 + step * 86_400
        ));
        *li += 1;
        n += 1;
    }
    std::fs::write(path, out).unwrap();
    n
}

fn amlsim_dir() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/aml/amlsim-20K_fanin200"
    ))
}

/// The planted patterns of the AMLSim sample, scored instance by instance (never node by node
/// against `isFraud`), with parameters that name only the data's horizon: the whole 150-day
/// run as the window, 2 counterparties, no amount bound.
#[test]
fn amlsim_planted_fan_ins_found_with_horizon_only_parameters() {
    use paytrace_tracer::patterns::{
        PatternKind,
        amlsim::{AmlSim, FoundInstance},
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let csv = d.join("token_transfers.csv");
    assert_eq!(amlsim_csv(&csv), 118_250);
    let mut imp = paytrace(d);
    imp.args(["--json", "import", "transfers", "--chain", "amlsim"])
        .arg(&csv);
    let r = run_json(&mut imp);
    assert_eq!(r["imported"], 118_250);
    assert_eq!(r["rejected_count"], 0);
    assert_eq!(
        (r["first_block"].as_u64(), r["last_block"].as_u64()),
        (Some(1), Some(149))
    );
    let truth = AmlSim::load(amlsim_dir()).unwrap();
    assert_eq!(truth.len(), 118_250);
    // 195 planted fan-ins executed (metadata: 200 planted), 152 of them with >= 2 senders.
    assert_eq!(truth.planted_fan_ins().len(), 195);
    assert_eq!(
        truth
            .planted_fan_ins()
            .iter()
            .filter(|p| p.members.len() >= 3)
            .count(),
        152
    );
    let mut p = paytrace(d);
    p.args([
        "--json",
        "patterns",
        "--type",
        "fan-in",
        "--window-secs",
        "12960000",
        "--min-counterparties",
        "2",
        "--limit",
        "100000",
    ]);
    let r = run_json(&mut p);
    assert_eq!(r["truncated"], 0);
    let found: Vec<FoundInstance> = r["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| FoundInstance {
            kind: i["type"].as_str().unwrap().parse::<PatternKind>().unwrap(),
            center: i["center"].as_str().unwrap().parse().unwrap(),
            members: i["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_str().unwrap().parse().unwrap())
                .collect(),
            cycle_kind: None,
        })
        .collect();
    let s = truth.score_found(&found);
    eprintln!(
        "AMLSim fan-in: {} of {} planted targets found (recall {:.3}), {} of {} instances correct (precision {:.3})",
        s.fan_in.found,
        s.fan_in.planted,
        s.fan_in.recall,
        s.fan_in.correct_instances,
        s.fan_in.instances,
        s.fan_in.precision
    );
    // Measured: 146 of 152 found (0.961), 146 of 146 instances correct (1.000).
    assert!(s.fan_in.recall >= 0.95, "{s:#?}");
    assert!(s.fan_in.precision >= 0.95, "{s:#?}");
    // A bad row is reported with its line and field; the rest is imported.
    let bad = d.join("bad.csv");
    std::fs::write(
        &bad,
        "token_address,from_address,to_address,value,transaction_hash,log_index,block_number\n\
         0x00000000000000000000000000000000000000aa,0x01,0x0000000000000000000000000000000000000002,5,0x0000000000000000000000000000000000000000000000000000000000000001,0,200\n\
         0x00000000000000000000000000000000000000aa,0x0000000000000000000000000000000000000001,0x0000000000000000000000000000000000000002,-5,0x0000000000000000000000000000000000000000000000000000000000000001,1,200\n\
         0x00000000000000000000000000000000000000aa,0x0000000000000000000000000000000000000001,0x0000000000000000000000000000000000000002,5,0x0000000000000000000000000000000000000000000000000000000000000001,2,200\n",
    )
    .unwrap();
    let mut imp = paytrace(d);
    imp.args(["--json", "import", "transfers", "--chain", "amlsim"])
        .arg(&bad);
    let r = run_json(&mut imp);
    assert_eq!(r["imported"], 1);
    assert_eq!(r["rejected"][0]["line"], 2);
    assert_eq!(r["rejected"][0]["field"], "from_address");
    assert_eq!(r["rejected"][1]["line"], 3);
    assert_eq!(r["rejected"][1]["field"], "value");
    // Importing blocks at or below the checkpoint is refused, nothing written.
    let out = paytrace(d)
        .args(["import", "transfers", "--chain", "amlsim"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not after the checkpoint"));
}

const TOKEN: &str = "0x00000000000000000000000000000000000000aa";

fn a(n: u8) -> String {
    format!("0x{}", format!("{n:02x}").repeat(20))
}

/// Payer 0x11 pays payee 0x22, who sends to 0x33, who sends to 0x44.
fn payout_chain(d: &Path) {
    let csv = d.join("t.csv");
    let mut s = String::from(
        "token_address,from_address,to_address,value,transaction_hash,log_index,block_number,block_timestamp\n",
    );
    for (i, (f, t, v)) in [(0x11, 0x22, 1000), (0x22, 0x33, 900), (0x33, 0x44, 800)]
        .iter()
        .enumerate()
    {
        s.push_str(&format!(
            "{TOKEN},{},{},{v},0x{:064x},0,{},{}\n",
            a(*f),
            a(*t),
            i + 1,
            i + 1,
            1_700_000_000 + i * 3600
        ));
    }
    std::fs::write(&csv, s).unwrap();
    let mut c = paytrace(d);
    c.args(["--json", "import", "transfers"]).arg(&csv);
    run_json(&mut c);
}

fn alerts(d: &Path, cfg: &Path) -> Vec<Value> {
    let out = run_ok(
        paytrace(d)
            .arg("--config")
            .arg(cfg)
            .args(["--json", "alerts"]),
    );
    json_lines(&out.stdout)
}

fn import_list(d: &Path, cfg: &Path, version: &str) {
    let list = d.join("sanctions.csv");
    std::fs::write(
        &list,
        format!(
            "address,category,entity\n{},sanctioned,Bad Actor\n",
            a(0x44)
        ),
    )
    .unwrap();
    let mut c = paytrace(d);
    c.arg("--config").arg(cfg);
    c.args([
        "--json", "labels", "import", "--format", "csv", "--source", "sdn",
    ])
    .args(["--version", version, "--chain", "ETH"])
    .arg(&list);
    run_json(&mut c);
}

#[test]
fn rescreening_after_a_label_import_raises_exactly_one_new_alert() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    payout_chain(d);
    let cfg = d.join("paytrace.toml");
    std::fs::write(&cfg, format!("[alerts]\npayers = [\"{}\"]\n", a(0x11))).unwrap();
    // Nothing labelled yet: no alert.
    let out = run_ok(
        paytrace(d)
            .arg("--config")
            .arg(&cfg)
            .args(["--json", "alerts", "evaluate"]),
    );
    assert!(json_lines(&out.stdout).is_empty());
    assert!(alerts(d, &cfg).is_empty());
    // The list adds 0x44, two transfers after the payee: one alert (the default rule).
    import_list(d, &cfg, "2024-01-01");
    let v = alerts(d, &cfg);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0]["rule"], "reaches-sanctioned");
    assert_eq!(v[0]["subject"], a(0x22));
    assert_eq!(v[0]["role"], "payee");
    assert_eq!(v[0]["severity"], "high");
    assert_eq!(v[0]["state"], "new");
    assert_eq!(v[0]["addresses"][0], a(0x44));
    // A newer version of the same list: nothing new; evaluating again: nothing new.
    import_list(d, &cfg, "2024-02-01");
    let out = run_ok(
        paytrace(d)
            .arg("--config")
            .arg(&cfg)
            .args(["--json", "alerts", "evaluate"]),
    );
    assert!(json_lines(&out.stdout).is_empty());
    assert_eq!(alerts(d, &cfg).len(), 1);
    // Acknowledge; state filter.
    let id = v[0]["id"].as_u64().unwrap().to_string();
    run_ok(paytrace(d).args(["--json", "alerts", "ack", &id]));
    let out = run_ok(paytrace(d).args(["--json", "alerts", "--state", "new"]));
    assert!(json_lines(&out.stdout).is_empty());
    let out = run_ok(paytrace(d).args(["--json", "alerts", "--state", "acknowledged"]));
    assert_eq!(json_lines(&out.stdout).len(), 1);
    // Watching 0x33 (direct sender to the sanctioned address) raises its own alert.
    run_ok(paytrace(d).args(["watch", "add", &a(0x33), "--note", "hop"]));
    let out = run_ok(
        paytrace(d)
            .arg("--config")
            .arg(&cfg)
            .args(["--json", "alerts", "evaluate"]),
    );
    let new = json_lines(&out.stdout);
    assert_eq!(new.len(), 1);
    assert_eq!(new[0]["subject"], a(0x33));
    assert_eq!(new[0]["role"], "watched");
}

/// A minimal HTTP/1.1 receiver: records each request's idempotency key; the first `fail`
/// requests are answered 500 (the first one after applying its effect, as if the response got
/// lost); effects are applied once per idempotency key.
struct Receiver {
    url: String,
    requests: Arc<Mutex<Vec<(String, Value)>>>,
    effects: Arc<Mutex<BTreeMap<String, Value>>>,
}

fn receiver(fail: usize) -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let effects = Arc::new(Mutex::new(BTreeMap::new()));
    let (rq, ef) = (Arc::clone(&requests), Arc::clone(&effects));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut len = 0usize;
            let mut key = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let l = line.trim_end();
                if l.is_empty() {
                    break;
                }
                if let Some((k, v)) = l.split_once(':') {
                    match k.trim().to_ascii_lowercase().as_str() {
                        "content-length" => len = v.trim().parse().unwrap_or(0),
                        "idempotency-key" => key = v.trim().to_owned(),
                        _ => {}
                    }
                }
            }
            let mut body = vec![0u8; len];
            reader.read_exact(&mut body).unwrap();
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let n = {
                let mut r = rq.lock().unwrap();
                r.push((key.clone(), body.clone()));
                r.len()
            };
            let status = if n <= fail {
                if n == 1 {
                    ef.lock().unwrap().entry(key).or_insert(body);
                }
                "500 Internal Server Error"
            } else {
                ef.lock().unwrap().entry(key).or_insert(body);
                "200 OK"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    Receiver {
        url,
        requests,
        effects,
    }
}

#[test]
fn webhook_delivery_retries_and_survives_a_restart_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    payout_chain(d);
    let rx = receiver(3);
    let cfg = d.join("paytrace.toml");
    let write_cfg = |attempts: u32| {
        std::fs::write(
            &cfg,
            format!(
                "[alerts]\npayers = [\"{}\"]\n\n[[alerts.webhooks]]\nname = \"ops\"\nurl = \"{}\"\nmax_attempts = {attempts}\nmin_backoff_ms = 10\n\n[[alerts.webhooks]]\nname = \"slack\"\nurl = \"{}\"\nformat = \"slack\"\nmin_severity = \"severe\"\n",
                a(0x11),
                rx.url,
                rx.url
            ),
        )
        .unwrap();
    };
    // Two attempts per run: the receiver fails the first three requests.
    write_cfg(2);
    import_list(d, &cfg, "2024-01-01");
    let v = alerts(d, &cfg);
    assert_eq!(v.len(), 1);
    assert!(v[0]["delivered_to"].as_array().unwrap().is_empty());
    assert_eq!(rx.requests.lock().unwrap().len(), 2);
    // A new process (restart): one more failure, then delivered.
    let out = run_ok(
        paytrace(d)
            .arg("--config")
            .arg(&cfg)
            .args(["--json", "alerts", "deliver"]),
    );
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (s["delivered"].as_u64(), s["pending"].as_u64()),
        (Some(1), Some(0))
    );
    let reqs = rx.requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), 4);
    // Same idempotency key on every attempt; one effect.
    let keys: BTreeSet<&String> = reqs.iter().map(|(k, _)| k).collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys.iter().next().unwrap().len(), 64);
    let effects = rx.effects.lock().unwrap().clone();
    assert_eq!(effects.len(), 1);
    let body = effects.values().next().unwrap();
    assert_eq!(body["rule"], "reaches-sanctioned");
    assert_eq!(body["id"], v[0]["id"]);
    // Nothing left: another run sends nothing; the alert records the delivery. The `slack`
    // hook wants severe alerts only, so it got nothing.
    let out = run_ok(
        paytrace(d)
            .arg("--config")
            .arg(&cfg)
            .args(["--json", "alerts", "deliver"]),
    );
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (s["delivered"].as_u64(), s["pending"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(rx.requests.lock().unwrap().len(), 4);
    assert_eq!(
        alerts(d, &cfg)[0]["delivered_to"],
        serde_json::json!(["ops"])
    );
}

#[test]
fn patterns_cli_lists_typed_instances_and_rejects_unknown_types() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let csv = d.join("t.csv");
    let mut s = String::from(
        "token_address,from_address,to_address,value,transaction_hash,log_index,block_number,block_timestamp\n",
    );
    // 0x50 received from one sender a month before (its usual degree); then six senders
    // within an hour (fan-in), and 0x50 forwards it all (pass-through).
    s.push_str(&format!(
        "{TOKEN},{},{},100,0x{:064x},0,1,1697400000\n",
        a(0x60),
        a(0x50),
        98
    ));
    for i in 0..6u8 {
        s.push_str(&format!(
            "{TOKEN},{},{},100,0x{:064x},{i},2,1700000000\n",
            a(0x60 + i),
            a(0x50),
            u64::from(i) + 1
        ));
    }
    s.push_str(&format!(
        "{TOKEN},{},{},600,0x{:064x},0,3,1700000600\n",
        a(0x50),
        a(0x70),
        99
    ));
    std::fs::write(&csv, s).unwrap();
    run_json(
        paytrace(d)
            .args(["--json", "import", "transfers"])
            .arg(&csv),
    );
    let r = run_json(paytrace(d).args(["--json", "patterns", "--type", "fan-in,pass-through"]));
    let types: Vec<&str> = r["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, vec!["pass-through", "fan-in"], "{r:#}");
    let fan = &r["instances"][1];
    assert_eq!(fan["center"], a(0x50));
    assert_eq!(fan["members"].as_array().unwrap().len(), 7);
    assert_eq!(fan["transfers"].as_array().unwrap().len(), 6);
    assert_eq!(fan["transfers"][0]["amount"], "100");
    assert_eq!(r["parameters"]["fan_min_counterparties"], 5);
    let out = paytrace(d)
        .args(["patterns", "--type", "smurfing"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// `follow` evaluates the alert rules after committed steps: a payout whose funds reach an
/// address already on a sanctions list raises an alert while following.
#[tokio::test]
async fn follow_raises_alerts_after_sync() {
    let anvil = paytrace_indexer::testutil::Anvil::builder()
        .no_mining()
        .spawn()
        .await
        .expect("start anvil (run scripts/install-anvil)");
    let mut g = paytrace_indexer::testutil::ChainGenerator::new(anvil.rpc())
        .await
        .unwrap();
    let acc = g.accounts().to_vec();
    let (payer, worker, x) = (acc[0], acc[1], acc[3]);
    for (from, to, v) in [(payer, worker, 1_000_000u64), (worker, x, 600_000)] {
        let spec = g.native(from, to, U256::from(v));
        g.send(spec).await.unwrap();
        g.mine().await.unwrap();
    }
    let head = g.head().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = d.join("paytrace.toml");
    std::fs::write(&cfg, format!("[alerts]\npayers = [\"{}\"]\n", hex(&payer))).unwrap();
    let list = d.join("sdn.csv");
    std::fs::write(
        &list,
        format!("address,category,entity\n{},sanctioned,X\n", hex(&x)),
    )
    .unwrap();
    let mut imp = paytrace(d);
    imp.arg("--config").arg(&cfg);
    imp.args([
        "--json", "labels", "import", "--format", "csv", "--source", "sdn",
    ])
    .args(["--version", "2020-01-01", "--chain", "ETH"])
    .arg(&list);
    run_json(&mut imp);
    let mut follow = paytrace(d);
    follow.arg("--config").arg(&cfg);
    follow.args(["follow", "evm", "--chain", CHAIN, "--rpc", anvil.url()]);
    follow.args(["--confirmations", "0", "--poll-interval-ms", "200"]);
    let mut p = Running::spawn(follow);
    p.wait_until(
        "follow to raise the alert",
        std::time::Duration::from_secs(90),
        &|p| {
            p.last_committed().is_some_and(|l| l >= head)
                && p.lines().iter().any(|l| l.contains("alert raised"))
        },
    );
    let status = p.signal_and_wait("-TERM", std::time::Duration::from_secs(30));
    assert!(status.success(), "{}", p.lines().join("\n"));
    drop(p);
    let v = alerts(d, &cfg);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0]["subject"], Address::evm(worker).to_string());
    assert_eq!(v[0]["rule"], "reaches-sanctioned");
}
