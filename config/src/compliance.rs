//! The `[risk]`, `[[alerts.rules]]` and `[[alerts.webhooks]]` sections (risk screening, alert
//! rules and their delivery). Every key is documented in docs/config.md.

use crate::ConfigError;
use serde::{Deserialize, Serialize};
use std::{collections::BTreeMap, path::Path};

/// Risk scoring and screening (`[risk]`). Defaults in docs/heuristics.md ("Risk scoring").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskConfig {
    /// Hops of indirect exposure after the direct counterparty.
    pub hops: u32,
    /// Addresses expanded per trace at most.
    pub max_nodes: usize,
    /// Incoming transfers traced backwards per screening (the largest).
    pub max_backward_seeds: usize,
    /// Categories where indirect tracing stops (services).
    pub services: Vec<String>,
    /// Severity 0..100 per category; merged over the defaults (`sanctioned = 100`, ...).
    pub severities: BTreeMap<String, u32>,
    /// Multiplier per hop of indirect exposure.
    pub hop_decay: f64,
    /// Indirect exposure share that counts fully.
    pub full_share: f64,
    /// Materiality floor: indirect exposure below this share of the address's flows scores at
    /// most `low`.
    pub min_share: f64,
    /// Multiplier when the counterparty was labelled only after the transfers.
    pub before_listing_weight: f64,
    /// Exposure older than this many days counts `old_weight`.
    pub recency_days: u64,
    /// See `recency_days`.
    pub old_weight: f64,
    /// Score of a pattern instance = `pattern_weight × instance score`.
    pub pattern_weight: f64,
    /// Detect patterns around screened addresses.
    pub patterns: bool,
    /// Lowest score of each level.
    pub thresholds: Thresholds,
    /// Network context: share of the address's outflow a counterparty wallet must receive, and
    /// share of the wallet's sends to high-risk addresses that counts.
    pub network_min_share: f64,
    /// Network context: share of a wallet's receipts from several payees of the address's
    /// payer that makes it a salary consolidation wallet.
    pub consolidation_min_share: f64,
    /// Network context: lowest category severity of a high-risk receiver.
    pub network_min_severity: u32,
    /// Network context: score of a consolidation wallet, or of a wallet sending a material
    /// share to high-risk addresses.
    pub network_score: f64,
    /// Network context: score of a consolidation wallet that also sends a material share to
    /// high-risk addresses.
    pub signature_score: f64,
}

/// Lowest score (0..100) of each risk level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// severe.
    pub severe: f64,
    /// high.
    pub high: f64,
    /// medium.
    pub medium: f64,
    /// low.
    pub low: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            severe: 80.0,
            high: 60.0,
            medium: 35.0,
            low: 10.0,
        }
    }
}

/// Default service categories of `[risk] services`: where indirect exposure stops.
pub const DEFAULT_SERVICES: [&str; 9] = [
    "exchange",
    "exchange_deposit",
    "bridge",
    "mixer",
    "sanctioned",
    "defi",
    "wallet_service",
    "otc",
    "gambling",
];

impl Default for RiskConfig {
    fn default() -> Self {
        Self {
            hops: 3,
            max_nodes: 500,
            max_backward_seeds: 2,
            services: DEFAULT_SERVICES.map(str::to_owned).to_vec(),
            severities: BTreeMap::new(),
            hop_decay: 0.8,
            full_share: 0.1,
            min_share: 0.001,
            before_listing_weight: 0.5,
            recency_days: 365,
            old_weight: 0.5,
            pattern_weight: 40.0,
            patterns: true,
            thresholds: Thresholds::default(),
            network_min_share: 0.05,
            consolidation_min_share: 0.5,
            network_min_severity: 70,
            network_score: 50.0,
            signature_score: 70.0,
        }
    }
}

