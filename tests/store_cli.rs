//! End-to-end tests of how `paytrace` opens its store: a damaged journal is a loud error that
//! changes nothing (`store check` reports it, `store repair` cuts the store back only when
//! asked), read commands never create a data dir nor write to a store, concurrent first opens
//! of a new data dir do not fail with an engine error, and a lock error names the holder.
//!
//! A read-only file system cannot be tested here: the tests run as root (where `chmod 0555`
//! does not stop writes) in a container without mount rights. The classification of EROFS,
//! EACCES and EPERM as "cannot write" rather than "corrupt" is unit-tested in
//! `indexer/src/store/error.rs`; here a file given as the data dir stands in for an unusable
//! path.

#![allow(clippy::unwrap_used)] // `unwrap` is allowed in tests only (project rule)

use alloy_primitives::B256;
use paytrace_indexer::{
    Address, Amount, Asset, BlockNumber, BlockRef, ChainKind, Store, Timestamp, Transfer,
    TransferKey, TransferKind, TxHash,
};
use serde_json::Value;
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

fn paytrace(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_paytrace"));
    c.arg("--data-dir").arg(dir);
    c.env_remove("PAYTRACE_CONFIG")
        .env_remove("PAYTRACE_DATA_DIR")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    c
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

fn json(cmd: &mut Command) -> Value {
    serde_json::from_slice(&ok(cmd).stdout).unwrap()
}

/// sha256-free fingerprint of every file of `dir`: path → content.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn assert_unchanged(before: &BTreeMap<PathBuf, Vec<u8>>, dir: &Path, what: &str) {
    let after = snapshot(dir);
    let names = |m: &BTreeMap<PathBuf, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(before),
        names(&after),
        "{what}: files added or removed"
    );
    for (p, b) in before {
        assert!(after[p] == *b, "{what}: {} changed", p.display());
    }
}

const CHAIN: &str = "dev";

fn addr(i: u64) -> Address {
    let mut a = [0u8; 20];
    a[12..].copy_from_slice(&(i + 1).to_be_bytes());
    Address::Evm(a)
}

/// Writes `ranges` ranges of 10 blocks with 20 transfers each through the indexer API and
/// closes the store the way `follow` or an interrupted command leaves it: synced, with its
/// journal holding the writes. Returns the last block.
fn write_store(dir: &Path, ranges: u64) -> u64 {
    let s = Store::open(dir).unwrap();
    let c = s.register_chain(CHAIN, ChainKind::Evm).unwrap();
    let mut n = 0u64;
    for _ in 0..ranges {
        let blocks: Vec<BlockRef> = (n + 1..=n + 10)
            .map(|b| BlockRef {
                number: BlockNumber(b),
                hash: B256::from(alloy_primitives::U256::from(b)),
                parent: B256::from(alloy_primitives::U256::from(b - 1)),
                time: Timestamp(1_700_000_000 + b * 12),
            })
            .collect();
        let mut ts = Vec::new();
        for b in &blocks {
            for i in 0..2u32 {
                let bn = b.number.0;
                ts.push(Transfer {
                    key: TransferKey {
                        chain: c,
                        block: b.number,
                        tx_index: i,
                        kind: TransferKind::Token,
                        position: 0,
                    },
                    time: b.time,
                    tx_hash: TxHash(B256::from(alloy_primitives::U256::from(
                        bn * 100 + u64::from(i),
                    ))),
                    from: addr(bn % 17),
                    to: addr((bn * 7 + u64::from(i)) % 23),
                    asset: Asset::Token(addr(999)),
                    amount: Amount::from_u64(bn * 1_000 + u64::from(i)),
                    trace_address: vec![],
                });
            }
        }
        s.write_range(c, &blocks, &ts).unwrap();
        n += 10;
    }
    s.persist().unwrap();
    n
}

fn journal(dir: &Path) -> PathBuf {
    let mut j: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jnl"))
        .collect();
    j.sort();
    j.pop().expect("a journal")
}

/// Flips 16 bytes at `fraction` of the written part of the journal (it is pre-allocated
/// with zeros after that).
fn flip(file: &Path, fraction: f64) {
    let mut b = std::fs::read(file).unwrap();
    let used = b.iter().rposition(|x| *x != 0).unwrap();
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let at = (used as f64 * fraction) as usize;
    for x in &mut b[at..at + 16] {
        *x ^= 0x5a;
    }
    std::fs::write(file, b).unwrap();
}

