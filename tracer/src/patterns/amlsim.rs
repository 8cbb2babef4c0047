//! Pattern-level ground truth of an IBM AMLSim sample, and the scoring of detector output
//! against it.
//!
//! A sample folder holds `nodes.csv` (`nodeid,isFraud,init_balance,fraudStep`) and
//! `transactions.csv` (`sourceNodeId,targetNodeId,value,time`), optionally `alertPatterns*.csv`
//! (the typology parameters: `type`, `min_accounts`, `max_accounts`, ...). The 2019 samples
//! carry no list of the planted instances, so they are rebuilt from the transfers:
//!
//! * **pattern transfers** are the transfers between two accounts of planted patterns
//!   (`isFraud = 1`) whose amount lies below the background's range, the smallest amount any
//!   account outside the patterns sends (the simulator draws ordinary transfers, fraud
//!   accounts' included, from one range; the typologies move amounts outside it);
//! * a **fan-in instance that executed** is a receiver of pattern transfers with its senders;
//!   targets with at least 2 senders are the ones a fan-in detector can be asked to find;
//! * a **complete cycle that executed** is a simple directed cycle of pattern transfers (at most
//!   the `max_accounts` of the `cycle` row of `alertPatterns*.csv`, else 10 accounts); it is a
//!   [`CycleKind::RoundTrip`] when, from some account, one transfer of each edge can be picked
//!   in time order round the loop, else a [`CycleKind::ClosedLoop`];
//! * the **participants** are the accounts of pattern transfers.
//!
//! The simulator's `fraudStep` is not used: it holds one step per account, while an account
//! can take part in two patterns (its second pattern's transfers are at another step), and
//! fraud accounts also make ordinary transfers at that step.
//!
//! Node labels (`isFraud`) only say which accounts belong to some pattern; detector output is
//! never scored against them node by node, only instance by instance ([`AmlSim::score`]), and
//! nodes against the participants of executed patterns.
//!
//! [`AmlSim::transfers`] gives the sample as paytrace transfers in the layout of its ethereum-etl
//! conversion: node `n` is address `n + 1`, values are cents of one token
//! ([`AMLSIM_TOKEN`]), time step `s` is block `s` at `1 600 000 000 + s × 86 400`.

use super::{CycleKind, PatternInstance, PatternKind};
use alloy_primitives::B256;
use paytrace_indexer::{
    Address, Amount, Asset, BlockNumber, ChainId, Timestamp, Transfer, TransferKey, TransferKind,
    TxHash,
};
use serde::Serialize;
use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

/// The token contract of the converted sample (`0x00…aa`).
pub const AMLSIM_TOKEN: Address = {
    let mut b = [0u8; 20];
    b[19] = 0xaa;
    Address::Evm(b)
};

/// Block time of step 0 of the converted sample.
pub const AMLSIM_BASE_TIME: u64 = 1_600_000_000;

/// Seconds per AMLSim time step in the converted sample (one day).
pub const AMLSIM_STEP_SECS: u64 = 86_400;

/// Longest planted cycle when `alertPatterns*.csv` names none.
const DEFAULT_MAX_CYCLE: usize = 10;

/// An AMLSim sample that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum AmlSimError {
    /// A file is missing or unreadable.
    #[error("cannot read AMLSim file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A row does not parse.
    #[error("{path}:{line}: bad {field} {value:?} in the AMLSim sample")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// Column name.
        field: &'static str,
        /// The text found.
        value: String,
    },
    /// A transaction names a node that `nodes.csv` does not have.
    #[error("{path}:{line}: node {node} is not in nodes.csv")]
    UnknownNode {
        /// The transactions file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// The node id.
        node: u64,
    },
}

impl AmlSimError {
    /// Whether retrying could help (a read error, not bad content).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Io { .. })
    }
}

/// One transaction of the sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tx {
    from: u64,
    to: u64,
    cents: u64,
    step: u64,
}