/// What a rule looks at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// Direct or indirect exposure to `category` (the default).
    #[default]
    Exposure,
    /// The screening level is at least `min_level`.
    Level,
    /// A pattern of type `pattern` involving the subject.
    Pattern,
    /// At least `min_payees` payees' funds reach one address.
    Convergence,
}

/// Which exposures an exposure rule matches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExposureScope {
    /// Direct or indirect.
    #[default]
    Any,
    /// The subject's own counterparty.
    Direct,
    /// Reached within `max_hops`.
    Indirect,
}

/// Sent, received or both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowScope {
    /// Both.
    #[default]
    Any,
    /// Value the subject sent.
    Sent,
    /// Value the subject received.
    Received,
}

/// One alert rule (`[[alerts.rules]]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Unique name (part of the alert's deduplication key).
    pub name: String,
    /// Severity of the alerts it raises: low, medium, high or severe.
    pub severity: String,
    /// What it looks at.
    #[serde(default)]
    pub kind: RuleKind,
    /// Exposure: the category (e.g. `sanctioned`).
    #[serde(default)]
    pub category: Option<String>,
    /// Exposure: direct, indirect or any.
    #[serde(default)]
    pub scope: ExposureScope,
    /// Exposure: sent, received or any.
    #[serde(default)]
    pub direction: FlowScope,
    /// Exposure: at most this many hops (0 = direct only).
    #[serde(default = "default_max_hops")]
    pub max_hops: u32,
    /// Exposure: at least this share of the subject's sent (received) value, 0..1.
    #[serde(default)]
    pub min_share: f64,
    /// Level: the lowest screening level that raises.
    #[serde(default)]
    pub min_level: Option<String>,
    /// Pattern: the type (`fan-in`, `peel`, ...).
    #[serde(default)]
    pub pattern: Option<String>,
    /// Convergence: at least this many payees.
    #[serde(default = "default_min_payees")]
    pub min_payees: usize,
}

fn default_max_hops() -> u32 {
    4
}

fn default_min_payees() -> usize {
    3
}

/// Payload format of a webhook.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// The alert as JSON (keys in docs/cli.md).
    #[default]
    Json,
    /// `{"text": ...}` for Slack-compatible incoming webhooks.
    Slack,
}

/// One webhook (`[[alerts.webhooks]]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Unique name (deliveries are tracked per webhook name).
    pub name: String,
    /// http or https URL; `${VAR}` is not expanded (put secrets in the URL path only if the
    /// file is private).
    pub url: String,
    /// Payload format.
    #[serde(default)]
    pub format: WebhookFormat,
    /// Only alerts of at least this severity.
    #[serde(default = "default_min_severity")]
    pub min_severity: String,
    /// Attempts per run before the delivery is left in the outbox for the next run.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// First retry delay in milliseconds (doubles per attempt).
    #[serde(default = "default_backoff")]
    pub min_backoff_ms: u64,
    /// Per-request timeout in seconds.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_min_severity() -> String {
    "low".to_owned()
}
fn default_attempts() -> u32 {
    5
}
fn default_backoff() -> u64 {
    200
}
fn default_timeout() -> u64 {
    10
}

/// The `[alerts]` section.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Payout sources (payroll providers' wallets): receivers of their transfers are screened
    /// as payees. `paytrace watch add ADDRESS --payer` adds more.
    pub payers: Vec<String>,
    /// Rules; when empty, the three default rules (docs/config.md) apply.
    pub rules: Vec<RuleConfig>,
    /// Webhooks.
    pub webhooks: Vec<WebhookConfig>,
}