#[test]
fn flipped_journal_bytes_are_a_loud_error_and_only_repair_cuts_the_store() {
    for fraction in [0.5, 0.3, 0.8] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("store");
        let last = write_store(&dir, 30);
        let jnl = journal(&dir);
        flip(&jnl, fraction);
        let before = snapshot(&dir);

        // A read command fails loudly, names the journal and the last intact state, and
        // changes nothing (the old engine behaviour: exit 0, store silently rolled back).
        let out = run(paytrace(&dir).arg("stats"));
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "stats at {fraction}: {err}");
        let name = jnl.file_name().unwrap().to_string_lossy().into_owned();
        assert!(err.contains(&name), "{err}");
        assert!(err.contains("last intact state"), "{err}");
        assert!(err.contains("store repair"), "{err}");
        assert_unchanged(&before, &dir, "stats on a damaged store");
        // A writer refuses too.
        let out = run(paytrace(&dir)
            .args(["labels", "import", "--format", "list"])
            .arg(&jnl));
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out.stderr).contains("damaged"),
            "{}",
            text(&out.stderr)
        );
        assert_unchanged(&before, &dir, "a writer on a damaged store");

        // `store check` reports it (exit 3) and changes nothing.
        let out = run(paytrace(&dir).args(["--json", "store", "check"]));
        assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
        let check: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(check["intact"], false);
        let damaged: Vec<&Value> = check["journals"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|j| j["state"] == "damaged")
            .collect();
        assert_eq!(damaged.len(), 1, "{check}");
        let offset = damaged[0]["damage_offset"].as_u64().unwrap();
        assert!(offset > 0, "{check}");
        let intact = check["last_intact"].as_str().unwrap().to_owned();
        assert!(intact.contains("chain id 1 at block"), "{intact}");
        assert_unchanged(&before, &dir, "store check");

        // `store repair` cuts the store back and says what is lost.
        let out = ok(paytrace(&dir).args(["store", "repair"]));
        let said = text(&out.stdout);
        assert!(said.contains("LOST"), "{said}");
        assert!(said.contains(&format!("at byte {offset}")), "{said}");
        let stats = json(paytrace(&dir).args(["--json", "stats"]));
        let cp = stats["chains"][0]["last_block"].as_u64().unwrap();
        assert!(cp < last, "repair kept block {cp} of {last}");
        assert!(
            intact.contains(&format!("chain id 1 at block {cp} ")),
            "check announced {intact}, repair kept block {cp}"
        );
        let transfers = stats["chains"][0]["transfers"].as_u64().unwrap();
        assert_eq!(transfers, cp * 2, "counters agree with the checkpoint");
        let out = run(paytrace(&dir).args(["store", "check"]));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    }
}

#[test]
fn store_check_on_an_intact_store_lists_keyspaces_and_chains() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let last = write_store(&dir, 3);
    // Closed by a bulk writer: the next opens (check's included) write nothing.
    Store::open(&dir).unwrap().persist_for_reopen().unwrap();
    let before = snapshot(&dir);
    let check = json(paytrace(&dir).args(["--json", "store", "check"]));
    assert_eq!(check["intact"], true);
    assert_eq!(check["chains"][0]["chain"], CHAIN);
    assert_eq!(check["chains"][0]["last_block"], last);
    let transfers = check["keyspaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "transfers")
        .unwrap();
    assert_eq!(transfers["entries"], last * 2);
    assert_unchanged(&before, &dir, "store check");
}

const READ_COMMANDS: &[&[&str]] = &[
    &["stats"],
    &["address", "0x00000000000000000000000000000000000000a1"],
    &["trace", "0x00000000000000000000000000000000000000a1"],
    &[
        "labels",
        "show",
        "0x00000000000000000000000000000000000000a1",
    ],
    &["labels", "list"],
    &[
        "cluster",
        "show",
        "0x00000000000000000000000000000000000000a1",
    ],
    &["screen", "0x00000000000000000000000000000000000000a1"],
    &["patterns"],
];

#[test]
fn read_commands_on_a_missing_store_fail_and_create_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("typo").join("store");
    for args in READ_COMMANDS {
        let out = run(paytrace(&dir).args(*args));
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(&dir.display().to_string()), "{args:?}: {err}");
        assert!(err.contains("no paytrace store"), "{args:?}: {err}");
        assert!(err.contains("paytrace index evm"), "{args:?}: {err}");
        assert!(err.contains("paytrace demo"), "{args:?}: {err}");
        assert!(
            !tmp.path().join("typo").exists(),
            "{args:?} created the data dir"
        );
    }
    // Without --data-dir: the default ./paytrace-data is not created either.
    let cwd = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_paytrace"))
        .args(["trace", "0x00000000000000000000000000000000000000a1"])
        .env_remove("PAYTRACE_CONFIG")
        .env_remove("PAYTRACE_DATA_DIR")
        .current_dir(cwd.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!cwd.path().join("paytrace-data").exists());
    // An empty directory is no store either, and stays empty.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = run(paytrace(&empty).arg("stats"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
    // A file where the data dir should be is refused by readers and writers alike.
    let file = tmp.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    for args in [
        &["stats"][..],
        &["labels", "import", "--format", "list", "x"][..],
    ] {
        let out = run(paytrace(&file).args(args));
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out.stderr).contains("is not a directory"),
            "{}",
            text(&out.stderr)
        );
    }
}

