//! The `[cluster]` section: parameters of address clustering (`paytrace cluster run`).
//! Every key is optional; see `docs/config.md` and `docs/heuristics.md` ("Clustering").

use crate::ConfigError;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Clustering parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// Bitcoin multi-input heuristic on (CoinJoins are always excluded).
    pub multi_input: bool,
    /// Confidence 0–100 of multi-input merges.
    pub multi_input_confidence: u8,
    /// Collapse guard: merges below this confidence are low-confidence.
    pub collapse_min_confidence: u8,
    /// Collapse guard: a low-confidence merge of two clusters both at least this large is
    /// refused.
    pub collapse_size_threshold: u32,
    /// Blocks read per batch.
    pub batch_blocks: u64,
    /// CoinJoin detection thresholds.
    pub coinjoin: CoinJoinConfig,
    /// Change heuristics.
    pub change: ChangeConfig,
    /// Ethereum deposit-address heuristic.
    pub deposit: DepositConfig,
    /// Ethereum airdrop multi-participation heuristic.
    pub airdrop: AirdropConfig,
    /// Exchange hot wallets in addition to the label store's `exchange` labels.
    pub exchanges: Vec<ExchangeWallet>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            multi_input: true,
            multi_input_confidence: 95,
            collapse_min_confidence: 90,
            collapse_size_threshold: 1_000,
            batch_blocks: 1_000,
            coinjoin: CoinJoinConfig::default(),
            change: ChangeConfig::default(),
            deposit: DepositConfig::default(),
            airdrop: AirdropConfig::default(),
            exchanges: Vec::new(),
        }
    }
}

/// `[cluster.coinjoin]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoinJoinConfig {
    /// Generic rule: least number of equal-value outputs.
    pub generic_min_equal_outputs: u32,
    /// Wasabi 1.x: least number of equal outputs at a 0.1 BTC × 2^k level.
    pub wasabi1_min_equal_outputs: u32,
    /// Wasabi 2.0: least number of inputs and of outputs.
    pub wasabi2_min_inputs: u32,
}

impl Default for CoinJoinConfig {
    fn default() -> Self {
        Self {
            generic_min_equal_outputs: 3,
            wasabi1_min_equal_outputs: 10,
            wasabi2_min_inputs: 50,
        }
    }
}

/// `[cluster.change]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChangeConfig {
    /// Change heuristics switched on for merging (none by default): `fresh`,
    /// `same_script_type`, `round_payment`, `optimal_change`, `address_reuse`.
    pub merge: Vec<String>,
    /// A round payment is a positive multiple of this many satoshi.
    pub round_unit_sat: u64,
    /// Confidence of `fresh`.
    pub fresh_confidence: u8,
    /// Confidence of `same_script_type`.
    pub same_script_type_confidence: u8,
    /// Confidence of `round_payment`.
    pub round_payment_confidence: u8,
    /// Confidence of `optimal_change`.
    pub optimal_change_confidence: u8,
    /// Confidence of `address_reuse`.
    pub address_reuse_confidence: u8,
}

/// The change heuristic names accepted in `cluster.change.merge`.
pub const CHANGE_HEURISTICS: [&str; 5] = [
    "fresh",
    "same_script_type",
    "round_payment",
    "optimal_change",
    "address_reuse",
];

impl Default for ChangeConfig {
    fn default() -> Self {
        Self {
            merge: Vec::new(),
            round_unit_sat: 100_000,
            fresh_confidence: 60,
            same_script_type_confidence: 50,
            round_payment_confidence: 50,
            optimal_change_confidence: 60,
            address_reuse_confidence: 80,
        }
    }
}

impl ChangeConfig {
    /// The confidence of heuristic `name` (one of [`CHANGE_HEURISTICS`]).
    pub fn confidence(&self, name: &str) -> Option<u8> {
        Some(match name {
            "fresh" => self.fresh_confidence,
            "same_script_type" => self.same_script_type_confidence,
            "round_payment" => self.round_payment_confidence,
            "optimal_change" => self.optimal_change_confidence,
            "address_reuse" => self.address_reuse_confidence,
            _ => return None,
        })
    }
}

/// `[cluster.deposit]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DepositConfig {
    /// Heuristic on.
    pub enabled: bool,
    /// A sweep counts the deposits of at most this many blocks before it.
    pub window_blocks: u64,
    /// Native coin: wei that may stay behind (the sweep's gas).
    pub gas_tolerance_wei: u64,
    /// Tokens: share that may stay behind, in basis points.
    pub max_residual_bps: u32,
    /// Confidence of the merges.
    pub confidence: u8,
}

impl Default for DepositConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window_blocks: 10_000,
            gas_tolerance_wei: 10_000_000_000_000_000,
            max_residual_bps: 100,
            confidence: 80,
        }
    }
}

/// `[cluster.airdrop]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AirdropConfig {
    /// Heuristic on.
    pub enabled: bool,
    /// One transaction sending a token to at least this many addresses is an airdrop.
    pub min_recipients: u32,
    /// Recipients forwarding to one address before they are merged with it.
    pub min_forwarders: u32,
    /// Forwards count within this many blocks after the airdrop.
    pub window_blocks: u64,
    /// Confidence of the merges.
    pub confidence: u8,
}

impl Default for AirdropConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            min_recipients: 10,
            min_forwarders: 2,
            window_blocks: 100_000,
            confidence: 70,
        }
    }
}