impl AlertsConfig {
    /// The rules, or the defaults when none are configured: a payout or watched address whose
    /// funds reach `sanctioned` within 4 hops with at least 1 % of the value (high); direct
    /// receipt from a mixer (medium); a convergence of at least 3 payees (high).
    pub fn rules_or_default(&self) -> Vec<RuleConfig> {
        if !self.rules.is_empty() {
            return self.rules.clone();
        }
        let base = |name: &str, severity: &str, kind| RuleConfig {
            name: name.to_owned(),
            severity: severity.to_owned(),
            kind,
            category: None,
            scope: ExposureScope::Any,
            direction: FlowScope::Any,
            max_hops: 4,
            min_share: 0.0,
            min_level: None,
            pattern: None,
            min_payees: 3,
        };
        vec![
            RuleConfig {
                category: Some("sanctioned".to_owned()),
                direction: FlowScope::Sent,
                min_share: 0.01,
                ..base("reaches-sanctioned", "high", RuleKind::Exposure)
            },
            RuleConfig {
                category: Some("mixer".to_owned()),
                scope: ExposureScope::Direct,
                direction: FlowScope::Received,
                max_hops: 0,
                ..base("direct-from-mixer", "medium", RuleKind::Exposure)
            },
            base("payee-convergence", "high", RuleKind::Convergence),
        ]
    }
}

const LEVELS: [&str; 4] = ["low", "medium", "high", "severe"];

fn frac(v: f64) -> bool {
    v.is_finite() && (0.0..=1.0).contains(&v)
}

