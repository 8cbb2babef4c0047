//! The compiled test contracts (`contracts/artifacts.json`, rebuilt by `contracts/build.sh`).

use super::{Result, TestUtilError};
use alloy_primitives::hex;
use serde::Deserialize;
use std::collections::BTreeMap;

const ARTIFACTS_JSON: &str = include_str!("../../../contracts/artifacts.json");

/// One compiled contract.
#[derive(Clone, Debug, Deserialize)]
pub struct Contract {
    /// The ABI as solc printed it.
    pub abi: serde_json::Value,
    /// Creation bytecode, `0x`-prefixed hex.
    pub bytecode: String,
}

impl Contract {
    /// The creation bytecode.
    pub fn creation_code(&self) -> Result<Vec<u8>> {
        hex::decode(&self.bytecode)
            .map_err(|e| TestUtilError::Artifacts(format!("bytecode is not hex: {e}")))
    }
}

/// All compiled test contracts.
#[derive(Clone, Debug, Deserialize)]
pub struct Artifacts {
    /// Compiler that produced them.
    pub compiler: String,
    /// Contracts by name (`TestToken`, `Forwarder`, `OddLogs`).
    pub contracts: BTreeMap<String, Contract>,
}

impl Artifacts {
    /// Parses the committed artifacts.
    pub fn load() -> Result<Self> {
        serde_json::from_str(ARTIFACTS_JSON)
            .map_err(|e| TestUtilError::Artifacts(format!("artifacts.json: {e}")))
    }

    /// The contract called `name`.
    pub fn get(&self, name: &str) -> Result<&Contract> {
        self.contracts
            .get(name)
            .ok_or_else(|| TestUtilError::Artifacts(format!("no contract {name} in artifacts")))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    #[test]
    fn artifacts_parse() {
        let a = Artifacts::load().unwrap();
        for name in ["TestToken", "Forwarder", "OddLogs"] {
            assert!(a.get(name).unwrap().creation_code().unwrap().len() > 100);
        }
    }
}
