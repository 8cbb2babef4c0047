//! Alert rules over screening results, deduplication keys, and the alert store (alerts with
//! state, watchlist, webhook outbox) in the paytrace store's own keyspaces.
//!
//! Rule evaluation is pure ([`evaluate`]): screening results of the subjects (payees of the
//! configured payers and watched addresses) in, findings with a stable deduplication key out.
//! [`AlertStore::raise`] stores only findings whose key was never raised before, so
//! re-screening after new labels raises only new findings.

mod store;

pub use store::{Alert, AlertError, AlertState, AlertStore, OutboxEntry, WatchEntry};

use crate::risk::{ExposureKind, Flow, RiskLevel, ScreenResult};
use paytrace_config::{ExposureScope, FlowScope, RuleConfig, RuleKind};
use paytrace_indexer::Address;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Why an address is screened by the alert rules.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Received a payout from a configured payer.
    Payee,
    /// On the watchlist.
    Watched,
    /// Reached by the funds of several payees (convergence rules).
    Destination,
}

impl Role {
    /// The lower-case name.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Payee => "payee",
            Self::Watched => "watched",
            Self::Destination => "destination",
        }
    }
}

/// One rule match, before deduplication.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// Deduplication key: rule, subject and what was found (stable across runs).
    pub key: String,
    /// Rule name.
    pub rule: String,
    /// Severity from the rule.
    pub severity: RiskLevel,
    /// The address the alert is about.
    pub subject: Address,
    /// Why it was screened.
    pub role: Role,
    /// Category or pattern type, if any.
    pub category: Option<String>,
    /// What was found.
    pub text: String,
    /// Addresses behind it (counterparties, destinations, payees), sorted.
    pub addresses: Vec<Address>,
    /// Evidence (exposure, pattern instance or payee list) as JSON.
    pub evidence: serde_json::Value,
}

