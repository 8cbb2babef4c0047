//! A deterministic chain generator: sends known transactions to anvil and computes, from what
//! it sent, the transfers the indexer must find.
//!
//! The expected transfers are derived from the plan of each transaction (who pays whom, which
//! logs and call frames the contract code produces), never from the node's traces. Only
//! placement facts are read back from the node: block numbers, timestamps, transaction hashes
//! and indexes (from receipts and blocks). Receipts are also checked against the plan (status,
//! number and content of logs, created addresses) so that a wrong plan fails loudly instead of
//! silently producing a wrong expectation.
//!
//! Conventions (the EVM decoder's):
//! * `Native`: a successful top-level transaction with value > 0; position 0; `to` is the
//!   created contract for a creation.
//! * `Token`: a log with topic0 `Transfer(address,address,uint256)`, exactly 3 topics and
//!   exactly 32 bytes of data; position = block-level log index; asset = the emitting
//!   contract; zero amounts are kept.
//! * `Internal`: a call frame below the top level with value > 0 that is not inside a reverted
//!   frame, in a successful transaction; position = the frame's index in depth-first pre-order
//!   over all frames of the transaction (top level = 0, reverted frames counted); asset native;
//!   `trace_address` = the parity trace address.

use super::{
    AbiValue, Artifacts, Block, Receipt, Result, Rpc, TestUtilError, TxRequest, encode_call,
    encode_values,
};
use crate::{
    Address as PtAddress, Amount, Asset, BlockNumber, ChainId, Timestamp, Transfer, TransferKey,
    TransferKind, TxHash,
};
use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use std::collections::{BTreeMap, HashMap};

/// topic0 of `Transfer(address,address,uint256)`.
const TRANSFER_TOPIC: B256 = B256::new([
    0xdd, 0xf2, 0x52, 0xad, 0x1b, 0xe2, 0xc8, 0x9b, 0x69, 0xc2, 0xb0, 0x68, 0xfc, 0x37, 0x8d, 0xaa,
    0x95, 0x2b, 0xa7, 0xf1, 0x63, 0xc4, 0xa1, 0x16, 0x28, 0xf5, 0x5a, 0x4d, 0xf5, 0x23, 0xb3, 0xef,
]);

/// Gas limits (explicit, generous; estimation is slow and fails for reverting calls).
const GAS_NATIVE: u64 = 21_000;
const GAS_TO_CONTRACT: u64 = 50_000;
const GAS_TOKEN: u64 = 80_000;
const GAS_TRANSFER_FROM: u64 = 100_000;
const GAS_BATCH_BASE: u64 = 80_000;
const GAS_BATCH_EACH: u64 = 40_000;
const GAS_FORWARD_BASE: u64 = 80_000;
const GAS_FORWARD_EACH: u64 = 45_000;
const GAS_SMALL_CALL: u64 = 200_000;
const GAS_DEPLOY: u64 = 3_000_000;

/// How often `mine` retries `evm_mine` while transactions are still pending.
const MAX_MINE_ROUNDS: usize = 50;

/// The addresses of the deployed test contracts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deployed {
    /// `TestToken` (ERC-20, supply minted to the first dev account).
    pub token: Address,
    /// `Forwarder` (deployed with 5 ETH).
    pub forwarder: Address,
    /// `OddLogs`.
    pub odd_logs: Address,
}

/// One call frame the contract code will produce.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Frame {
    trace_address: Vec<u32>,
    from: Address,
    to: Address,
    value: U256,
    /// The frame or one of its ancestors reverts.
    reverted: bool,
}

/// One log the contract code will emit.
#[derive(Clone, Debug, PartialEq, Eq)]
enum PlannedLog {
    /// A well-formed ERC-20 `Transfer`.
    Token {
        token: Address,
        from: Address,
        to: Address,
        amount: U256,
    },
    /// Any other log (approvals, malformed transfers): not a transfer, but it takes a log index.
    Other { address: Address },
}

/// A transaction to send together with what it will do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxSpec {
    /// The request (nonce filled in when sent).
    pub request: TxRequest,
    success: bool,
    logs: Vec<PlannedLog>,
    /// Call frames below the top level, in depth-first pre-order (index i is frame i + 1).
    subframes: Vec<Frame>,
}

impl TxSpec {
    fn new(from: Address, to: Option<Address>, value: U256, input: Vec<u8>, gas: u64) -> Self {
        Self {
            request: TxRequest {
                from,
                to,
                value,
                input: Bytes::from(input),
                gas,
                nonce: None,
            },
            success: true,
            logs: Vec::new(),
            subframes: Vec::new(),
        }
    }

    /// Whether the transaction is planned to succeed.
    pub fn succeeds(&self) -> bool {
        self.success
    }