/// Checks the compliance sections; errors name the key.
pub(crate) fn validate(
    risk: &RiskConfig,
    alerts: &AlertsConfig,
    origin: &Path,
) -> Result<(), ConfigError> {
    let bad = |key: String, expected: &str| ConfigError::Invalid {
        path: origin.to_path_buf(),
        key,
        expected: expected.to_owned(),
    };
    if !(1..=10).contains(&risk.hops) {
        return Err(bad("risk.hops".into(), "an integer from 1 to 10"));
    }
    if !(1..=1_000_000).contains(&risk.max_nodes) {
        return Err(bad("risk.max_nodes".into(), "an integer from 1 to 1000000"));
    }
    if risk.max_backward_seeds > 1_000 {
        return Err(bad(
            "risk.max_backward_seeds".into(),
            "an integer from 0 to 1000",
        ));
    }
    for (k, v) in [
        ("hop_decay", risk.hop_decay),
        ("full_share", risk.full_share),
        ("min_share", risk.min_share),
        ("before_listing_weight", risk.before_listing_weight),
        ("old_weight", risk.old_weight),
        ("network_min_share", risk.network_min_share),
        ("consolidation_min_share", risk.consolidation_min_share),
    ] {
        if !frac(v) {
            return Err(bad(format!("risk.{k}"), "a number from 0 to 1"));
        }
    }
    for (k, v) in [
        ("pattern_weight", risk.pattern_weight),
        ("network_score", risk.network_score),
        ("signature_score", risk.signature_score),
    ] {
        if !(v.is_finite() && (0.0..=100.0).contains(&v)) {
            return Err(bad(format!("risk.{k}"), "a number from 0 to 100"));
        }
    }
    if risk.network_min_severity > 100 {
        return Err(bad(
            "risk.network_min_severity".into(),
            "an integer from 0 to 100",
        ));
    }
    for (c, s) in &risk.severities {
        if *s > 100 {
            return Err(bad(
                format!("risk.severities.{c}"),
                "an integer from 0 to 100",
            ));
        }
    }
    let t = &risk.thresholds;
    if !(t.low > 0.0
        && t.low <= t.medium
        && t.medium <= t.high
        && t.high <= t.severe
        && t.severe <= 100.0)
    {
        return Err(bad(
            "risk.thresholds".into(),
            "0 < low <= medium <= high <= severe <= 100",
        ));
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, r) in alerts.rules.iter().enumerate() {
        let key = |f: &str| format!("alerts.rules[{i}].{f}");
        if r.name.trim().is_empty() || !names.insert(r.name.clone()) {
            return Err(bad(key("name"), "a non-empty name unique among the rules"));
        }
        if !LEVELS.contains(&r.severity.as_str()) {
            return Err(bad(key("severity"), "low, medium, high or severe"));
        }
        if !frac(r.min_share) {
            return Err(bad(key("min_share"), "a number from 0 to 1"));
        }
        if r.max_hops > 10 {
            return Err(bad(key("max_hops"), "an integer from 0 to 10"));
        }
        match r.kind {
            RuleKind::Exposure if r.category.is_none() => {
                return Err(bad(key("category"), "a category for an exposure rule"));
            }
            RuleKind::Level if !r.min_level.as_deref().is_some_and(|l| LEVELS.contains(&l)) => {
                return Err(bad(key("min_level"), "low, medium, high or severe"));
            }
            RuleKind::Pattern if r.pattern.is_none() => {
                return Err(bad(key("pattern"), "a pattern type for a pattern rule"));
            }
            RuleKind::Convergence if r.min_payees < 2 => {
                return Err(bad(key("min_payees"), "an integer of at least 2"));
            }
            _ => {}
        }
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, w) in alerts.webhooks.iter().enumerate() {
        let key = |f: &str| format!("alerts.webhooks[{i}].{f}");
        if w.name.trim().is_empty() || !names.insert(w.name.clone()) {
            return Err(bad(
                key("name"),
                "a non-empty name unique among the webhooks",
            ));
        }
        if !(w.url.starts_with("http://") || w.url.starts_with("https://")) {
            return Err(bad(key("url"), "an http:// or https:// URL"));
        }
        if !LEVELS.contains(&w.min_severity.as_str()) {
            return Err(bad(key("min_severity"), "low, medium, high or severe"));
        }
        if !(1..=100).contains(&w.max_attempts) {
            return Err(bad(key("max_attempts"), "an integer from 1 to 100"));
        }
        if !(1..=3_600).contains(&w.timeout_secs) {
            return Err(bad(key("timeout_secs"), "an integer from 1 to 3600"));
        }
        if w.min_backoff_ms > 600_000 {
            return Err(bad(key("min_backoff_ms"), "an integer from 0 to 600000"));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::Config;
    use std::path::Path;

    #[test]
    fn compliance_sections_parse_with_defaults_and_validate() {
        let cfg = Config::parse("", Path::new("x.toml")).unwrap();
        assert_eq!(cfg.risk.hops, 3);
        assert_eq!(cfg.alerts.rules_or_default().len(), 3);
        let text = r#"
[risk]
hops = 4
[risk.severities]
gambling = 50
[alerts]
payers = ["0x1111111111111111111111111111111111111111"]
[[alerts.rules]]
name = "sanct"
severity = "high"
category = "sanctioned"
min_share = 0.01
[[alerts.webhooks]]
name = "ops"
url = "http://127.0.0.1:9/hook"
format = "slack"
"#;
        let cfg = Config::parse(text, Path::new("x.toml")).unwrap();
        assert_eq!(cfg.risk.hops, 4);
        assert_eq!(cfg.risk.severities["gambling"], 50);
        assert_eq!(cfg.alerts.rules_or_default().len(), 1);
        assert_eq!(cfg.alerts.webhooks[0].max_attempts, 5);
        for (bad, key) in [
            ("[risk]\nhops = 0", "risk.hops"),
            ("[risk]\nmin_share = 2.0", "risk.min_share"),
            (
                "[[alerts.rules]]\nname = \"a\"\nseverity = \"urgent\"\ncategory = \"x\"",
                "alerts.rules[0].severity",
            ),
            (
                "[[alerts.rules]]\nname = \"a\"\nseverity = \"high\"",
                "alerts.rules[0].category",
            ),
            (
                "[[alerts.webhooks]]\nname = \"a\"\nurl = \"ftp://x\"",
                "alerts.webhooks[0].url",
            ),
        ] {
            let e = Config::parse(bad, Path::new("x.toml"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{bad}: {e}");
        }
        assert!(Config::parse("[risk]\nfoo = 1", Path::new("x.toml")).is_err());
    }
}