/// `[[cluster.exchanges]]`: an exchange hot wallet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeWallet {
    /// `0x` + 40 hex digits.
    pub address: String,
    /// Exchange name.
    pub entity: String,
}

impl ClusterConfig {
    /// Checks ranges and forms; errors name the file and the dotted key.
    pub(crate) fn validate(&self, origin: &Path) -> Result<(), ConfigError> {
        let bad = |key: &str, expected: String| ConfigError::Invalid {
            path: origin.to_path_buf(),
            key: format!("cluster.{key}"),
            expected,
        };
        let pct = |key: &str, v: u8| {
            if v <= 100 {
                Ok(())
            } else {
                Err(bad(key, format!("a confidence from 0 to 100 (found {v})")))
            }
        };
        let range = |key: &str, v: u64, lo: u64, hi: u64| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(bad(
                    key,
                    format!("an integer from {lo} to {hi} (found {v})"),
                ))
            }
        };
        pct("multi_input_confidence", self.multi_input_confidence)?;
        pct("collapse_min_confidence", self.collapse_min_confidence)?;
        range(
            "collapse_size_threshold",
            u64::from(self.collapse_size_threshold),
            2,
            u64::from(u32::MAX),
        )?;
        range("batch_blocks", self.batch_blocks, 1, 1_000_000)?;
        range(
            "coinjoin.generic_min_equal_outputs",
            u64::from(self.coinjoin.generic_min_equal_outputs),
            2,
            100_000,
        )?;
        range(
            "coinjoin.wasabi1_min_equal_outputs",
            u64::from(self.coinjoin.wasabi1_min_equal_outputs),
            2,
            100_000,
        )?;
        range(
            "coinjoin.wasabi2_min_inputs",
            u64::from(self.coinjoin.wasabi2_min_inputs),
            2,
            100_000,
        )?;
        for (i, name) in self.change.merge.iter().enumerate() {
            if !CHANGE_HEURISTICS.contains(&name.as_str()) {
                return Err(bad(
                    &format!("change.merge[{i}]"),
                    format!("one of {} (found `{name}`)", CHANGE_HEURISTICS.join(", ")),
                ));
            }
        }
        range(
            "change.round_unit_sat",
            self.change.round_unit_sat,
            1,
            2_100_000_000_000_000,
        )?;
        for name in CHANGE_HEURISTICS {
            if let Some(c) = self.change.confidence(name) {
                pct(&format!("change.{name}_confidence"), c)?;
            }
        }
        range(
            "deposit.window_blocks",
            self.deposit.window_blocks,
            1,
            100_000_000,
        )?;
        range(
            "deposit.max_residual_bps",
            u64::from(self.deposit.max_residual_bps),
            0,
            10_000,
        )?;
        pct("deposit.confidence", self.deposit.confidence)?;
        range(
            "airdrop.min_recipients",
            u64::from(self.airdrop.min_recipients),
            2,
            1_000_000,
        )?;
        range(
            "airdrop.min_forwarders",
            u64::from(self.airdrop.min_forwarders),
            1,
            1_000_000,
        )?;
        range(
            "airdrop.window_blocks",
            self.airdrop.window_blocks,
            1,
            100_000_000,
        )?;
        pct("airdrop.confidence", self.airdrop.confidence)?;
        for (i, x) in self.exchanges.iter().enumerate() {
            let hex = x.address.strip_prefix("0x").unwrap_or("");
            if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad(
                    &format!("exchanges[{i}].address"),
                    format!("0x followed by 40 hex digits (found `{}`)", x.address),
                ));
            }
            if x.entity.trim().is_empty() {
                return Err(bad(
                    &format!("exchanges[{i}].entity"),
                    "a non-empty exchange name".into(),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::Config;
    use std::path::Path;

    #[test]
    fn defaults_and_overrides() {
        let c = Config::parse("", Path::new("p.toml")).unwrap();
        assert_eq!(c.cluster, super::ClusterConfig::default());
        let c = Config::parse(
            "[cluster]\ncollapse_size_threshold = 50\n[cluster.change]\nmerge = [\"optimal_change\"]\n[cluster.deposit]\nwindow_blocks = 20\n[[cluster.exchanges]]\naddress = \"0x28c6c06298d514db089934071355e5743bf21d60\"\nentity = \"Binance\"\n",
            Path::new("p.toml"),
        )
        .unwrap();
        assert_eq!(c.cluster.collapse_size_threshold, 50);
        assert_eq!(c.cluster.change.merge, ["optimal_change"]);
        assert_eq!(c.cluster.deposit.window_blocks, 20);
        assert_eq!(c.cluster.deposit.confidence, 80);
        assert_eq!(c.cluster.exchanges.len(), 1);
    }

    #[test]
    fn bad_values_name_the_key() {
        for (text, key) in [
            (
                "[cluster]\nmulti_input_confidence = 101\n",
                "cluster.multi_input_confidence",
            ),
            (
                "[cluster.change]\nmerge = [\"psychic\"]\n",
                "cluster.change.merge[0]",
            ),
            (
                "[cluster.airdrop]\nmin_recipients = 1\n",
                "cluster.airdrop.min_recipients",
            ),
            (
                "[[cluster.exchanges]]\naddress = \"0x12\"\nentity = \"X\"\n",
                "cluster.exchanges[0].address",
            ),
        ] {
            let e = Config::parse(text, Path::new("p.toml"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{e}");
        }
        let e = Config::parse("[cluster]\nbogus = 1\n", Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("bogus"), "{e}");
    }
}