fn join(v: &[Address]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn severity(r: &RuleConfig) -> RiskLevel {
    r.severity.parse().unwrap_or(RiskLevel::High)
}

/// Evaluates `rules` over the screening results of `subjects` (`(role, result)`).
pub fn evaluate(rules: &[RuleConfig], subjects: &[(Role, ScreenResult)]) -> Vec<Finding> {
    let mut out = Vec::new();
    for rule in rules {
        match rule.kind {
            RuleKind::Exposure => {
                for (role, r) in subjects {
                    exposure_rule(rule, *role, r, &mut out);
                }
            }
            RuleKind::Level => {
                let min: RiskLevel = rule
                    .min_level
                    .as_deref()
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(RiskLevel::High);
                for (role, r) in subjects {
                    if r.level >= min && r.level > RiskLevel::None {
                        let top = r
                            .reasons
                            .first()
                            .map(|x| x.text.clone())
                            .unwrap_or_default();
                        out.push(Finding {
                            key: format!("{}|{}|level|{}", rule.name, r.address, r.level),
                            rule: rule.name.clone(),
                            severity: severity(rule),
                            subject: r.address,
                            role: *role,
                            category: None,
                            text: format!(
                                "{} {} screened {}: {top}",
                                role.as_str(),
                                r.address,
                                r.level
                            ),
                            addresses: vec![r.address],
                            evidence: serde_json::to_value(&r.reasons).unwrap_or_default(),
                        });
                    }
                }
            }
            RuleKind::Pattern => {
                let want = rule.pattern.as_deref().unwrap_or("");
                for (role, r) in subjects {
                    for p in r.patterns.iter().filter(|p| p.kind.as_str() == want) {
                        let first = p
                            .transfers
                            .first()
                            .map(|t| t.tx_hash.to_string())
                            .unwrap_or_default();
                        out.push(Finding {
                            key: format!(
                                "{}|{}|{}|{}|{first}",
                                rule.name, r.address, p.kind, p.center
                            ),
                            rule: rule.name.clone(),
                            severity: severity(rule),
                            subject: r.address,
                            role: *role,
                            category: Some(p.kind.to_string()),
                            text: format!(
                                "{} {} takes part in a {}: {}",
                                role.as_str(),
                                r.address,
                                p.kind,
                                p.summary
                            ),
                            addresses: p.members.clone(),
                            evidence: serde_json::to_value(p).unwrap_or_default(),
                        });
                    }
                }
            }
            RuleKind::Convergence => convergence_rule(rule, subjects, &mut out),
        }
    }
    out
}

fn exposure_rule(rule: &RuleConfig, role: Role, r: &ScreenResult, out: &mut Vec<Finding>) {
    let Some(cat) = rule
        .category
        .as_deref()
        .map(|c| c.trim().to_ascii_lowercase())
    else {
        return;
    };
    for e in r.direct.iter().chain(r.indirect.iter()) {
        if e.category.as_str() != cat {
            continue;
        }
        let scope_ok = match rule.scope {
            ExposureScope::Any => true,
            ExposureScope::Direct => e.kind == ExposureKind::Direct,
            ExposureScope::Indirect => e.kind == ExposureKind::Indirect,
        };
        let dir_ok = match rule.direction {
            FlowScope::Any => true,
            FlowScope::Sent => e.direction == Flow::Sent,
            FlowScope::Received => e.direction == Flow::Received,
        };
        // Hops counted in transfers from the subject: a direct counterparty is 1.
        let transfers = e.hops.saturating_add(1);
        if !scope_ok || !dir_ok || transfers > rule.max_hops.max(1) || e.share < rule.min_share {
            continue;
        }
        let kind = match e.kind {
            ExposureKind::Direct => "direct",
            ExposureKind::Indirect => "indirect",
        };
        let dir = match e.direction {
            Flow::Sent => "sent",
            Flow::Received => "received",
        };
        let later = if e.labelled_at_time {
            String::new()
        } else {
            format!(
                " (labelled {} only since {}, after the transfers)",
                e.category,
                e.listed_since.as_deref().unwrap_or("a later date")
            )
        };
        out.push(Finding {
            key: format!(
                "{}|{}|{}|{kind}|{dir}|{}|{}",
                rule.name,
                r.address,
                e.category,
                e.asset,
                join(&e.counterparties)
            ),
            rule: rule.name.clone(),
            severity: severity(rule),
            subject: r.address,
            role,
            category: Some(e.category.to_string()),
            text: format!(
                "{} {}: {kind} exposure ({dir}) to {} within {transfers} transfers, {} raw units of {} ({:.2}%){later}",
                role.as_str(),
                r.address,
                e.category,
                e.amount,
                e.asset,
                e.share * 100.0
            ),
            addresses: e.counterparties.clone(),
            evidence: serde_json::to_value(e).unwrap_or_default(),
        });
    }
}

fn convergence_rule(rule: &RuleConfig, subjects: &[(Role, ScreenResult)], out: &mut Vec<Finding>) {
    let payees: BTreeSet<Address> = subjects.iter().map(|(_, r)| r.address).collect();
    let mut at: BTreeMap<Address, BTreeSet<Address>> = BTreeMap::new();
    for (role, r) in subjects {
        if *role != Role::Payee {
            continue;
        }
        for (dest, hops) in &r.reached {
            if u32::saturating_add(*hops, 1) <= rule.max_hops.max(1) && !payees.contains(dest) {
                at.entry(*dest).or_default().insert(r.address);
            }
        }
    }
    for (dest, from) in at {
        if from.len() < rule.min_payees {
            continue;
        }
        let from: Vec<Address> = from.into_iter().collect();
        out.push(Finding {
            key: format!("{}|{dest}|convergence|{}", rule.name, join(&from)),
            rule: rule.name.clone(),
            severity: severity(rule),
            subject: dest,
            role: Role::Destination,
            category: None,
            text: format!(
                "funds of {} payees converge on {dest} within {} transfers",
                from.len(),
                rule.max_hops
            ),
            addresses: from.clone(),
            evidence: serde_json::json!({ "payees": from }),
        });
    }
}

#[cfg(test)]
mod tests;
