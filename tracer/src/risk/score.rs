//! Risk levels and the configurable scoring (docs/heuristics.md, "Risk scoring").

use super::{Exposure, ExposureKind};
use crate::source::Category;
use paytrace_indexer::Timestamp;
use serde::Serialize;
use std::{collections::BTreeMap, fmt, str::FromStr};

/// Risk level, ordered `none < low < medium < high < severe`: the one level type of screening,
/// reports, alerts and the demo.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum RiskLevel {
    /// Nothing found.
    #[default]
    None,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Severe.
    Severe,
}

impl RiskLevel {
    /// The lower-case name.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Severe => "severe",
        }
    }
}

impl fmt::Display for RiskLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown level name.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown risk level {0:?}: expected none, low, medium, high or severe")]
pub struct UnknownLevel(pub String);

impl FromStr for RiskLevel {
    type Err = UnknownLevel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Self::None),
            "low" => Ok(Self::Low),
            "medium" => Ok(Self::Medium),
            "high" => Ok(Self::High),
            "severe" => Ok(Self::Severe),
            _ => Err(UnknownLevel(s.to_owned())),
        }
    }
}

/// The scoring rules. Every score is in 0..100; the address's score is its highest reason's.
#[derive(Clone, PartialEq, Debug, Serialize)]
pub struct Scoring {
    /// Severity 0..100 per category (unlisted categories: 0, reported but not scored).
    pub severities: BTreeMap<String, u32>,
    /// Multiplier per hop of indirect exposure (hop h counts `hop_decay^h`).
    pub hop_decay: f64,
    /// Indirect exposure at or above this share counts fully; below, `sqrt(share / full_share)`.
    pub full_share: f64,
    /// Materiality floor: indirect exposure below this share of the address's flows (of the
    /// asset) scores at most `low` (it is reported, never severe).
    pub min_share: f64,
    /// Multiplier when the counterparty was labelled only after the transfers.
    pub before_listing_weight: f64,
    /// Exposure whose last transfer is older than this many days (before the as-of day) counts
    /// `old_weight`.
    pub recency_days: u64,
    /// See `recency_days`.
    pub old_weight: f64,
    /// A pattern instance scores `pattern_weight × instance score`.
    pub pattern_weight: f64,
    /// Lowest score of each level: severe, high, medium, low.
    pub thresholds: [f64; 4],
    /// Network context: a counterparty wallet counts when it received at least this share of
    /// the address's outflow (of an asset), and its own sends to high-risk categories count
    /// when they are at least this share of what it sent (of an asset).
    pub network_min_share: f64,
    /// Network context: a wallet consolidates payees' salaries when value from at least two
    /// payees of the address's payer is at least this share of what it received (of an
    /// asset).
    pub consolidation_min_share: f64,
    /// Network context: categories of at least this severity are high-risk counterparties.
    pub network_min_severity: u32,
    /// Score of a network-context finding alone (a consolidation wallet, or a wallet sending a
    /// material share to high-risk addresses): medium by default.
    pub network_score: f64,
    /// Score of a consolidation wallet that also sends a material share to high-risk
    /// addresses (the salary-consolidation signature): high by default.
    pub signature_score: f64,
}

/// Default category severities.
pub const DEFAULT_SEVERITIES: [(&str, u32); 11] = [
    ("sanctioned", 100),
    ("ransomware", 90),
    ("darknet_market", 85),
    ("hack", 85),
    ("blocklisted", 80),
    ("scam", 75),
    ("mixer", 70),
    ("gambling", 30),
    ("otc", 15),
    ("bridge", 5),
    ("exchange", 0),
];

impl Default for Scoring {
    /// The defaults of `[risk]` (`paytrace_config::RiskConfig::default`), the one place they
    /// are set.
    fn default() -> Self {
        Self::from_config(&paytrace_config::RiskConfig::default())
    }
}

impl Scoring {
    /// The scoring of a `[risk]` section: its severities merged over [`DEFAULT_SEVERITIES`].
    pub fn from_config(cfg: &paytrace_config::RiskConfig) -> Self {
        let mut severities: BTreeMap<String, u32> = DEFAULT_SEVERITIES
            .iter()
            .map(|(c, s)| ((*c).to_owned(), *s))
            .collect();
        for (c, s) in &cfg.severities {
            severities.insert(c.trim().to_ascii_lowercase(), *s);
        }
        let t = &cfg.thresholds;
        Self {
            severities,
            hop_decay: cfg.hop_decay,
            full_share: cfg.full_share,
            min_share: cfg.min_share,
            before_listing_weight: cfg.before_listing_weight,
            recency_days: cfg.recency_days,
            old_weight: cfg.old_weight,
            pattern_weight: cfg.pattern_weight,
            thresholds: [t.severe, t.high, t.medium, t.low],
            network_min_share: cfg.network_min_share,
            consolidation_min_share: cfg.consolidation_min_share,
            network_min_severity: cfg.network_min_severity,
            network_score: cfg.network_score,
            signature_score: cfg.signature_score,
        }
    }

    /// The severity of `cat`.
    pub fn severity(&self, cat: &Category) -> u32 {
        self.severities
            .get(cat.as_str())
            .copied()
            .unwrap_or(0)
            .min(100)
    }

    /// The level of a score.
    pub fn level(&self, score: f64) -> RiskLevel {
        let [severe, high, medium, low] = self.thresholds;
        if score >= severe {
            RiskLevel::Severe
        } else if score >= high {
            RiskLevel::High
        } else if score >= medium {
            RiskLevel::Medium
        } else if score >= low && score > 0.0 {
            RiskLevel::Low
        } else {
            RiskLevel::None
        }
    }

    /// The score of one exposure (as of the time `now`).
    pub fn exposure_score(&self, e: &Exposure, now: Timestamp) -> f64 {
        self.score(
            &e.category,
            e.kind,
            e.hops,
            e.share,
            e.labelled_at_time,
            e.last_time,
            now,
        )
    }

    /// The one exposure scoring rule (docs/heuristics.md, "Risk scoring"): severity of
    /// `category`, times `hop_decay^hops` and `sqrt(share / full_share)` below `full_share`
    /// (indirect), capped at the `low` threshold below the `min_share` materiality floor
    /// (indirect), times `before_listing_weight` when labelled only later, times `old_weight`
    /// when the last transfer is older than `recency_days` before `now`. `hops` counts after
    /// the direct counterparty (0: direct).
    #[allow(clippy::too_many_arguments)]
    pub fn score(
        &self,
        category: &Category,
        kind: ExposureKind,
        hops: u32,
        share: f64,
        labelled_at_time: bool,
        last_time: Timestamp,
        now: Timestamp,
    ) -> f64 {
        let sev = f64::from(self.severity(category));
        if sev == 0.0 {
            return 0.0;
        }
        let mut s = sev;
        let mut immaterial = false;
        if kind == ExposureKind::Indirect {
            immaterial = share < self.min_share;
            s *= self.hop_decay.powi(i32::try_from(hops).unwrap_or(i32::MAX));
            if share < self.full_share && self.full_share > 0.0 {
                s *= (share / self.full_share).sqrt();
            }
        }
        if !labelled_at_time {
            s *= self.before_listing_weight;
        }
        let age_days = now.0.saturating_sub(last_time.0) / 86_400;
        if age_days > self.recency_days {
            s *= self.old_weight;
        }
        if immaterial {
            // Reported, but below the materiality floor it never scores above low.
            s = sev.min(self.thresholds[3]);
        }
        s.clamp(0.0, 100.0)
    }
}