/// A planted instance that executed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlantedInstance {
    /// `fan-in` or `cycle`.
    #[serde(rename = "type")]
    pub kind: PatternKind,
    /// Fan-in: the receiving account; cycle: its smallest address.
    pub center: Address,
    /// Every account taking part (the center included), sorted.
    pub members: Vec<Address>,
    /// Pattern transfers that executed.
    pub transfers: usize,
    /// Cycles only: whether the transfers can be taken in time order round the loop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cycle_kind: Option<CycleKind>,
}

/// Found / planted and instance precision of one typology (or, for nodes, participants
/// flagged / participants and flagged accounts that are participants).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct KindScore {
    /// Planted instances that executed and are scored (fan-in: at least 2 senders).
    pub planted: usize,
    /// Of these, found by some instance.
    pub found: usize,
    /// `found / planted` (1 when nothing is planted).
    pub recall: f64,
    /// Detector instances of this typology.
    pub instances: usize,
    /// Of these, matching a planted instance.
    pub correct_instances: usize,
    /// `correct_instances / instances` (1 when there are none).
    pub precision: f64,
    /// Centers of planted instances not found (at most 20).
    pub missed: Vec<Address>,
}

impl KindScore {
    /// The score of `found` of `planted`, `correct` of `instances`, with the first 20 misses.
    fn new(
        planted: usize,
        found: usize,
        instances: usize,
        correct: usize,
        missed: impl IntoIterator<Item = Address>,
    ) -> Self {
        Self {
            planted,
            found,
            recall: ratio(found, planted),
            instances,
            correct_instances: correct,
            precision: ratio(correct, instances),
            missed: missed.into_iter().take(20).collect(),
        }
    }
}

/// Pattern-level score of detector output on one sample.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AmlSimScore {
    /// Fan-in: a planted target (at least 2 senders) is found when a fan-in instance has it as
    /// center; an instance is correct when its center is a planted target and one of its
    /// members is one of that target's planted senders.
    pub fan_in: KindScore,
    /// Cycles: a planted complete cycle is found when a cycle instance (round trip or closed
    /// loop) has exactly its accounts; an instance is correct when it has exactly the accounts
    /// of a planted cycle.
    pub cycle: KindScore,
    /// Round trips: a planted cycle whose transfers run in time order round the loop is found
    /// when a round-trip instance has exactly its accounts; a round-trip instance is correct
    /// when it has exactly the accounts of such a planted cycle.
    pub round_trip: KindScore,
    /// Nodes: the planted items are the participants (accounts of pattern transfers), the
    /// found items the members of fan-in and cycle instances; a participant is found when some
    /// instance names it, a flagged account is correct when it is a participant.
    pub nodes: KindScore,
}

/// A detector instance as far as scoring needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundInstance {
    /// The typology.
    pub kind: PatternKind,
    /// Its center.
    pub center: Address,
    /// Its members, sorted.
    pub members: Vec<Address>,
    /// Cycles: round trip or closed loop.
    pub cycle_kind: Option<CycleKind>,
}

/// A loaded sample.
#[derive(Debug)]
pub struct AmlSim {
    txs: Vec<Tx>,
    fan_ins: Vec<PlantedInstance>,
    cycles: Vec<PlantedInstance>,
    participants: BTreeSet<Address>,
    declared: Vec<String>,
    background_min_cents: Option<u64>,
}

/// The address of AMLSim node `n` in the converted sample (`n + 1`, big-endian).
pub fn node_address(n: u64) -> Address {
    let mut b = [0u8; 20];
    b[12..].copy_from_slice(&n.saturating_add(1).to_be_bytes());
    Address::Evm(b)
}

fn read(path: &Path) -> Result<String, AmlSimError> {
    std::fs::read_to_string(path).map_err(|source| AmlSimError::Io {
        path: path.to_owned(),
        source,
    })
}

