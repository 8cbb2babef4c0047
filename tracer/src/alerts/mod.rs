//! Alert rules over screening results and their deduplication keys.
//!
//! Rule evaluation is pure ([`evaluate`]): screening results of the subjects (payees of the
//! configured payers and watched addresses) in, findings with a stable deduplication key out.
//! The alert store of the application layer (`paytrace_app::alerts::AlertStore::raise`)
//! stores only findings whose key was never raised before, so re-screening after new labels
//! raises only new findings.

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

/// Evaluates `rules` over the screening results of `subjects` (`(role, result)`); convergence
/// rules use the addresses the payees' screenings reached ([`evaluate_with`] takes a payout
/// report's convergence findings instead).
pub fn evaluate(rules: &[RuleConfig], subjects: &[(Role, ScreenResult)]) -> Vec<Finding> {
    evaluate_with(rules, subjects, None)
}

/// Evaluates `rules` over the screening results of `subjects` (`(role, result)`). With
/// `convergence` (the findings of a payout report over the payers' payouts), a convergence
/// rule raises one alert per finding (naming its payees and its onward path), with the
/// report's rules applied: one finding per destination, continuations folded in, exchanges,
/// bridges and DEX routers ignored.
pub fn evaluate_with(
    rules: &[RuleConfig],
    subjects: &[(Role, ScreenResult)],
    convergence: Option<&[crate::report::Finding]>,
) -> Vec<Finding> {
    evaluate_with_units(
        rules,
        subjects,
        convergence,
        &crate::report::AssetBook::new(),
    )
}

/// [`evaluate_with`], the alerts' amounts in the token units of `assets` (an asset missing
/// from it is shown in raw units with its address).
pub fn evaluate_with_units(
    rules: &[RuleConfig],
    subjects: &[(Role, ScreenResult)],
    convergence: Option<&[crate::report::Finding]>,
    assets: &crate::report::AssetBook,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for rule in rules {
        match rule.kind {
            RuleKind::Exposure => {
                for (role, r) in subjects {
                    exposure_rule(rule, *role, r, assets, &mut out);
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
                                "{} {} screened {} as of {}: {top}",
                                role.as_str(),
                                r.address,
                                r.level,
                                r.as_of
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
            RuleKind::Convergence => match convergence {
                Some(found) => report_convergence_rule(rule, found, &mut out),
                None => convergence_rule(rule, subjects, &mut out),
            },
        }
    }
    out
}

fn exposure_rule(
    rule: &RuleConfig,
    role: Role,
    r: &ScreenResult,
    assets: &crate::report::AssetBook,
    out: &mut Vec<Finding>,
) {
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
                "{} {}: {kind} exposure ({dir}) to {} within {}, {} ({:.2}%){later}",
                role.as_str(),
                r.address,
                e.category,
                crate::risk::hops_text(transfers),
                assets.format(&e.asset, e.amount),
                e.share * 100.0
            ),
            addresses: e.counterparties.clone(),
            evidence: serde_json::to_value(e).unwrap_or_default(),
        });
    }
}

/// One alert per convergence finding of a payout report.
fn report_convergence_rule(
    rule: &RuleConfig,
    found: &[crate::report::Finding],
    out: &mut Vec<Finding>,
) {
    for f in found {
        if f.payees.len() < rule.min_payees.max(2) || f.hops > rule.max_hops.max(1) {
            continue;
        }
        let payees: Vec<Address> = f.payees.iter().map(|p| p.address).collect();
        let subject = f
            .address
            .or_else(|| f.addresses.first().copied())
            .unwrap_or(payees[0]);
        let onward = if f.onward.is_empty() {
            String::new()
        } else {
            format!(
                "; onward: {}",
                f.onward
                    .iter()
                    .map(|o| o.key.clone())
                    .collect::<Vec<_>>()
                    .join(" -> ")
            )
        };
        out.push(Finding {
            key: format!("{}|{}|convergence|{}", rule.name, f.key, join(&payees)),
            rule: rule.name.clone(),
            severity: severity(rule),
            subject,
            role: Role::Destination,
            category: f.category.as_ref().map(ToString::to_string),
            text: format!(
                "funds of {} payees ({}) converge on {} {} away{onward}",
                payees.len(),
                f.payees
                    .iter()
                    .map(|p| p.payee.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                f.key,
                crate::risk::hops_text(f.hops)
            ),
            addresses: payees,
            evidence: serde_json::to_value(f).unwrap_or_default(),
        });
    }
}

/// Convergence over the payees' screenings: the addresses their outflows reached. Of the
/// addresses reached by the same set of payees only the nearest is an alert (the others are
/// its onward path), and service addresses (where traces stop) are not meeting points.
fn convergence_rule(rule: &RuleConfig, subjects: &[(Role, ScreenResult)], out: &mut Vec<Finding>) {
    let payees: BTreeSet<Address> = subjects.iter().map(|(_, r)| r.address).collect();
    let mut at: BTreeMap<Address, (BTreeSet<Address>, u32)> = BTreeMap::new();
    for (role, r) in subjects {
        if *role != Role::Payee {
            continue;
        }
        for (dest, hops) in &r.reached {
            if u32::saturating_add(*hops, 1) <= rule.max_hops.max(1) && !payees.contains(dest) {
                let e = at.entry(*dest).or_insert((BTreeSet::new(), u32::MAX));
                e.0.insert(r.address);
                e.1 = e.1.min(*hops);
            }
        }
    }
    // Per payee set, the nearest destination (then the smallest address).
    let mut groups: BTreeMap<BTreeSet<Address>, Vec<(u32, Address)>> = BTreeMap::new();
    for (dest, (from, hops)) in at {
        if from.len() >= rule.min_payees.max(2) {
            groups.entry(from).or_default().push((hops, dest));
        }
    }
    for (from, mut dests) in groups {
        dests.sort();
        let dest = dests[0].1;
        let onward: Vec<Address> = dests[1..].iter().map(|d| d.1).collect();
        let from: Vec<Address> = from.into_iter().collect();
        out.push(Finding {
            key: format!("{}|{dest}|convergence|{}", rule.name, join(&from)),
            rule: rule.name.clone(),
            severity: severity(rule),
            subject: dest,
            role: Role::Destination,
            category: None,
            text: format!(
                "funds of {} payees converge on {dest} {} away{}",
                from.len(),
                crate::risk::hops_text(dests[0].0.saturating_add(1)),
                if onward.is_empty() {
                    String::new()
                } else {
                    format!("; onward: {}", join(&onward))
                }
            ),
            addresses: from.clone(),
            evidence: serde_json::json!({ "payees": from, "onward": onward }),
        });
    }
}

#[cfg(test)]
mod tests;
