//! AMLSim samples (`transactions.csv`, `nodes.csv`, `alertPatterns*.csv`), read as they are and
//! scored at the level of the planted patterns that executed, never against `isFraud` alone.
//!
//! The samples do not list pattern members, so the executed patterns are read off the
//! simulator's own bookkeeping: a node with `fraudStep` ≥ 0 performed its pattern transfer at
//! that step, so a transaction whose sender has `time == fraudStep` and whose receiver is also
//! a pattern account is a pattern transfer. Grouped by receiver, these give the executed
//! fan-in targets (kept when at least two senders executed); the connected groups in which
//! every account sends once and receives once are the executed cycles, complete in any order,
//! and time-ordered when the transfers follow each other in time round the loop.
//!
//! Node `n` becomes address `n + 1` (as `0x` + 40 hex digits), values become cents of one
//! token, the time step is the block and a day of block time.

use super::EvalError;
use paytrace_indexer::{
    Address, Amount, Asset, BlockNumber, ChainId, Timestamp, Transfer, TransferKey, TransferKind,
    TxHash,
};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Seconds per simulator step.
pub const STEP_SECS: u64 = 86_400;
/// Block time of step 0.
pub const EPOCH: u64 = 1_600_000_000;

/// A loaded sample.
#[derive(Clone, Debug)]
pub struct Sample {
    /// The transfers, in canonical order.
    pub transfers: Vec<Transfer>,
    /// From the first to the end of the last step, in seconds.
    pub horizon_secs: u64,
    /// Pattern types the sample's `alertPatterns` file declares (`fan_in`, `cycle`, ...).
    pub declared: Vec<String>,
    /// The executed patterns.
    pub truth: Planted,
}

/// The executed planted patterns of a sample.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Planted {
    /// Fan-in target → the senders that executed (at least two).
    pub fan_in: BTreeMap<Address, BTreeSet<Address>>,
    /// Cycles whose every transfer executed, in any time order.
    pub cycles_any_order: Vec<BTreeSet<Address>>,
    /// The subset of those whose transfers follow each other in time round the loop.
    pub cycles_time_ordered: Vec<BTreeSet<Address>>,
    /// Every account of an executed pattern transfer.
    pub participants: BTreeSet<Address>,
}

/// The address of node `n`.
pub fn node_address(n: u64) -> Address {
    let mut b = [0u8; 20];
    b[12..].copy_from_slice(&(n + 1).to_be_bytes());
    Address::Evm(b)
}

fn read(path: &Path) -> Result<String, EvalError> {
    if !path.is_file() {
        return Err(EvalError::MissingFile {
            path: path.to_path_buf(),
        });
    }
    std::fs::read_to_string(path).map_err(|source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn bad(path: &Path, line: usize, message: String) -> EvalError {
    EvalError::Input {
        file: path.to_path_buf(),
        line,
        message,
    }
}

/// Checks the header of `text` (first line, a BOM and spaces ignored) and returns the rows
/// with their 1-based line numbers.
fn rows<'a>(
    path: &Path,
    text: &'a str,
    header: &[&str],
) -> Result<Vec<(usize, Vec<&'a str>)>, EvalError> {
    let mut lines = text.lines().enumerate();
    let first = lines.next().map(|(_, l)| l).unwrap_or("");
    let got: Vec<&str> = first
        .trim_start_matches('\u{feff}')
        .split(',')
        .map(str::trim)
        .collect();
    if got.len() < header.len() || got[..header.len()] != *header {
        return Err(bad(
            path,
            1,
            format!("expected the header {}, found {first:?}", header.join(",")),
        ));
    }
    Ok(lines
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l.split(',').map(str::trim).collect()))
        .collect())
}

fn field<'a>(
    path: &Path,
    line: usize,
    row: &[&'a str],
    i: usize,
    name: &str,
) -> Result<&'a str, EvalError> {
    row.get(i)
        .copied()
        .ok_or_else(|| bad(path, line, format!("missing field {name}")))
}

fn int(path: &Path, line: usize, s: &str, name: &str) -> Result<i64, EvalError> {
    s.parse()
        .map_err(|_| bad(path, line, format!("field {name}: {s:?} is not an integer")))
}

fn node(path: &Path, line: usize, s: &str, name: &str) -> Result<u64, EvalError> {
    s.parse()
        .map_err(|_| bad(path, line, format!("field {name}: {s:?} is not a node id")))
}

/// A decimal value with at most two decimal places, in hundredths.
fn cents(path: &Path, line: usize, s: &str) -> Result<u64, EvalError> {
    let e = || bad(path, line, format!("field value: {s:?} is not an amount"));
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 2 || !frac.chars().all(|c| c.is_ascii_digit()) {
        return Err(e());
    }
    let w: u64 = whole.parse().map_err(|_| e())?;
    let f: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<2}").parse().map_err(|_| e())?
    };
    w.checked_mul(100)
        .and_then(|x| x.checked_add(f))
        .ok_or_else(e)
}