/// `"103.5"` → 10350 cents.
fn cents(v: &str) -> Option<u64> {
    let (whole, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 2 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let w: u64 = whole.parse().ok()?;
    let f: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<2}").parse().ok()?
    };
    w.checked_mul(100)?.checked_add(f)
}

/// Rows of a CSV file after its header, with their 1-based line numbers.
fn rows(text: &str) -> impl Iterator<Item = (u64, Vec<&str>)> {
    text.lines()
        .enumerate()
        .skip(1)
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let line = u64::try_from(i).unwrap_or(u64::MAX).saturating_add(1);
            (line, l.split(',').map(str::trim).collect())
        })
}

impl AmlSim {
    /// Loads the sample in `dir`.
    pub fn load(dir: &Path) -> Result<Self, AmlSimError> {
        if !dir.is_dir() {
            return Err(AmlSimError::Io {
                path: dir.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such sample directory",
                ),
            });
        }
        let nodes_path = dir.join("nodes.csv");
        let tx_path = dir.join("transactions.csv");
        let nodes_text = read(&nodes_path)?;
        let tx_text = read(&tx_path)?;
        let bad = |path: &Path, line: u64, field: &'static str, value: &str| AmlSimError::Parse {
            path: path.to_owned(),
            line,
            field,
            value: value.to_owned(),
        };
        let mut fraud: BTreeMap<u64, bool> = BTreeMap::new();
        for (line, f) in rows(&nodes_text) {
            let id = f.first().copied().unwrap_or_default();
            let flag = f.get(1).copied().unwrap_or_default();
            let id: u64 = id
                .parse()
                .map_err(|_| bad(&nodes_path, line, "nodeid", id))?;
            let flag = match flag {
                "1" => true,
                "0" => false,
                other => return Err(bad(&nodes_path, line, "isFraud", other)),
            };
            fraud.insert(id, flag);
        }
        let mut txs = Vec::new();
        for (line, f) in rows(&tx_text) {
            let field = |i: usize| f.get(i).copied().unwrap_or_default();
            let node = |i: usize, name: &'static str| -> Result<u64, AmlSimError> {
                let v = field(i);
                let n: u64 = v.parse().map_err(|_| bad(&tx_path, line, name, v))?;
                if fraud.contains_key(&n) {
                    Ok(n)
                } else {
                    Err(AmlSimError::UnknownNode {
                        path: tx_path.clone(),
                        line,
                        node: n,
                    })
                }
            };
            let from = node(0, "sourceNodeId")?;
            let to = node(1, "targetNodeId")?;
            let cents = cents(field(2)).ok_or_else(|| bad(&tx_path, line, "value", field(2)))?;
            let step: u64 = field(3)
                .parse()
                .map_err(|_| bad(&tx_path, line, "time", field(3)))?;
            txs.push(Tx {
                from,
                to,
                cents,
                step,
            });
        }
        let (declared, max_cycle) = Self::alert_patterns(dir)?;
        let is_fraud = |n: &u64| fraud.get(n).copied().unwrap_or(false);
        let background_min_cents = txs
            .iter()
            .filter(|t| !is_fraud(&t.from))
            .map(|t| t.cents)
            .min();
        let pattern: Vec<&Tx> = txs
            .iter()
            .filter(|t| {
                t.from != t.to
                    && is_fraud(&t.from)
                    && is_fraud(&t.to)
                    && background_min_cents.is_some_and(|m| t.cents < m)
            })
            .collect();
        let participants: BTreeSet<Address> = pattern
            .iter()
            .flat_map(|t| [node_address(t.from), node_address(t.to)])
            .collect();
        // Fan-in targets.
        let mut by_target: BTreeMap<u64, (BTreeSet<u64>, usize)> = BTreeMap::new();
        for t in &pattern {
            let e = by_target.entry(t.to).or_default();
            e.0.insert(t.from);
            e.1 += 1;
        }
        let fan_ins = by_target
            .into_iter()
            .map(|(target, (senders, n))| {
                let mut members: Vec<Address> = senders.iter().map(|s| node_address(*s)).collect();
                members.push(node_address(target));
                members.sort();
                PlantedInstance {
                    kind: PatternKind::FanIn,
                    center: node_address(target),
                    members,
                    transfers: n,
                    cycle_kind: None,
                }
            })
            .collect();
        // Complete cycles of pattern transfers.
        let mut succ: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
        let mut steps: BTreeMap<(u64, u64), Vec<u64>> = BTreeMap::new();
        for t in &pattern {
            succ.entry(t.from).or_default().insert(t.to);
            steps.entry((t.from, t.to)).or_default().push(t.step);
        }
        steps.values_mut().for_each(|v| v.sort_unstable());
        let mut cycles = Vec::new();
        for &start in succ.keys() {
            let mut path = vec![start];
            cycle_dfs(&succ, max_cycle, &mut path, &mut |p: &[u64]| {
                let edges: Vec<&[u64]> = p
                    .iter()
                    .zip(p.iter().cycle().skip(1))
                    .map(|(a, b)| steps.get(&(*a, *b)).map_or(&[][..], Vec::as_slice))
                    .collect();
                let n: usize = edges.iter().map(|e| e.len()).sum();
                let kind = if time_ordered(&edges) {
                    CycleKind::RoundTrip
                } else {
                    CycleKind::ClosedLoop
                };
                let mut members: Vec<Address> = p.iter().map(|x| node_address(*x)).collect();
                members.sort();
                cycles.push(PlantedInstance {
                    kind: PatternKind::Cycle,
                    center: node_address(start),
                    members,
                    transfers: n,
                    cycle_kind: Some(kind),
                });
            });
        }
        Ok(Self {
            txs,
            fan_ins,
            cycles,
            participants,
            declared,
            background_min_cents,
        })
    }

    /// The pattern types declared by the `alertPatterns*.csv` files of `dir` (in file and row
    /// order, each once), and the longest planted cycle: the largest `max_accounts` of a
    /// `cycle` row, else 10.
    fn alert_patterns(dir: &Path) -> Result<(Vec<String>, usize), AmlSimError> {
        let entries = std::fs::read_dir(dir).map_err(|source| AmlSimError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let mut best: Option<usize> = None;
        let mut declared: Vec<String> = Vec::new();
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.starts_with("alertPatterns") && name.ends_with(".csv")
            })
            .map(|e| e.path())
            .collect();
        files.sort();
        for path in files {
            let text = read(&path)?;
            let mut lines = text.lines();
            let header: Vec<&str> = lines
                .next()
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .collect();
            let col = |n: &str| {
                header
                    .iter()
                    .position(|h| h.trim_start_matches('\u{feff}') == n)
            };
            let Some(ty) = col("type") else {
                continue;
            };
            let max = col("max_accounts");
            for (line, f) in rows(&text) {
                if let Some(t) = f.get(ty).filter(|t| !t.is_empty())
                    && !declared.iter().any(|d| d == t)
                {
                    declared.push((*t).to_owned());
                }
                if let (Some(max), Some("cycle")) = (max, f.get(ty).copied()) {
                    let v = f.get(max).copied().unwrap_or_default();
                    let n: usize = v.parse().map_err(|_| AmlSimError::Parse {
                        path: path.clone(),
                        line,
                        field: "max_accounts",
                        value: v.to_owned(),
                    })?;
                    best = Some(best.map_or(n, |b: usize| b.max(n)));
                }
            }
        }
        Ok((declared, best.unwrap_or(DEFAULT_MAX_CYCLE)))
    }

    /// The pattern types the sample's `alertPatterns*.csv` declares (`fan_in`, `cycle`, ...;
    /// empty without such a file).
    pub fn declared_patterns(&self) -> &[String] {
        &self.declared
    }

    /// Every account of a pattern transfer, sorted.
    pub fn participants(&self) -> &BTreeSet<Address> {
        &self.participants
    }

    /// Number of transactions.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// Whether the sample has no transactions.
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// The data's horizon: from step 0 to the end of its last step, in seconds of the converted
    /// sample's block time (150 steps: 12 960 000 s). The one parameter the detectors are given.
    pub fn horizon_secs(&self) -> u64 {
        let last = self.txs.iter().map(|t| t.step).max().unwrap_or(0);
        last.saturating_add(1).saturating_mul(AMLSIM_STEP_SECS)
    }

    /// The smallest amount (cents) sent by an account outside the patterns.
    pub fn background_min_cents(&self) -> Option<u64> {
        self.background_min_cents
    }

    /// Every planted fan-in that executed (at least one sender).
    pub fn planted_fan_ins(&self) -> &[PlantedInstance] {
        &self.fan_ins
    }

    /// Every planted cycle that executed completely.
    pub fn planted_cycles(&self) -> &[PlantedInstance] {
        &self.cycles
    }

    /// The sample as transfers on `chain` (layout in the module documentation).
    pub fn transfers(&self, chain: ChainId) -> Vec<Transfer> {
        let mut pos: BTreeMap<u64, u32> = BTreeMap::new();
        self.txs
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let p = pos.entry(t.step).or_default();
                let position = *p;
                *p = p.saturating_add(1);
                let mut h = [0u8; 32];
                h[24..].copy_from_slice(&u64::try_from(i + 1).unwrap_or(u64::MAX).to_be_bytes());
                Transfer {
                    key: TransferKey {
                        chain,
                        block: BlockNumber(t.step),
                        tx_index: 0,
                        kind: TransferKind::Token,
                        position,
                    },
                    time: Timestamp(
                        AMLSIM_BASE_TIME.saturating_add(t.step.saturating_mul(AMLSIM_STEP_SECS)),
                    ),
                    tx_hash: TxHash(B256::from(h)),
                    from: node_address(t.from),
                    to: node_address(t.to),
                    asset: Asset::Token(AMLSIM_TOKEN),
                    amount: Amount::from_u64(t.cents),
                    trace_address: Vec::new(),
                }
            })
            .collect()
    }

    /// Scores detector instances (any kinds; fan-in and cycle instances are scored).
    pub fn score(&self, instances: &[PatternInstance]) -> AmlSimScore {
        let found: Vec<FoundInstance> = instances
            .iter()
            .map(|i| FoundInstance {
                kind: i.kind,
                center: i.center,
                members: i.members.clone(),
                cycle_kind: i.cycle_kind,
            })
            .collect();
        self.score_found(&found)
    }

    /// Scores instances given by type, center and sorted members (e.g. read back from
    /// `paytrace patterns --json`).
    pub fn score_found(&self, found: &[FoundInstance]) -> AmlSimScore {
        let round_trips: Vec<PlantedInstance> = self
            .cycles
            .iter()
            .filter(|c| c.cycle_kind == Some(CycleKind::RoundTrip))
            .cloned()
            .collect();
        let found_round_trips: Vec<FoundInstance> = found
            .iter()
            .filter(|f| f.cycle_kind == Some(CycleKind::RoundTrip))
            .cloned()
            .collect();
        AmlSimScore {
            fan_in: score_fan_in(&self.fan_ins, found),
            cycle: score_cycles(&self.cycles, found),
            round_trip: score_cycles(&round_trips, &found_round_trips),
            nodes: score_nodes(&self.participants, found),
        }
    }
}