    /// How many transfers the indexer must find for it.
    pub fn transfer_count(&self) -> usize {
        if !self.success {
            return 0;
        }
        let native = usize::from(!self.request.value.is_zero());
        let token = self
            .logs
            .iter()
            .filter(|l| matches!(l, PlannedLog::Token { .. }))
            .count();
        let internal = self
            .subframes
            .iter()
            .filter(|f| !f.reverted && !f.value.is_zero())
            .count();
        native + token + internal
    }
}

/// A transaction that was sent (or included by a reorg).
#[derive(Clone, Debug)]
struct Sent {
    hash: B256,
    spec: TxSpec,
    /// For a creation: the address computed from sender and nonce.
    created: Option<Address>,
}

/// Sizes of [`ChainGenerator::generate_bulk`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BulkOptions {
    /// At least this many transfers are generated.
    pub transfers: usize,
    /// Recipients per `batchTransfer` / `forward` call.
    pub batch: usize,
    /// Transactions per block.
    pub txs_per_block: usize,
}

impl Default for BulkOptions {
    fn default() -> Self {
        Self {
            transfers: 50_000,
            batch: 250,
            txs_per_block: 8,
        }
    }
}

impl BulkOptions {
    /// Extra anvil arguments the bulk chain needs (a block gas limit large enough for
    /// `txs_per_block` full batches).
    pub fn anvil_args(&self) -> Vec<String> {
        vec!["--gas-limit".to_owned(), "1000000000".to_owned()]
    }
}

/// Deterministic generator of an anvil chain with known transfers.
///
/// Create it on an anvil started with `no_mining()` (it also turns automine off), call
/// [`ChainGenerator::generate`] or [`ChainGenerator::generate_bulk`], then compare the index
/// with [`ChainGenerator::expected`].
#[derive(Debug)]
pub struct ChainGenerator {
    rpc: Rpc,
    accounts: Vec<Address>,
    nonces: HashMap<Address, u64>,
    pending: Vec<Sent>,
    expected: Vec<Transfer>,
    deployed: Option<Deployed>,
    rng: u64,
    artifacts: Artifacts,
}

/// Placeholder chain id of the stored expectations; [`ChainGenerator::expected`] substitutes.
const NO_CHAIN: ChainId = ChainId(u16::MAX);

fn gen_err(msg: impl Into<String>) -> TestUtilError {
    TestUtilError::Generator(msg.into())
}

fn u32_of(v: u64, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| gen_err(format!("{what} {v} does not fit in u32")))
}

fn u32_of_usize(v: usize, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| gen_err(format!("{what} {v} does not fit in u32")))
}

fn topic_address(a: Address) -> B256 {
    let mut w = [0u8; 32];
    w[12..].copy_from_slice(a.as_slice());
    B256::new(w)
}

/// The address a contract created by `sender` with `nonce` gets.
fn create_address(sender: Address, nonce: u64) -> Address {
    sender.create(nonce)
}

/// A deterministic non-dev address (never sends anything).
pub(crate) fn recipient(i: usize) -> Address {
    Address::from_slice(&keccak256(format!("paytrace-test-recipient-{i}").as_bytes())[12..])
}

fn eth(milli: u64) -> U256 {
    U256::from(milli) * U256::from(1_000_000_000_000_000u64)
}

impl ChainGenerator {
    /// A generator driving the node behind `rpc`; turns automine off.
    pub async fn new(rpc: Rpc) -> Result<Self> {
        rpc.set_automine(false).await?;
        let accounts = rpc.accounts().await?;
        if accounts.len() < 10 {
            return Err(gen_err(format!(
                "need 10 unlocked dev accounts, node has {}",
                accounts.len()
            )));
        }
        Ok(Self {
            rpc,
            accounts,
            nonces: HashMap::new(),
            pending: Vec::new(),
            expected: Vec::new(),
            deployed: None,
            rng: 0x5eed_0f9a_772a_ce01,
            artifacts: Artifacts::load()?,
        })
    }

    /// The RPC client.
    pub fn rpc(&self) -> &Rpc {
        &self.rpc
    }

    /// The node's unlocked dev accounts.
    pub fn accounts(&self) -> &[Address] {
        &self.accounts
    }

    /// The deployed contracts (after [`ChainGenerator::deploy`]).
    pub fn deployed(&self) -> Result<Deployed> {
        self.deployed
            .ok_or_else(|| gen_err("contracts are not deployed yet"))
    }

    /// Every expected transfer so far, with `chain` as chain id, in canonical order.
    pub fn expected(&self, chain: ChainId) -> Vec<Transfer> {
        let mut v: Vec<Transfer> = self
            .expected
            .iter()
            .cloned()
            .map(|mut t| {
                t.key.chain = chain;
                t
            })
            .collect();
        v.sort_by_key(|t| t.key);
        v
    }

    /// The number of expected transfers so far.
    pub fn expected_len(&self) -> usize {
        self.expected.len()
    }