/// The `alertPatterns*.csv` file of `dir` (the first by name).
fn alert_patterns_file(dir: &Path) -> Result<PathBuf, EvalError> {
    let missing = || EvalError::MissingFile {
        path: dir.join("alertPatterns*.csv"),
    };
    let rd = std::fs::read_dir(dir).map_err(|_| missing())?;
    let mut found: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("alertPatterns") && n.ends_with(".csv"))
        })
        .collect();
    found.sort();
    found.into_iter().next().ok_or_else(missing)
}

/// Loads the sample in `dir`.
pub fn load(dir: &Path) -> Result<Sample, EvalError> {
    if !dir.is_dir() {
        return Err(EvalError::MissingFile {
            path: dir.to_path_buf(),
        });
    }
    let tx_path = dir.join("transactions.csv");
    let nodes_path = dir.join("nodes.csv");
    let ap_path = alert_patterns_file(dir)?;
    let tx_text = read(&tx_path)?;
    let nodes_text = read(&nodes_path)?;
    let ap_text = read(&ap_path)?;

    let mut declared: Vec<String> = Vec::new();
    for (line, r) in rows(&ap_path, &ap_text, &["count", "type"])? {
        let t = field(&ap_path, line, &r, 1, "type")?.to_owned();
        if !declared.contains(&t) {
            declared.push(t);
        }
    }
    let mut fraud_step: BTreeMap<u64, i64> = BTreeMap::new();
    for (line, r) in rows(
        &nodes_path,
        &nodes_text,
        &["nodeid", "isFraud", "init_balance", "fraudStep"],
    )? {
        let id = node(
            &nodes_path,
            line,
            field(&nodes_path, line, &r, 0, "nodeid")?,
            "nodeid",
        )?;
        let fraud = int(
            &nodes_path,
            line,
            field(&nodes_path, line, &r, 1, "isFraud")?,
            "isFraud",
        )?;
        let step = int(
            &nodes_path,
            line,
            field(&nodes_path, line, &r, 3, "fraudStep")?,
            "fraudStep",
        )?;
        if fraud == 1 {
            fraud_step.insert(id, step);
        }
    }
    let mut transfers = Vec::new();
    let mut edges: Vec<(u64, u64, u64)> = Vec::new();
    let mut position: BTreeMap<u64, u32> = BTreeMap::new();
    let (mut first, mut last) = (u64::MAX, 0u64);
    let token = Asset::Token(node_address(0xa9));
    let rows_tx = rows(
        &tx_path,
        &tx_text,
        &["sourceNodeId", "targetNodeId", "value", "time"],
    )?;
    for (i, (line, r)) in rows_tx.into_iter().enumerate() {
        let s = node(
            &tx_path,
            line,
            field(&tx_path, line, &r, 0, "sourceNodeId")?,
            "sourceNodeId",
        )?;
        let t = node(
            &tx_path,
            line,
            field(&tx_path, line, &r, 1, "targetNodeId")?,
            "targetNodeId",
        )?;
        let v = cents(&tx_path, line, field(&tx_path, line, &r, 2, "value")?)?;
        let step = node(
            &tx_path,
            line,
            field(&tx_path, line, &r, 3, "time")?,
            "time",
        )?;
        first = first.min(step);
        last = last.max(step);
        let pos = position.entry(step).or_default();
        let mut h = [0u8; 32];
        h[24..].copy_from_slice(&(i as u64 + 1).to_be_bytes());
        transfers.push(Transfer {
            key: TransferKey {
                chain: ChainId(1),
                block: BlockNumber(step),
                tx_index: *pos,
                kind: TransferKind::Token,
                position: 0,
            },
            time: Timestamp(EPOCH + step * STEP_SECS),
            tx_hash: TxHash(h.into()),
            from: node_address(s),
            to: node_address(t),
            asset: token,
            amount: Amount::from_u64(v),
            trace_address: Vec::new(),
        });
        *pos += 1;
        let executed = fraud_step
            .get(&s)
            .is_some_and(|&fs| u64::try_from(fs).is_ok_and(|fs| fs == step))
            && fraud_step.contains_key(&t);
        if executed && s != t {
            edges.push((s, t, step));
        }
    }
    if transfers.is_empty() {
        return Err(bad(&tx_path, 2, "no transactions".into()));
    }
    transfers.sort_by_key(|t| t.key);
    let horizon_secs = (last - first + 1) * STEP_SECS;
    Ok(Sample {
        transfers,
        horizon_secs,
        declared,
        truth: planted(&edges),
    })
}