fn cycle_dfs(
    succ: &BTreeMap<u64, BTreeSet<u64>>,
    max_len: usize,
    path: &mut Vec<u64>,
    found: &mut dyn FnMut(&[u64]),
) {
    let (Some(&start), Some(&last)) = (path.first(), path.last()) else {
        return;
    };
    let Some(next) = succ.get(&last) else {
        return;
    };
    for &v in next {
        if v == start {
            if path.len() >= 2 {
                found(path);
            }
            continue;
        }
        if v < start || path.len() >= max_len || path.contains(&v) {
            continue;
        }
        path.push(v);
        cycle_dfs(succ, max_len, path, found);
        path.pop();
    }
}

/// Whether one transfer of each edge (`edges[i]`: the sorted steps of the loop's `i`-th
/// edge) can be picked so that the steps never decrease round the loop, starting at some
/// edge.
fn time_ordered(edges: &[&[u64]]) -> bool {
    let n = edges.len();
    (0..n).any(|start| {
        let mut at = 0u64;
        (0..n).all(|k| {
            // The earliest transfer of the edge at or after the previous one.
            match edges[(start + k) % n].iter().find(|s| **s >= at) {
                Some(s) => {
                    at = *s;
                    true
                }
                None => false,
            }
        })
    })
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

fn score_fan_in(planted: &[PlantedInstance], instances: &[FoundInstance]) -> KindScore {
    let targets: BTreeMap<Address, &PlantedInstance> =
        planted.iter().map(|p| (p.center, p)).collect();
    let scored: Vec<&PlantedInstance> = planted
        .iter()
        .filter(|p| p.members.len() >= 3) // the target and at least 2 senders
        .collect();
    let fan: Vec<&FoundInstance> = instances
        .iter()
        .filter(|i| i.kind == PatternKind::FanIn)
        .collect();
    let centers: BTreeSet<Address> = fan.iter().map(|i| i.center).collect();
    let correct = fan
        .iter()
        .filter(|i| {
            targets.get(&i.center).is_some_and(|p| {
                i.members
                    .iter()
                    .any(|m| *m != i.center && p.members.binary_search(m).is_ok())
            })
        })
        .count();
    let missed: Vec<Address> = scored
        .iter()
        .filter(|p| !centers.contains(&p.center))
        .map(|p| p.center)
        .collect();
    let found = scored.len() - missed.len();
    KindScore::new(scored.len(), found, fan.len(), correct, missed)
}

fn score_nodes(participants: &BTreeSet<Address>, instances: &[FoundInstance]) -> KindScore {
    let flagged: BTreeSet<Address> = instances
        .iter()
        .filter(|i| matches!(i.kind, PatternKind::FanIn | PatternKind::Cycle))
        .flat_map(|i| i.members.iter().copied())
        .collect();
    let found = flagged.intersection(participants).count();
    KindScore::new(
        participants.len(),
        found,
        flagged.len(),
        found,
        participants.difference(&flagged).copied(),
    )
}

fn score_cycles(planted: &[PlantedInstance], instances: &[FoundInstance]) -> KindScore {
    let sets: BTreeSet<&[Address]> = planted.iter().map(|p| p.members.as_slice()).collect();
    let cyc: Vec<&FoundInstance> = instances
        .iter()
        .filter(|i| i.kind == PatternKind::Cycle)
        .collect();
    let got: BTreeSet<&[Address]> = cyc.iter().map(|i| i.members.as_slice()).collect();
    let correct = cyc
        .iter()
        .filter(|i| sets.contains(i.members.as_slice()))
        .count();
    let missed: Vec<Address> = planted
        .iter()
        .filter(|p| !got.contains(p.members.as_slice()))
        .map(|p| p.center)
        .collect();
    let found = planted.len() - missed.len();
    KindScore::new(planted.len(), found, cyc.len(), correct, missed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::patterns::{PatternParams, detect};

    fn sample(dir: &Path, nodes: &str, txs: &str) {
        std::fs::write(dir.join("nodes.csv"), nodes).unwrap();
        std::fs::write(dir.join("transactions.csv"), txs).unwrap();
    }

    #[test]
    fn planted_fan_ins_and_cycles_are_rebuilt_and_scored() {
        let dir = tempfile::tempdir().unwrap();
        // Fraud: 1, 2, 3 (fan-in into 3), 4, 5, 6 (cycle 4 -> 5 -> 6 -> 4); 7..9 background.
        let nodes = "nodeid,isFraud,init_balance,fraudStep\n\
                     1,1,100,3\n2,1,100,4\n3,1,100,-1\n4,1,100,5\n5,1,100,-1\n6,1,100,-1\n\
                     7,0,100,-1\n8,0,100,-1\n9,0,100,-1\n";
        let txs = "sourceNodeId,targetNodeId,value,time\n\
                   7,8,150.00,1\n8,9,120.5,1\n9,7,130,2\n1,7,200,2\n\
                   1,3,4.5,3\n2,3,3.9,4\n4,5,2.5,5\n5,6,2.4,6\n6,4,2.3,7\n";
        sample(dir.path(), nodes, txs);
        let s = AmlSim::load(dir.path()).unwrap();
        assert_eq!(s.len(), 9);
        assert_eq!(s.background_min_cents(), Some(12_050));
        let fan: Vec<_> = s
            .planted_fan_ins()
            .iter()
            .filter(|p| p.members.len() >= 3)
            .collect();
        assert_eq!(fan.len(), 1);
        assert_eq!(fan[0].center, node_address(3));
        assert_eq!(s.planted_cycles().len(), 1);
        assert_eq!(s.planted_cycles()[0].members.len(), 3);
        assert_eq!(s.planted_cycles()[0].cycle_kind, Some(CycleKind::RoundTrip));
        assert!(s.declared_patterns().is_empty());
        let expected: BTreeSet<Address> = [1, 2, 3, 4, 5, 6].map(node_address).into();
        assert_eq!(s.participants(), &expected);
        let ts = s.transfers(ChainId(1));
        assert_eq!(ts[4].from, node_address(1));
        assert_eq!(ts[4].amount, Amount::from_u64(450));
        let p = PatternParams {
            kinds: vec![PatternKind::Cycle],
            cycle_window_secs: 10 * AMLSIM_STEP_SECS,
            ..PatternParams::default()
        };
        let score = s.score(&detect(&ts, &p).instances);
        assert_eq!((score.cycle.planted, score.cycle.found), (1, 1));
        // The background loop 7 -> 8 -> 9 -> 7 is found too: not planted.
        assert_eq!(score.cycle.instances, 2);
        assert_eq!(score.cycle.correct_instances, 1);
        assert_eq!(score.fan_in.planted, 1);
        assert_eq!(score.fan_in.found, 0);
        assert_eq!(score.fan_in.missed, vec![node_address(3)]);
        // Both loops are time-ordered: the planted one is a round trip found as one.
        assert_eq!((score.round_trip.planted, score.round_trip.found), (1, 1));
        assert_eq!(score.round_trip.instances, 2);
        assert_eq!(score.round_trip.correct_instances, 1);
        // Nodes: the cycle's 3 participants of 6 are flagged, with the 3 background accounts.
        assert_eq!((score.nodes.planted, score.nodes.found), (6, 3));
        assert_eq!(
            (score.nodes.instances, score.nodes.correct_instances),
            (6, 3)
        );
        assert_eq!(score.nodes.precision, 0.5);
        assert_eq!(score.nodes.missed, [1, 2, 3].map(node_address));
    }

    /// The simulator's `fraudStep` is one step per account: an account in two patterns makes
    /// the second one's transfers at another step, and ordinary transfers at that step are
    /// not pattern transfers. The amounts tell them apart.
    #[test]
    fn pattern_transfers_are_told_by_amount_not_by_fraud_step() {
        let dir = tempfile::tempdir().unwrap();
        let nodes = "nodeid,isFraud,init_balance,fraudStep\n\
                     1,1,100,3\n2,1,100,9\n3,1,100,-1\n5,1,100,-1\n\
                     7,0,100,-1\n8,0,100,-1\n";
        let txs = "sourceNodeId,targetNodeId,value,time\n\
                   7,8,120.00,1\n1,3,4.5,3\n2,3,3.9,4\n1,5,150,3\n";
        sample(dir.path(), nodes, txs);
        std::fs::write(
            dir.path().join("alertPatterns-1K.csv"),
            "count,type,schedule_id,min_accounts,max_accounts\n\
             3,fan_in,2,5,10\n4,cycle,2,5,4\n2,fan_in,2,5,10",
        )
        .unwrap();
        let s = AmlSim::load(dir.path()).unwrap();
        assert_eq!(s.declared_patterns(), ["fan_in", "cycle"]);
        let fan: Vec<_> = s
            .planted_fan_ins()
            .iter()
            .filter(|p| p.members.len() >= 3)
            .collect();
        assert_eq!(fan.len(), 1);
        assert_eq!(fan[0].members, [1, 2, 3].map(node_address));
        assert!(
            s.planted_fan_ins()
                .iter()
                .all(|p| p.center != node_address(5))
        );
        assert!(!s.participants().contains(&node_address(5)));
    }

    #[test]
    fn round_trips_pick_one_transfer_per_edge_in_time_order() {
        // 3 -> 5 (edge 0), then 6 (edge 1), then 7 (edge 2).
        assert!(time_ordered(&[&[3, 9], &[1, 5], &[7]]));
        // From edge 1: 1, then 7 (edge 2), then 9 (edge 0).
        assert!(time_ordered(&[&[9], &[1], &[7]]));
        // 5, 2, 9 cannot be ordered from any edge.
        assert!(!time_ordered(&[&[5], &[2], &[9]]));
        assert!(!time_ordered(&[&[5], &[]]));
    }

    /// The shared sample, converted in memory (as `paytrace eval --amlsim` does) and scored with
    /// the horizon-only parameters: the same figures as the end-to-end test through
    /// `paytrace import transfers` and `paytrace patterns` in tests/compliance.rs.
    #[test]
    fn shared_sample_fan_ins_found_with_horizon_only_parameters() {
        let dir = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/data/aml/amlsim-20K_fanin200"
        ));
        let s = AmlSim::load(dir).unwrap();
        // Facts of the data README: 118,250 rows over steps 1-149.
        assert_eq!(s.len(), 118_250);
        assert_eq!(s.horizon_secs(), 12_960_000);
        assert_eq!(s.declared_patterns(), ["fan_in", "fan_out", "cycle"]);
        assert_eq!(s.participants().len(), 659);
        let mut p = PatternParams {
            kinds: vec![PatternKind::FanIn],
            fan_min_counterparties: 2,
            fan_min_unusual: 2,
            max_instances: usize::MAX,
            ..PatternParams::default()
        };
        p.set_horizon(s.horizon_secs());
        let score = s.score(&detect(&s.transfers(ChainId(1)), &p).instances);
        assert_eq!((score.fan_in.planted, score.fan_in.found), (152, 146));
        assert_eq!(score.fan_in.instances, score.fan_in.correct_instances);
        assert_eq!(score.cycle.planted, 0);
    }

    #[test]
    fn bad_samples_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let e = AmlSim::load(&dir.path().join("nowhere")).unwrap_err();
        assert!(e.to_string().contains("nowhere: no such sample"), "{e}");
        let e = AmlSim::load(dir.path()).unwrap_err();
        assert!(e.to_string().contains("nodes.csv"), "{e}");
        assert!(e.is_retryable());
        sample(
            dir.path(),
            "nodeid,isFraud\n1,0\n2,0\n",
            "sourceNodeId,targetNodeId,value,time\n1,2,1.5,1\n1,2,x,2\n",
        );
        let e = AmlSim::load(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("transactions.csv:3") && e.contains("value"),
            "{e}"
        );
        sample(
            dir.path(),
            "nodeid,isFraud\n1,0\n",
            "sourceNodeId,targetNodeId,value,time\n1,2,1.5,1\n",
        );
        let e = AmlSim::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("node 2"), "{e}");
    }
}