/// An ethereum-etl token-transfer CSV of `n` rows over 50 addresses.
fn transfers_csv(path: &Path, n: u64) -> Vec<String> {
    let addrs: Vec<String> = (0..50).map(|i| format!("0x{:040x}", 0xa0 + i)).collect();
    let mut s = String::from(
        "token_address,from_address,to_address,value,transaction_hash,log_index,block_number,block_timestamp\n",
    );
    for i in 0..n {
        let b = 1_000 + i / 5;
        s.push_str(&format!(
            "0x{:040x},{},{},{},0x{:064x},{},{b},{}\n",
            0xee,
            addrs[usize::try_from(i % 50).unwrap()],
            addrs[usize::try_from((i * 7 + 3) % 50).unwrap()],
            1_000 + i,
            i + 1,
            i % 5,
            1_700_000_000 + b * 12
        ));
    }
    std::fs::write(path, s).unwrap();
    addrs
}

#[test]
fn bulk_writers_leave_an_empty_journal_and_read_commands_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let csv = tmp.path().join("t.csv");
    let addrs = transfers_csv(&csv, 2_000);
    ok(paytrace(&dir)
        .args(["import", "transfers"])
        .arg(&csv)
        .args(["--chain", CHAIN]));
    let list = tmp.path().join("exchanges.txt");
    std::fs::write(&list, format!("{}\n{}\n", addrs[0], addrs[1])).unwrap();
    ok(paytrace(&dir)
        .args([
            "labels",
            "import",
            "--format",
            "list",
            "--category",
            "exchange",
        ])
        .args(["--chain", "ethereum", "--version", "2025-01-01"])
        .arg(&list));
    // The next open replays nothing.
    assert_eq!(std::fs::metadata(journal(&dir)).unwrap().len(), 0);
    let before = snapshot(&dir);
    for args in [
        &["stats"][..],
        &["address", &addrs[0]],
        &["trace", &addrs[0]],
        &["labels", "show", &addrs[0]],
        &["labels", "list"],
        &["labels", "sources"],
        &["store", "check"],
    ] {
        ok(paytrace(&dir).args(args));
        assert_unchanged(&before, &dir, &format!("{args:?}"));
    }
}

#[test]
fn concurrent_first_opens_of_a_new_data_dir_do_not_fail_with_an_engine_error() {
    for round in 0..3 {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("new");
        let csv = tmp.path().join("t.csv");
        transfers_csv(&csv, 200);
        let children: Vec<_> = (0..3)
            .map(|i| {
                paytrace(&dir)
                    .args(["import", "transfers"])
                    .arg(&csv)
                    .args(["--chain", &format!("c{i}")])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut succeeded = 0;
        for c in children {
            let out = c.wait_with_output().unwrap();
            let err = text(&out.stderr);
            if out.status.success() {
                succeeded += 1;
            } else {
                assert!(
                    err.contains("is in use by") && err.contains("wait for it to finish"),
                    "round {round}: {err}"
                );
            }
            assert!(!err.contains("InvalidVersion"), "round {round}: {err}");
        }
        assert!(succeeded >= 1, "round {round}: no open succeeded");
        ok(paytrace(&dir).arg("stats"));
    }
}

#[test]
fn a_locked_store_names_the_holding_command() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    write_store(&dir, 1);
    let held = Store::open(&dir).unwrap();
    for args in [
        &["stats"][..],
        &["labels", "import", "--format", "list", "x"][..],
    ] {
        let out = run(paytrace(&dir).args(args));
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{args:?}: {err}"
        );
        assert!(err.contains("store_cli"), "the test binary's name: {err}");
        assert!(err.contains("wait for it to finish"), "{err}");
    }
    drop(held);
    ok(paytrace(&dir).arg("stats"));
}

/// Regression: a damaged table was reported by its keyspace only; `store check` names the
/// table file (and the other tables of the keyspace read fine).
#[test]
fn store_check_names_the_damaged_table_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    write_store(&dir, 20);
    // Everything in tables, the journal empty.
    Store::open(&dir).unwrap().persist_for_reopen().unwrap();
    let check = json(paytrace(&dir).args(["--json", "store", "check"]));
    let folder = check["keyspaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "transfers")
        .unwrap()["folder"]
        .as_str()
        .unwrap()
        .to_owned();
    let tables: Vec<PathBuf> = std::fs::read_dir(Path::new(&folder).join("tables"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let table = tables
        .iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    // 16 bytes inside the data blocks (written first, before the index and the trailer).
    let mut b = std::fs::read(table).unwrap();
    let at = b.len() / 10;
    for x in &mut b[at..at + 16] {
        *x ^= 0x5a;
    }
    std::fs::write(table, b).unwrap();
    let out = run(paytrace(&dir).args(["--json", "store", "check"]));
    assert!(!out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["intact"], false, "{v}");
    let ks = v["keyspaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "transfers")
        .unwrap();
    let damaged = ks["damaged_tables"].as_array().unwrap();
    assert_eq!(damaged.len(), 1, "{ks}");
    assert_eq!(damaged[0]["file"], table.display().to_string(), "{ks}");
    let out = run(paytrace(&dir).args(["store", "check"]));
    assert!(
        text(&out.stdout).contains(&format!("table file {}", table.display())),
        "{}",
        text(&out.stdout)
    );
}