/// The executed patterns of the pattern transfers `(sender, receiver, step)`.
pub fn planted(edges: &[(u64, u64, u64)]) -> Planted {
    let mut p = Planted::default();
    let mut by_target: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    let mut out: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
    let mut indeg: BTreeMap<u64, usize> = BTreeMap::new();
    for &(s, t, step) in edges {
        by_target.entry(t).or_default().insert(s);
        out.entry(s).or_default().push((t, step));
        *indeg.entry(t).or_default() += 1;
        p.participants.insert(node_address(s));
        p.participants.insert(node_address(t));
    }
    for (t, senders) in &by_target {
        if senders.len() >= 2 {
            p.fan_in.insert(
                node_address(*t),
                senders.iter().map(|s| node_address(*s)).collect(),
            );
        }
    }
    // Cycles: walk from each node along single out-edges of nodes with one in and one out.
    let simple = |n: u64| out.get(&n).is_some_and(|o| o.len() == 1) && indeg.get(&n) == Some(&1);
    let mut seen: BTreeSet<u64> = BTreeSet::new();
    for &start in out.keys() {
        if seen.contains(&start) || !simple(start) {
            continue;
        }
        let mut loop_nodes = vec![start];
        let mut steps = Vec::new();
        let mut cur = start;
        let closed = loop {
            let Some(&(next, step)) = out.get(&cur).and_then(|o| o.first()) else {
                break false;
            };
            steps.push(step);
            if next == start {
                break true;
            }
            if !simple(next) || loop_nodes.contains(&next) {
                break false;
            }
            loop_nodes.push(next);
            cur = next;
        };
        if !closed || loop_nodes.len() < 2 {
            continue;
        }
        seen.extend(loop_nodes.iter().copied());
        let set: BTreeSet<Address> = loop_nodes.iter().map(|n| node_address(*n)).collect();
        // Time-ordered: some rotation of the loop's steps is non-decreasing.
        let n = steps.len();
        let ordered = (0..n).any(|r| (1..n).all(|k| steps[(r + k - 1) % n] <= steps[(r + k) % n]));
        if ordered {
            p.cycles_time_ordered.push(set.clone());
        }
        p.cycles_any_order.push(set);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planted_patterns_from_pattern_transfers() {
        // 1, 2, 3 → 9 (fan-in); 4 → 8 alone (one sender: not a fan-in target);
        // 5 → 6 → 7 → 5 at steps 3, 4, 5 (time-ordered); 10 → 11 → 10 at steps 9, 2 (ordered
        // from 11); 12 → 13 → 14 → 12 at steps 5, 2, 9 (any order only).
        let e = [
            (1, 9, 1),
            (2, 9, 2),
            (3, 9, 2),
            (4, 8, 3),
            (5, 6, 3),
            (6, 7, 4),
            (7, 5, 5),
            (10, 11, 9),
            (11, 10, 2),
            (12, 13, 5),
            (13, 14, 2),
            (14, 12, 9),
        ];
        let p = planted(&e);
        assert_eq!(p.fan_in.len(), 1);
        assert_eq!(p.fan_in[&node_address(9)].len(), 3);
        assert_eq!(p.cycles_any_order.len(), 3);
        assert_eq!(p.cycles_time_ordered.len(), 2);
        assert_eq!(p.participants.len(), 14);
    }

    #[test]
    fn node_addresses_are_node_plus_one() {
        assert_eq!(
            node_address(0).to_string(),
            "0x0000000000000000000000000000000000000001"
        );
    }

    #[test]
    fn missing_and_bad_files_are_named() {
        let d = tempfile::tempdir().unwrap();
        let e = load(d.path()).unwrap_err().to_string();
        assert!(e.contains("alertPatterns*.csv"), "{e}");
        std::fs::write(
            d.path().join("alertPatterns-1K.csv"),
            "count,type\n1,fan_in\n",
        )
        .unwrap();
        let e = load(d.path()).unwrap_err().to_string();
        assert!(e.contains("transactions.csv"), "{e}");
        std::fs::write(
            d.path().join("transactions.csv"),
            "sourceNodeId,targetNodeId,value,time\n1,2,3.5,1\n1,x,2,1\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("nodes.csv"),
            "nodeid,isFraud,init_balance,fraudStep\n1,0,1.0,-1\n",
        )
        .unwrap();
        let e = load(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("transactions.csv:3") && e.contains("targetNodeId"),
            "{e}"
        );
    }

    #[test]
    fn the_shared_20k_fanin200_sample() {
        let dir =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/aml/amlsim-20K_fanin200");
        let s = load(&dir).unwrap();
        // Facts of the data README: 118,250 rows over steps 1-149.
        assert_eq!(s.transfers.len(), 118_250);
        assert_eq!(s.horizon_secs, 149 * STEP_SECS);
        assert_eq!(s.declared, ["fan_in", "fan_out", "cycle"]);
        // Executed fan-in targets with at least two senders (measured on the files; the
        // simulator's metadata says 200 fan-in patterns were planted).
        assert_eq!(s.truth.fan_in.len(), 151);
        assert!(s.truth.fan_in.values().all(|x| x.len() >= 2));
        assert!(s.truth.cycles_any_order.is_empty());
    }
}