    /// The node's head block.
    pub async fn head(&self) -> Result<u64> {
        self.rpc.block_number().await
    }

    fn next_rand(&mut self) -> u64 {
        // splitmix64
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A deterministic amount in `1..=max`.
    fn rand_amount(&mut self, max: u64) -> U256 {
        U256::from(self.next_rand() % max.max(1) + 1)
    }

    fn account(&self, i: usize) -> Address {
        self.accounts[i % 10]
    }

    // ----- transaction builders (pure: they only describe) -----

    /// A plain ETH transfer (`value` may be zero: then no transfer). `to` must be an EOA or
    /// the Forwarder (whose `receive` makes no calls).
    pub fn native(&self, from: Address, to: Address, value: U256) -> TxSpec {
        let gas = if self.deployed.is_some_and(|d| d.forwarder == to) {
            GAS_TO_CONTRACT
        } else {
            GAS_NATIVE
        };
        TxSpec::new(from, Some(to), value, Vec::new(), gas)
    }

    /// `TestToken.transfer(to, amount)` from `from`.
    pub fn token_transfer(&self, from: Address, to: Address, amount: U256) -> Result<TxSpec> {
        let d = self.deployed()?;
        let input = encode_call(
            "transfer(address,uint256)",
            &[AbiValue::Address(to), AbiValue::Uint(amount)],
        );
        let mut s = TxSpec::new(from, Some(d.token), U256::ZERO, input, GAS_TOKEN);
        s.logs.push(PlannedLog::Token {
            token: d.token,
            from,
            to,
            amount,
        });
        Ok(s)
    }

    /// `TestToken.approve(spender, amount)` (an `Approval` log, no transfer).
    pub fn token_approve(&self, owner: Address, spender: Address, amount: U256) -> Result<TxSpec> {
        let d = self.deployed()?;
        let input = encode_call(
            "approve(address,uint256)",
            &[AbiValue::Address(spender), AbiValue::Uint(amount)],
        );
        let mut s = TxSpec::new(owner, Some(d.token), U256::ZERO, input, GAS_TOKEN);
        s.logs.push(PlannedLog::Other { address: d.token });
        Ok(s)
    }

    /// `TestToken.transferFrom(owner, to, amount)` sent by `spender`.
    pub fn token_transfer_from(
        &self,
        spender: Address,
        owner: Address,
        to: Address,
        amount: U256,
    ) -> Result<TxSpec> {
        let d = self.deployed()?;
        let input = encode_call(
            "transferFrom(address,address,uint256)",
            &[
                AbiValue::Address(owner),
                AbiValue::Address(to),
                AbiValue::Uint(amount),
            ],
        );
        let mut s = TxSpec::new(spender, Some(d.token), U256::ZERO, input, GAS_TRANSFER_FROM);
        s.logs.push(PlannedLog::Token {
            token: d.token,
            from: owner,
            to,
            amount,
        });
        Ok(s)
    }

    /// `TestToken.batchTransfer(to[], amounts[])`: one `Transfer` log per recipient.
    pub fn token_batch(&self, from: Address, items: &[(Address, U256)]) -> Result<TxSpec> {
        let d = self.deployed()?;
        let input = encode_call(
            "batchTransfer(address[],uint256[])",
            &[
                AbiValue::Addresses(items.iter().map(|(a, _)| *a).collect()),
                AbiValue::Uints(items.iter().map(|(_, v)| *v).collect()),
            ],
        );
        let n = u64::try_from(items.len()).unwrap_or(u64::MAX);
        let gas = GAS_BATCH_BASE.saturating_add(GAS_BATCH_EACH.saturating_mul(n));
        let mut s = TxSpec::new(from, Some(d.token), U256::ZERO, input, gas);
        for (to, amount) in items {
            s.logs.push(PlannedLog::Token {
                token: d.token,
                from,
                to: *to,
                amount: *amount,
            });
        }
        Ok(s)
    }

    /// `Forwarder.forward{value}(to[], amounts[])`: frame i + 1 sends `amounts[i]` to `to[i]`.
    /// Recipients must be EOAs or the Forwarder itself.
    pub fn forward(&self, from: Address, value: U256, items: &[(Address, U256)]) -> Result<TxSpec> {
        let d = self.deployed()?;
        let input = encode_call(
            "forward(address[],uint256[])",
            &[
                AbiValue::Addresses(items.iter().map(|(a, _)| *a).collect()),
                AbiValue::Uints(items.iter().map(|(_, v)| *v).collect()),
            ],
        );
        let n = u64::try_from(items.len()).unwrap_or(u64::MAX);
        let gas = GAS_FORWARD_BASE.saturating_add(GAS_FORWARD_EACH.saturating_mul(n));
        let mut s = TxSpec::new(from, Some(d.forwarder), value, input, gas);
        for (i, (to, amount)) in items.iter().enumerate() {
            s.subframes.push(Frame {
                trace_address: vec![u32_of_usize(i, "recipient index")?],
                from: d.forwarder,
                to: *to,
                value: *amount,
                reverted: false,
            });
        }
        Ok(s)
    }

    /// `Forwarder.forwardThenRevert{value}(lost, kept_to, kept)`: a sub-call sends `value` on to
    /// `lost` and reverts (caught), then `kept` wei go to `kept_to`. Only the last moves value.
    pub fn forward_then_revert(
        &self,
        from: Address,
        value: U256,
        lost: Address,
        kept_to: Address,
        kept: U256,
    ) -> Result<TxSpec> {
        let d = self.deployed()?;
        let input = encode_call(
            "forwardThenRevert(address,address,uint256)",
            &[
                AbiValue::Address(lost),
                AbiValue::Address(kept_to),
                AbiValue::Uint(kept),
            ],
        );
        let mut s = TxSpec::new(from, Some(d.forwarder), value, input, GAS_SMALL_CALL);
        s.subframes = vec![
            Frame {
                trace_address: vec![0],
                from: d.forwarder,
                to: d.forwarder,
                value,
                reverted: true,
            },
            Frame {
                trace_address: vec![0, 0],
                from: d.forwarder,
                to: lost,
                value,
                reverted: true,
            },
            Frame {
                trace_address: vec![1],
                from: d.forwarder,
                to: kept_to,
                value: kept,
                reverted: false,
            },
        ];
        Ok(s)
    }

    /// `Forwarder.ping(to)`: one zero-value sub-call.
    pub fn ping(&self, from: Address, to: Address) -> Result<TxSpec> {
        let d = self.deployed()?;
        let input = encode_call("ping(address)", &[AbiValue::Address(to)]);
        let mut s = TxSpec::new(from, Some(d.forwarder), U256::ZERO, input, GAS_SMALL_CALL);
        s.subframes.push(Frame {
            trace_address: vec![0],
            from: d.forwarder,
            to,
            value: U256::ZERO,
            reverted: false,
        });
        Ok(s)
    }

    /// `Forwarder.alwaysRevert{value}()`: a failed transaction, no transfer at all.
    pub fn always_revert(&self, from: Address, value: U256) -> Result<TxSpec> {
        let d = self.deployed()?;
        let input = encode_call("alwaysRevert()", &[]);
        let mut s = TxSpec::new(from, Some(d.forwarder), value, input, GAS_SMALL_CALL);
        s.success = false;
        Ok(s)
    }

    /// `OddLogs.emitOdd(a, b, amount)`: four `Transfer`-topic logs that are not ERC-20
    /// transfers, then one well-formed one (asset = the OddLogs contract).
    pub fn odd_logs(&self, from: Address, a: Address, b: Address, amount: U256) -> Result<TxSpec> {
        let d = self.deployed()?;
        let input = encode_call(
            "emitOdd(address,address,uint256)",
            &[
                AbiValue::Address(a),
                AbiValue::Address(b),
                AbiValue::Uint(amount),
            ],
        );
        let mut s = TxSpec::new(from, Some(d.odd_logs), U256::ZERO, input, GAS_SMALL_CALL);
        for _ in 0..4 {
            s.logs.push(PlannedLog::Other {
                address: d.odd_logs,
            });
        }
        s.logs.push(PlannedLog::Token {
            token: d.odd_logs,
            from: a,
            to: b,
            amount,
        });
        Ok(s)
    }

    fn create_spec(
        &self,
        from: Address,
        name: &str,
        args: &[AbiValue],
        value: U256,
    ) -> Result<TxSpec> {
        let mut code = self.artifacts.get(name)?.creation_code()?;
        code.extend_from_slice(&encode_values(args));
        Ok(TxSpec::new(from, None, value, code, GAS_DEPLOY))
    }

    // ----- sending and mining -----

    async fn next_nonce(&mut self, from: Address) -> Result<u64> {
        let n = match self.nonces.get(&from) {
            Some(n) => *n,
            None => self.rpc.nonce(from, "pending").await?,
        };
        self.nonces.insert(from, n.saturating_add(1));
        Ok(n)
    }

    /// Sends `spec` to the mempool (mined by the next [`ChainGenerator::mine`]).
    pub async fn send(&mut self, mut spec: TxSpec) -> Result<B256> {
        let nonce = self.next_nonce(spec.request.from).await?;
        spec.request.nonce = Some(nonce);
        let created = spec
            .request
            .to
            .is_none()
            .then(|| create_address(spec.request.from, nonce));
        let hash = self.rpc.send_transaction(&spec.request).await?;
        self.pending.push(Sent {
            hash,
            spec,
            created,
        });
        Ok(hash)
    }

    /// Mines the pending transactions (as many blocks as it takes; at least one) and records
    /// their expected transfers.
    pub async fn mine(&mut self) -> Result<()> {
        let pending = std::mem::take(&mut self.pending);
        let mut receipts: HashMap<B256, Receipt> = HashMap::new();
        for _ in 0..MAX_MINE_ROUNDS {
            self.rpc.mine().await?;
            let mut missing = false;
            for s in &pending {
                if receipts.contains_key(&s.hash) {
                    continue;
                }
                match self.rpc.receipt(s.hash).await? {
                    Some(r) => {
                        receipts.insert(s.hash, r);
                    }
                    None => missing = true,
                }
            }
            if !missing {
                return self.record(pending, receipts).await;
            }
        }
        Err(gen_err(format!(
            "transactions still pending after {MAX_MINE_ROUNDS} blocks"
        )))
    }

    /// Checks receipts against the plan and appends the expected transfers.
    async fn record(&mut self, sent: Vec<Sent>, receipts: HashMap<B256, Receipt>) -> Result<()> {
        let mut by_block: BTreeMap<u64, Vec<(Sent, Receipt)>> = BTreeMap::new();
        for s in sent {
            let r = receipts
                .get(&s.hash)
                .cloned()
                .ok_or_else(|| gen_err(format!("no receipt for {}", s.hash)))?;
            by_block.entry(r.block_number).or_default().push((s, r));
        }
        for (number, mut txs) in by_block {
            let block = self
                .rpc
                .block(number)
                .await?
                .ok_or_else(|| gen_err(format!("block {number} not found")))?;
            txs.sort_by_key(|(_, r)| r.transaction_index);
            if block.transactions.len() != txs.len() {
                return Err(gen_err(format!(
                    "block {number} holds {} transactions, the generator sent {} of them",
                    block.transactions.len(),
                    txs.len()
                )));
            }
            self.record_block(&block, &txs)?;
        }
        Ok(())
    }

    fn record_block(&mut self, block: &Block, txs: &[(Sent, Receipt)]) -> Result<()> {
        let number = block.number;
        let time = Timestamp(block.timestamp);
        let mut log_base: u64 = 0;
        for (pos, (s, r)) in txs.iter().enumerate() {
            let spec = &s.spec;
            if usize::try_from(r.transaction_index).ok() != Some(pos)
                || block.transactions[pos].hash != s.hash
            {
                return Err(gen_err(format!(
                    "block {number}: transaction {} is not at index {pos}",
                    s.hash
                )));
            }
            let ok = r.status == 1;
            if ok != spec.success {
                return Err(gen_err(format!(
                    "block {number} tx {}: status {} but the plan says success={} (gas too low?)",
                    s.hash, r.status, spec.success
                )));
            }
            if r.contract_address != s.created && ok {
                return Err(gen_err(format!(
                    "tx {}: created {:?}, expected {:?}",
                    s.hash, r.contract_address, s.created
                )));
            }
            let planned_logs: &[PlannedLog] = if ok { &spec.logs } else { &[] };
            if r.logs.len() != planned_logs.len() {
                return Err(gen_err(format!(
                    "tx {}: {} logs, the plan has {}",
                    s.hash,
                    r.logs.len(),
                    planned_logs.len()
                )));
            }
            let tx_index = u32_of(r.transaction_index, "transaction index")?;
            let tx_hash = TxHash(s.hash);
            let key = |kind, position| TransferKey {
                chain: NO_CHAIN,
                block: BlockNumber(number),
                tx_index,
                kind,
                position,
            };
            if ok && !spec.request.value.is_zero() {
                let to = match (spec.request.to, s.created) {
                    (Some(to), _) => to,
                    (None, Some(c)) => c,
                    (None, None) => return Err(gen_err("creation without an address")),
                };
                self.expected.push(Transfer {
                    key: key(TransferKind::Native, 0),
                    time,
                    tx_hash,
                    from: PtAddress::evm(spec.request.from),
                    to: PtAddress::evm(to),
                    asset: Asset::Native,
                    amount: Amount::from_raw(spec.request.value),
                    trace_address: Vec::new(),
                });
            }
            for (k, (planned, log)) in planned_logs.iter().zip(&r.logs).enumerate() {
                let index = log_base + u64::try_from(k).unwrap_or(u64::MAX);
                if log.log_index != index {
                    return Err(gen_err(format!(
                        "tx {}: log {k} has logIndex {}, block-level index is {index}",
                        s.hash, log.log_index
                    )));
                }
                match planned {
                    PlannedLog::Other { address } => {
                        if log.address != *address {
                            return Err(gen_err(format!(
                                "tx {}: log {k} from {}, expected {address}",
                                s.hash, log.address
                            )));
                        }
                    }
                    PlannedLog::Token {
                        token,
                        from,
                        to,
                        amount,
                    } => {
                        let want_topics =
                            [TRANSFER_TOPIC, topic_address(*from), topic_address(*to)];
                        if log.address != *token
                            || log.topics != want_topics
                            || log.data.as_ref() != amount.to_be_bytes::<32>().as_slice()
                        {
                            return Err(gen_err(format!(
                                "tx {}: log {k} is {log:?}, expected Transfer({from}, {to}, {amount}) from {token}",
                                s.hash
                            )));
                        }
                        self.expected.push(Transfer {
                            key: key(TransferKind::Token, u32_of(index, "log index")?),
                            time,
                            tx_hash,
                            from: PtAddress::evm(*from),
                            to: PtAddress::evm(*to),
                            asset: Asset::Token(PtAddress::evm(*token)),
                            amount: Amount::from_raw(*amount),
                            trace_address: Vec::new(),
                        });
                    }
                }
            }
            log_base += u64::try_from(planned_logs.len()).unwrap_or(u64::MAX);
            if ok {
                for (i, f) in spec.subframes.iter().enumerate() {
                    if f.reverted || f.value.is_zero() {
                        continue;
                    }
                    let position = u32_of_usize(i + 1, "frame index")?;
                    self.expected.push(Transfer {
                        key: key(TransferKind::Internal, position),
                        time,
                        tx_hash,
                        from: PtAddress::evm(f.from),
                        to: PtAddress::evm(f.to),
                        asset: Asset::Native,
                        amount: Amount::from_raw(f.value),
                        trace_address: f.trace_address.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Replaces the last `depth` blocks with `depth` new ones (`anvil_reorg`) holding `txs`,
    /// each with its block offset (0 = the first replaced height, < `depth`), and recomputes
    /// the expected transfers of the replaced heights. Nonces are assigned by the node.
    pub async fn reorg(&mut self, depth: u64, txs: Vec<(TxSpec, u64)>) -> Result<()> {
        if !self.pending.is_empty() {
            return Err(gen_err("reorg with transactions pending; mine first"));
        }
        let head = self.rpc.block_number().await?;
        let first = head
            .checked_sub(depth)
            .and_then(|b| b.checked_add(1))
            .filter(|&b| b > 0 && depth > 0)
            .ok_or_else(|| gen_err(format!("cannot reorg {depth} blocks below head {head}")))?;
        let requests: Vec<(TxRequest, u64)> = txs
            .iter()
            .map(|(s, off)| {
                let mut r = s.request.clone();
                r.nonce = None;
                (r, *off)
            })
            .collect();
        self.rpc.reorg(depth, &requests).await?;
        self.nonces.clear();
        self.expected.retain(|t| t.key.block.0 < first);
        let new_head = self.rpc.block_number().await?;
        if new_head != head {
            return Err(gen_err(format!(
                "head after reorg is {new_head}, expected {head}"
            )));
        }
        let mut unmatched: Vec<Option<(TxSpec, u64)>> = txs.into_iter().map(Some).collect();
        let mut sent = Vec::new();
        let mut receipts = HashMap::new();
        for number in first..=head {
            let block = self
                .rpc
                .block(number)
                .await?
                .ok_or_else(|| gen_err(format!("block {number} not found after reorg")))?;
            for tx in &block.transactions {
                let slot = unmatched.iter_mut().find(|slot| {
                    slot.as_ref().is_some_and(|(s, off)| {
                        first + off == number
                            && s.request.from == tx.from
                            && s.request.to == tx.to
                            && s.request.value == tx.value
                            && s.request.input == tx.input
                    })
                });
                let Some((spec, _)) = slot.and_then(Option::take) else {
                    return Err(gen_err(format!(
                        "block {number} after reorg holds unplanned transaction {}",
                        tx.hash
                    )));
                };
                let created = spec
                    .request
                    .to
                    .is_none()
                    .then(|| create_address(tx.from, tx.nonce));
                let r = self
                    .rpc
                    .receipt(tx.hash)
                    .await?
                    .ok_or_else(|| gen_err(format!("no receipt for {}", tx.hash)))?;
                receipts.insert(tx.hash, r);
                sent.push(Sent {
                    hash: tx.hash,
                    spec,
                    created,
                });
            }
        }
        if let Some((s, off)) = unmatched.into_iter().flatten().next() {
            return Err(gen_err(format!(
                "reorg transaction {:?} (offset {off}) not found in the new blocks",
                s.request
            )));
        }
        // Empty replaced blocks must still be known to hold nothing: record checks each
        // block's transaction count.
        self.record(sent, receipts).await
    }

    // ----- scenarios -----

    /// Deploys `TestToken` (by account 0), `Forwarder` (account 1, with 5 ETH: a creation
    /// with value) and `OddLogs` (account 2), all in one block.
    pub async fn deploy(&mut self) -> Result<Deployed> {
        if let Some(d) = self.deployed {
            return Ok(d);
        }
        let supply = U256::from(10u64).pow(U256::from(30u64));
        let token = self.create_spec(
            self.account(0),
            "TestToken",
            &[
                AbiValue::String("Paytrace Test Token".into()),
                AbiValue::String("PTT".into()),
                AbiValue::Uint(U256::from(18u8)),
                AbiValue::Uint(supply),
            ],
            U256::ZERO,
        )?;
        let forwarder = self.create_spec(self.account(1), "Forwarder", &[], eth(5_000))?;
        let odd = self.create_spec(self.account(2), "OddLogs", &[], U256::ZERO)?;
        let mut addrs = Vec::new();
        for mut spec in [token, forwarder, odd] {
            let created = {
                let from = spec.request.from;
                let nonce = match self.nonces.get(&from) {
                    Some(n) => *n,
                    None => self.rpc.nonce(from, "pending").await?,
                };
                create_address(from, nonce)
            };
            if addrs.is_empty() {
                // the constructor's mint
                spec.logs.push(PlannedLog::Token {
                    token: created,
                    from: Address::ZERO,
                    to: spec.request.from,
                    amount: supply,
                });
            }
            addrs.push(created);
            self.send(spec).await?;
        }
        self.mine().await?;
        let d = Deployed {
            token: addrs[0],
            forwarder: addrs[1],
            odd_logs: addrs[2],
        };
        self.deployed = Some(d);
        Ok(d)
    }

    /// The standard scenario: deploys the contracts and mines about 40 blocks holding well over
    /// 1,000 transfers of all three kinds, several transactions per block, with the edge cases:
    /// a creation with value, native and token self-transfers, zero-value token transfers,
    /// zero-value transactions and calls, a failed transaction with value, a reverted sub-call
    /// whose child moved value, ERC-721 style and malformed `Transfer` logs, approvals and
    /// `transferFrom`, and an empty block.
    pub async fn generate(&mut self) -> Result<()> {
        let d = self.deploy().await?;
        let a: Vec<Address> = (0..10).map(|i| self.account(i)).collect();
        // Block: distribute tokens; approve account 5 to spend account 0's tokens.
        let dist: Vec<(Address, U256)> = a[1..]
            .iter()
            .map(|x| (*x, U256::from(10u64).pow(U256::from(24u64))))
            .collect();
        let spec = self.token_batch(a[0], &dist)?;
        self.send(spec).await?;
        let spec = self.token_approve(a[0], a[5], U256::MAX)?;
        self.send(spec).await?;
        let spec = self.native(a[3], a[4], eth(1_000));
        self.send(spec).await?;
        self.mine().await?;
        // An empty block.
        self.mine().await?;

        let mut next_recipient = 0usize;
        for round in 0..36usize {
            let s = a[round % 10];
            let t = a[(round + 3) % 10];
            // native ETH between dev accounts and to a fresh address
            let v = self.rand_amount(1_000_000_000_000_000_000);
            let spec = self.native(s, t, v);
            self.send(spec).await?;
            let v = self.rand_amount(1_000_000_000);
            let spec = self.native(t, recipient(next_recipient), v);
            next_recipient += 1;
            self.send(spec).await?;
            if round % 5 == 0 {
                let spec = self.native(a[(round + 1) % 10], a[(round + 1) % 10], eth(7));
                self.send(spec).await?;
            }
            if round % 4 == 1 {
                // zero-value transaction: no transfer
                let spec = self.native(a[(round + 2) % 10], a[(round + 5) % 10], U256::ZERO);
                self.send(spec).await?;
            }
            if round % 7 == 2 {
                // ETH into the Forwarder (its receive() makes no call)
                let spec = self.native(a[(round + 4) % 10], d.forwarder, eth(3));
                self.send(spec).await?;
            }
            // token transfer (zero-valued every third round)
            let amount = if round % 3 == 0 {
                U256::ZERO
            } else {
                self.rand_amount(1_000_000_000_000)
            };
            let spec =
                self.token_transfer(a[(round + 1) % 9 + 1], recipient(next_recipient), amount)?;
            next_recipient += 1;
            self.send(spec).await?;
            if round % 6 == 3 {
                let spec = self.token_transfer(a[7], a[7], U256::from(12_345u64))?;
                self.send(spec).await?;
            }
            // a batch of 20 token transfers, two of them zero-valued
            let mut items = Vec::new();
            for i in 0..20usize {
                let amount = if i % 10 == 9 {
                    U256::ZERO
                } else {
                    self.rand_amount(1_000_000_000_000_000)
                };
                items.push((recipient(next_recipient + i % 13), amount));
            }
            next_recipient += 13;
            let spec = self.token_batch(a[0], &items)?;
            self.send(spec).await?;
            // forward ETH to 10 recipients: one zero amount, one back into the Forwarder
            let mut items = Vec::new();
            let mut total = U256::ZERO;
            for i in 0..10usize {
                let to = match i {
                    4 => d.forwarder,
                    7 => a[(round + 6) % 10],
                    _ => recipient(next_recipient + i),
                };
                let amount = if i == 2 {
                    U256::ZERO
                } else {
                    self.rand_amount(1_000_000_000_000_000)
                };
                total += amount;
                items.push((to, amount));
            }
            next_recipient += 10;
            // every other round send a bit more than forwarded: the rest stays in the Forwarder
            let value = if round % 2 == 0 {
                total
            } else {
                total + U256::from(999u64)
            };
            let spec = self.forward(a[(round + 2) % 10], value, &items)?;
            self.send(spec).await?;
            if round % 3 == 1 {
                let kept = self.rand_amount(1_000_000_000);
                let spec = self.forward_then_revert(
                    a[(round + 7) % 10],
                    eth(2),
                    recipient(next_recipient),
                    recipient(next_recipient + 1),
                    kept,
                )?;
                next_recipient += 2;
                self.send(spec).await?;
            }
            if round % 4 == 2 {
                let spec = self.ping(a[(round + 8) % 10], a[(round + 9) % 10])?;
                self.send(spec).await?;
            }
            if round % 5 == 3 {
                let spec = self.always_revert(a[(round + 1) % 10], eth(1))?;
                self.send(spec).await?;
            }
            if round % 5 == 4 {
                let spec =
                    self.odd_logs(a[9], a[1], recipient(next_recipient), U256::from(77u64))?;
                next_recipient += 1;
                self.send(spec).await?;
            }
            if round % 4 == 0 {
                let amount = self.rand_amount(1_000_000);
                let spec =
                    self.token_transfer_from(a[5], a[0], recipient(next_recipient), amount)?;
                next_recipient += 1;
                self.send(spec).await?;
            }
            self.mine().await?;
            if round == 20 {
                // a block with a single transaction
                let spec = self.native(a[8], a[9], eth(2));
                self.send(spec).await?;
                self.mine().await?;
            }
        }
        Ok(())
    }

    /// A fast chain of at least `opts.transfers` transfers for benchmarks: large
    /// `batchTransfer` and `forward` calls, `opts.txs_per_block` transactions per block.
    /// Start anvil with `no_mining()` and [`BulkOptions::anvil_args`].
    pub async fn generate_bulk(&mut self, opts: BulkOptions) -> Result<()> {
        let d = self.deploy().await?;
        let batch = opts.batch.max(1);
        let per_block = opts.txs_per_block.max(1);
        let pool = 2_000usize;
        let mut in_block = 0usize;
        let mut next = 0usize;
        let mut n_tx = 0usize;
        while self.expected.len() + self.pending_transfers() < opts.transfers {
            let kind = n_tx % 3;
            n_tx += 1;
            let spec = match kind {
                0 => {
                    let mut items = Vec::with_capacity(batch);
                    for _ in 0..batch {
                        let amount = self.rand_amount(1_000_000_000);
                        items.push((recipient(next % pool), amount));
                        next += 1;
                    }
                    self.token_batch(self.account(0), &items)?
                }
                1 => {
                    let mut items = Vec::with_capacity(batch);
                    let mut total = U256::ZERO;
                    for _ in 0..batch {
                        let amount = self.rand_amount(1_000_000);
                        total += amount;
                        items.push((recipient(next % pool), amount));
                        next += 1;
                    }
                    let from = self.account(1 + n_tx % 9);
                    self.forward(from, total, &items)?
                }
                _ => {
                    let v = self.rand_amount(1_000_000_000_000);
                    let from = self.account(1 + n_tx % 9);
                    let to = recipient(next % pool);
                    next += 1;
                    let _ = d;
                    self.native(from, to, v)
                }
            };
            self.send(spec).await?;
            in_block += 1;
            if in_block >= per_block {
                self.mine().await?;
                in_block = 0;
            }
        }
        if !self.pending.is_empty() {
            self.mine().await?;
        }
        Ok(())
    }

    fn pending_transfers(&self) -> usize {
        self.pending.iter().map(|s| s.spec.transfer_count()).sum()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    #[test]
    fn create_address_matches_known_vectors() {
        // From alloy-primitives' documentation of `Address::create`.
        let sender: Address = "0xb20a608c624Ca5003905aA834De7156C68b2E1d0"
            .parse()
            .unwrap();
        assert_eq!(
            create_address(sender, 0),
            "0x00000000219ab540356cBB839Cbe05303d7705Fa"
                .parse::<Address>()
                .unwrap()
        );
        assert_eq!(
            create_address(sender, 1),
            "0xe33c6e89e69d085897f98e92b06ebd541d1daa99"
                .parse::<Address>()
                .unwrap()
        );
    }

    #[test]
    fn transfer_topic_is_the_erc20_signature() {
        assert_eq!(
            keccak256("Transfer(address,address,uint256)".as_bytes()),
            TRANSFER_TOPIC
        );
    }
}
