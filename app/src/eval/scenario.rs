//! Seeded payroll scenarios with exact ground truth.
//!
//! [`Scenario::generate`] builds, from a seed and a noise scale, a few months of an EVM-like
//! chain:
//!
//! * one to three payroll providers pay payees in two or three stablecoin-like tokens
//!   (6 decimals), monthly;
//! * one or two operators each run two to five fake payees. A fake payee's salary takes one to
//!   four hops to the operator's consolidation wallet: plain transfers to the identity's own
//!   wallets, a swap through a DEX-like router (into another token, or into the native asset
//!   paid by an internal call) and a forwarder contract (native in, internal transfer out).
//!   The consolidation wallet pays a share of every asset to a sanctioned facilitator and peels
//!   the rest through chains of fresh addresses into the operator's exchange deposit addresses;
//! * real payees cash out at their own exchange deposit addresses; some pay a merchant that has
//!   much larger other business and, in the last month, pays the sanctioned address once;
//! * a token distributor airdrops the same amount to some fake and some real payees and to
//!   unrelated wallets;
//! * deposit addresses sweep every receipt to their exchange's hot wallet;
//! * noise (unrelated wallets trading, swapping, withdrawing and depositing) grows with the
//!   scale (1x to 100x).
//!
//! Failed transactions and reverted calls are not generated: the store's write path
//! (`PreparedRange`) takes the transfers a decoder kept, and the decoders drop failed frames
//! before that point, so there is nothing of them to write.
//!
//! The ground truth ([`Truth`]) is the generator's own bookkeeping: fake or real per payee,
//! operator to its fakes, deposit address to exchange hot wallet, the planted pattern
//! instances, and the value of each payee's payouts that reached the sanctioned address under
//! FIFO and haircut, computed by [`super::reference`] (independent of the tracer).

use super::reference;
use paytrace_indexer::{
    Address, Amount, Asset, BlockNumber, BlockRef, ChainId, Timestamp, Transfer, TransferKey,
    TransferKind, TxHash,
};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// 2025-01-01T00:00:00Z: the first payday's month.
pub const BASE: u64 = 1_735_689_600;
const DAY: u64 = 86_400;
const HOUR: u64 = 3_600;
/// One whole unit of a 6-decimal token.
const UNIT: u128 = 1_000_000;
/// One whole unit of an 18-decimal asset.
const WEI: u128 = 1_000_000_000_000_000_000;
/// Native units per stablecoin unit (raw): a native coin is worth 2,500 stablecoin units.
const NATIVE_PER_STABLE_RAW: u128 = 1_000_000_000_000 / 2_500;

/// An asset of the scenario.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize)]
pub enum AssetId {
    /// The chain's native asset (18 decimals).
    Native,
    /// Index into [`Scenario::tokens`].
    Token(usize),
}

/// One value movement of a transaction.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Move {
    /// Sender.
    pub from: Address,
    /// Receiver.
    pub to: Address,
    /// Asset.
    pub asset: AssetId,
    /// Raw units.
    pub amount: u128,
    /// A native transfer made by a contract call inside the transaction (an internal transfer).
    pub internal: bool,
}

/// One transaction (one block of the scenario's chain).
#[derive(Clone, Debug, Serialize)]
pub struct Tx {
    /// Block time.
    pub time: u64,
    /// Its movements, in the order the chain records them.
    pub moves: Vec<Move>,
    /// A swap through this router: the router's payouts in the transaction are the swap's
    /// output.
    pub swap: Option<Address>,
    /// A salary payment: index into [`Scenario::payees`].
    pub salary_of: Option<usize>,
    /// What it is, for people.
    pub note: &'static str,
}

/// A token of the scenario.
#[derive(Clone, Debug, Serialize)]
pub struct Token {
    /// Symbol.
    pub symbol: String,
    /// Decimals.
    pub decimals: u8,
    /// Contract address.
    pub address: Address,
}

/// A payee.
#[derive(Clone, Debug, Serialize)]
pub struct Payee {
    /// Name in the payroll batch.
    pub name: String,
    /// Address.
    pub address: Address,
    /// A fake identity of an operator.
    pub fake: bool,
    /// The operator (index into [`Truth::operators`]).
    pub operator: Option<usize>,
    /// Paying provider (index into [`Scenario::providers`]).
    pub provider: usize,
    /// Salary token (index into [`Scenario::tokens`]).
    pub token: usize,
}

/// A payroll provider.
#[derive(Clone, Debug, Serialize)]
pub struct Provider {
    /// Name.
    pub name: String,
    /// Hot wallet.
    pub address: Address,
}

/// A label known before the analysis (imported through the label store).
#[derive(Clone, Debug, Serialize)]
pub struct Label {
    /// Address.
    pub address: Address,
    /// Category (taxonomy name).
    pub category: &'static str,
    /// Entity.
    pub entity: String,
}

/// An operator: the person behind several fake payees.
#[derive(Clone, Debug, Serialize)]
pub struct TruthOperator {
    /// Name.
    pub name: String,
    /// Where the fake payees' salaries converge.
    pub consolidation: Address,
    /// The fake payees.
    pub fakes: BTreeSet<Address>,
}

/// Ground truth of one payee.
#[derive(Clone, Debug, Serialize)]
pub struct TruthPayee {
    /// Name.
    pub name: String,
    /// Address.
    pub address: Address,
    /// Fake identity.
    pub fake: bool,
    /// Operator name (fakes).
    pub operator: Option<String>,
    /// Value of the payee's payouts that reached the sanctioned address under FIFO, raw units
    /// of the asset it arrived in, summed over assets.
    pub fifo: Amount,
    /// The same under haircut.
    pub haircut: Amount,
}

/// A planted typology instance.
#[derive(Clone, Debug, Serialize)]
pub struct PlantedPattern {
    /// `fan-in` or `peel`.
    pub kind: &'static str,
    /// The receiver of the fan-in, the first address of the peel chain.
    pub center: Address,
    /// Every address taking part.
    pub members: BTreeSet<Address>,
    /// The consolidation wallet the instance belongs to (shared by every month's chains).
    pub source: Address,
}

/// What the analysis should find.
#[derive(Clone, Debug, Serialize)]
pub struct Truth {
    /// Operators and their fake payees.
    pub operators: Vec<TruthOperator>,
    /// Every payee.
    pub payees: Vec<TruthPayee>,
    /// Exchange deposit address → the exchange hot wallet it sweeps to.
    pub deposits: BTreeMap<Address, Address>,
    /// Planted pattern instances.
    pub patterns: Vec<PlantedPattern>,
    /// The sanctioned facilitator.
    pub sanctioned: Address,
    /// The DEX-like router.
    pub router: Address,
}

/// A generated scenario.
#[derive(Clone, Debug, Serialize)]
pub struct Scenario {
    /// Seed.
    pub seed: u64,
    /// Noise scale.
    pub scale: u32,
    /// Tokens: the stablecoins, then the airdrop token.
    pub tokens: Vec<Token>,
    /// Payroll providers.
    pub providers: Vec<Provider>,
    /// Payees.
    pub payees: Vec<Payee>,
    /// Transactions in chain order (one per block, block numbers from 1).
    pub txs: Vec<Tx>,
    /// Labels known beforehand: exchange hot wallets, the sanctioned address, the router.
    pub labels: Vec<Label>,
    /// Every address the scenario uses (except the zero address).
    pub addresses: BTreeSet<Address>,
    /// Ground truth.
    pub truth: Truth,
}

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn index(&mut self, len: usize) -> usize {
        usize::try_from(self.below(u64::try_from(len).unwrap_or(u64::MAX))).unwrap_or(0)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// How a fake payee's value moves one step towards the consolidation wallet.
#[derive(Clone, Copy, Debug)]
enum Segment {
    /// A plain transfer (one hop).
    Plain,
    /// A swap through the router into this asset (two hops: in, and the router's payout).
    Swap(AssetId),
    /// Native value through the operator's forwarder contract (two hops: the call's value,
    /// and the contract's internal transfer).
    Forward,
}

struct Gen {
    rng: Rng,
    seed: u64,
    txs: Vec<(u64, usize, Tx)>,
    addresses: BTreeSet<Address>,
    deposits: BTreeMap<Address, Address>,
}

impl Gen {
    fn addr(&mut self, name: &str) -> Address {
        let h = alloy_primitives::keccak256(format!("paytrace eval {} {name}", self.seed));
        let mut b = [0u8; 20];
        b.copy_from_slice(&h[12..]);
        let a = Address::Evm(b);
        self.addresses.insert(a);
        a
    }

    fn push(&mut self, time: u64, note: &'static str, moves: Vec<Move>) -> usize {
        self.push_tx(Tx {
            time,
            moves,
            swap: None,
            salary_of: None,
            note,
        })
    }

    fn push_tx(&mut self, tx: Tx) -> usize {
        let seq = self.txs.len();
        self.txs.push((tx.time, seq, tx));
        seq
    }

    fn send_note(
        &mut self,
        time: u64,
        from: Address,
        to: Address,
        asset: AssetId,
        amount: u128,
        note: &'static str,
    ) {
        if amount == 0 {
            return;
        }
        self.push(
            time,
            note,
            vec![Move {
                from,
                to,
                asset,
                amount,
                internal: false,
            }],
        );
    }

    /// A deposit into `dep`, swept to its hot wallet 30 to 90 minutes later.
    fn deposit(&mut self, time: u64, from: Address, dep: Address, asset: AssetId, amount: u128) {
        if amount == 0 {
            return;
        }
        self.send_note(time, from, dep, asset, amount, "exchange deposit");
        let hot = self.deposits.get(&dep).copied();
        if let Some(hot) = hot {
            let later = time + self.rng.range(30, 90) * 60;
            self.send_note(later, dep, hot, asset, amount, "deposit sweep");
        }
    }

    /// The balance of `a` in `asset` from every transaction generated so far before `time`.
    fn balance_before(&self, a: Address, asset: AssetId, time: u64) -> u128 {
        let mut b: i128 = 0;
        for (t, _, tx) in &self.txs {
            if *t >= time {
                continue;
            }
            for m in tx.moves.iter().filter(|m| m.asset == asset) {
                let v = i128::try_from(m.amount).unwrap_or(i128::MAX);
                if m.to == a {
                    b = b.saturating_add(v);
                }
                if m.from == a {
                    b = b.saturating_sub(v);
                }
            }
        }
        u128::try_from(b.max(0)).unwrap_or(0)
    }
}

/// `amount × p / 100`, rounded down.
fn pct(amount: u128, p: u64) -> u128 {
    amount / 100 * u128::from(p) + amount % 100 * u128::from(p) / 100
}

/// The router's output for `amount` of `from` into `to` (0.3 % fee).
fn swap_out(amount: u128, from: AssetId, to: AssetId) -> u128 {
    let gross = match (from, to) {
        (AssetId::Token(_), AssetId::Native) => amount.saturating_mul(NATIVE_PER_STABLE_RAW),
        (AssetId::Native, AssetId::Token(_)) => amount / NATIVE_PER_STABLE_RAW,
        _ => amount,
    };
    gross / 1_000 * 997 + gross % 1_000 * 997 / 1_000
}

impl Scenario {
    /// The scenario of `seed` with noise at `scale` (1 = base level).
    pub fn generate(seed: u64, scale: u32) -> Self {
        let scale = u64::from(scale.max(1));
        let mut g = Gen {
            rng: Rng(seed ^ 0x7061_7974_7261_6365),
            seed,
            txs: Vec::new(),
            addresses: BTreeSet::new(),
            deposits: BTreeMap::new(),
        };
        let months = g.rng.range(3, 5);
        let n_stable = usize::try_from(g.rng.range(2, 3)).unwrap_or(2);
        let symbols = ["USDP", "USDQ", "USDR"];
        let mut tokens: Vec<Token> = (0..n_stable)
            .map(|i| Token {
                symbol: symbols[i].to_owned(),
                decimals: 6,
                address: g.addr(&format!("token {i}")),
            })
            .collect();
        let air = tokens.len();
        tokens.push(Token {
            symbol: "AIRD".into(),
            decimals: 18,
            address: g.addr("airdrop token"),
        });
        let n_ex = usize::try_from(g.rng.range(2, 3)).unwrap_or(2);
        let hots: Vec<Address> = (0..n_ex)
            .map(|i| g.addr(&format!("exchange {i} hot wallet")))
            .collect();
        let router = g.addr("dex router");
        let sanctioned = g.addr("sanctioned facilitator");
        let distributor = g.addr("token distributor");
        let mut labels: Vec<Label> = hots
            .iter()
            .enumerate()
            .map(|(i, h)| Label {
                address: *h,
                category: "exchange",
                entity: format!("Exchange {i}"),
            })
            .collect();
        labels.push(Label {
            address: router,
            category: "defi",
            entity: "EvalSwap router".into(),
        });
        labels.push(Label {
            address: sanctioned,
            category: "sanctioned",
            entity: "Facilitator (eval SDN)".into(),
        });
        let new_deposit = |g: &mut Gen, name: &str| {
            let d = g.addr(name);
            let hot = hots[g.rng.index(hots.len())];
            g.deposits.insert(d, hot);
            d
        };

        // Providers and their tokens.
        let n_prov = usize::try_from(g.rng.range(1, 3)).unwrap_or(1);
        let mut providers = Vec::new();
        let mut prov_tokens: Vec<Vec<usize>> = Vec::new();
        for i in 0..n_prov {
            let address = g.addr(&format!("provider {i}"));
            providers.push(Provider {
                name: format!("Provider {i}"),
                address,
            });
            let mut ts = vec![i % n_stable];
            if g.rng.chance(50) {
                ts.push((i + 1) % n_stable);
            }
            prov_tokens.push(ts);
        }

        // Operators and payees.
        let n_op = usize::try_from(g.rng.range(1, 2)).unwrap_or(1);
        let mut kinds: Vec<Option<usize>> = Vec::new();
        for o in 0..n_op {
            for _ in 0..g.rng.range(2, 5) {
                kinds.push(Some(o));
            }
        }
        for _ in 0..g.rng.range(5, 9) {
            kinds.push(None);
        }
        for i in (1..kinds.len()).rev() {
            let j = g.rng.index(i + 1);
            kinds.swap(i, j);
        }
        let mut payees = Vec::new();
        let mut salaries = Vec::new();
        for (i, op) in kinds.iter().enumerate() {
            let provider = g.rng.index(n_prov);
            let pt = &prov_tokens[provider];
            let token = pt[g.rng.index(pt.len())];
            let address = g.addr(&format!("payee {i}"));
            payees.push(Payee {
                name: format!("Payee {i:02}"),
                address,
                fake: op.is_some(),
                operator: *op,
                provider,
                token,
            });
            salaries.push(
                u128::from(g.rng.range(3_000, 6_000)) * UNIT
                    + u128::from(g.rng.below(100)) * 10_000,
            );
        }
        let operators: Vec<TruthOperator> = (0..n_op)
            .map(|o| TruthOperator {
                name: operators_name(o),
                consolidation: g.addr(&format!("operator {o} consolidation")),
                fakes: payees
                    .iter()
                    .filter(|p| p.operator == Some(o))
                    .map(|p| p.address)
                    .collect(),
            })
            .collect();
        let op_deposits: Vec<Vec<Address>> = (0..n_op)
            .map(|o| {
                (0..g.rng.range(2, 3))
                    .map(|k| new_deposit(&mut g, &format!("operator {o} deposit {k}")))
                    .collect()
            })
            .collect();
        let forwarders: Vec<Address> = (0..n_op)
            .map(|o| g.addr(&format!("operator {o} forwarder contract")))
            .collect();
        // Each fake payee's path: segments using one to four hops, and the identity's wallets.
        let mut plans: BTreeMap<usize, (Vec<Segment>, Vec<Address>)> = BTreeMap::new();
        for (i, p) in payees.iter().enumerate() {
            if !p.fake {
                continue;
            }
            let mut left = g.rng.range(1, 4);
            let mut asset = AssetId::Token(p.token);
            let mut segs = Vec::new();
            let mut swapped = false;
            while left > 0 {
                let r = g.rng.below(3);
                let seg = if left >= 2 && !swapped && r == 0 {
                    swapped = true;
                    let to = if g.rng.chance(50) {
                        AssetId::Native
                    } else {
                        AssetId::Token((p.token + 1) % n_stable)
                    };
                    asset = to;
                    Segment::Swap(to)
                } else if left >= 2 && asset == AssetId::Native && r == 1 {
                    Segment::Forward
                } else {
                    Segment::Plain
                };
                left -= match seg {
                    Segment::Plain => 1,
                    _ => 2,
                };
                segs.push(seg);
            }
            let wallets: Vec<Address> = (1..segs.len())
                .map(|k| g.addr(&format!("payee {i} wallet {k}")))
                .collect();
            plans.insert(i, (segs, wallets));
        }
        let reals: Vec<usize> = (0..payees.len()).filter(|&i| !payees[i].fake).collect();
        let real_deposits: BTreeMap<usize, Address> = reals
            .iter()
            .map(|&i| (i, new_deposit(&mut g, &format!("payee {i} deposit"))))
            .collect();
        // Merchants: one or two real payees pay their own merchant every month.
        let n_merch = usize::try_from(g.rng.range(1, 2))
            .unwrap_or(1)
            .min(reals.len());
        let mut merchants: Vec<(usize, Address, Address, Vec<Address>)> = Vec::new();
        for k in 0..n_merch {
            let payee = reals[g.rng.index(reals.len())];
            if merchants.iter().any(|m| m.0 == payee) {
                continue;
            }
            let m = g.addr(&format!("merchant {k}"));
            let dep = new_deposit(&mut g, &format!("merchant {k} deposit"));
            let customers = (0..g.rng.range(3, 6))
                .map(|c| g.addr(&format!("merchant {k} customer {c}")))
                .collect();
            merchants.push((payee, m, dep, customers));
        }
        // Noise wallets, half with their own deposit address.
        let n_noise = usize::try_from(8 * scale).unwrap_or(8);
        let noise: Vec<Address> = (0..n_noise)
            .map(|i| g.addr(&format!("noise {i}")))
            .collect();
        let noise_dep: BTreeMap<usize, Address> = (0..n_noise)
            .filter(|i| i % 2 == 0)
            .map(|i| (i, new_deposit(&mut g, &format!("noise {i} deposit"))))
            .collect();

        // Funding: mints from the zero address.
        let zero = Address::ZERO_EVM;
        let t0 = BASE - 3 * DAY;
        for (i, ts) in prov_tokens.iter().enumerate() {
            for &t in ts {
                g.send_note(
                    t0,
                    zero,
                    providers[i].address,
                    AssetId::Token(t),
                    1_000_000_000 * UNIT,
                    "mint",
                );
            }
        }
        for t in 0..n_stable {
            g.send_note(
                t0,
                zero,
                router,
                AssetId::Token(t),
                1_000_000_000 * UNIT,
                "mint",
            );
            for &h in &hots {
                g.send_note(t0, zero, h, AssetId::Token(t), 1_000_000_000 * UNIT, "mint");
            }
        }
        g.send_note(t0, zero, router, AssetId::Native, 1_000_000 * WEI, "mint");
        g.send_note(
            t0,
            zero,
            distributor,
            AssetId::Token(air),
            1_000_000_000 * WEI,
            "mint",
        );
        // Noise wallets and merchant customers are funded by exchange withdrawals.
        let mut noise_bal: BTreeMap<(usize, AssetId), u128> = BTreeMap::new();
        for (i, &w) in noise.iter().enumerate() {
            let t = AssetId::Token(g.rng.index(n_stable));
            let v = u128::from(g.rng.range(2_000, 20_000)) * UNIT;
            let hot = hots[g.rng.index(hots.len())];
            g.send_note(t0 + DAY + HOUR, hot, w, t, v, "exchange withdrawal");
            *noise_bal.entry((i, t)).or_default() += v;
        }
        for (payee, _, _, customers) in &merchants {
            let t = AssetId::Token(payees[*payee].token);
            for &c in customers {
                let hot = hots[g.rng.index(hots.len())];
                g.send_note(
                    t0 + DAY + 2 * HOUR,
                    hot,
                    c,
                    t,
                    100_000 * UNIT,
                    "exchange withdrawal",
                );
            }
        }

        let mut fan_senders: Vec<BTreeSet<Address>> = vec![BTreeSet::new(); n_op];
        let mut patterns: Vec<PlantedPattern> = Vec::new();
        for m in 0..months {
            let month = BASE + m * 30 * DAY;
            let payday = month + 9 * HOUR;
            // Merchant business: customers pay through the month (also before payday).
            for (payee, merchant, _, customers) in &merchants {
                let t = AssetId::Token(payees[*payee].token);
                for &c in customers {
                    for _ in 0..2 {
                        let at = month - DAY + g.rng.below(27 * DAY);
                        let v = u128::from(g.rng.range(500, 3_000)) * UNIT;
                        g.send_note(at, c, *merchant, t, v, "merchant sale");
                    }
                }
            }
            // Salaries.
            for (i, p) in payees.iter().enumerate() {
                let at = payday + u64::try_from(p.provider).unwrap_or(0) * 600 + 10 * (i as u64);
                let amount = salaries[i] + u128::from(m) * 10_000;
                g.push_tx(Tx {
                    time: at,
                    moves: vec![Move {
                        from: providers[p.provider].address,
                        to: p.address,
                        asset: AssetId::Token(p.token),
                        amount,
                        internal: false,
                    }],
                    swap: None,
                    salary_of: Some(i),
                    note: "salary",
                });
            }
            // Fake payees forward their salary to the consolidation wallet.
            for (&i, (segs, wallets)) in &plans {
                let p = &payees[i];
                let Some(o) = p.operator else { continue };
                let c = operators[o].consolidation;
                let mut at = payday + DAY + g.rng.below(6 * HOUR);
                let mut holder = p.address;
                let mut asset = AssetId::Token(p.token);
                let mut amount = salaries[i] + u128::from(m) * 10_000;
                for (k, seg) in segs.iter().enumerate() {
                    let next = wallets.get(k).copied().unwrap_or(c);
                    if next == c {
                        fan_senders[o].insert(holder);
                    }
                    match *seg {
                        Segment::Plain => {
                            g.send_note(at, holder, next, asset, amount, "fake hop");
                        }
                        Segment::Swap(to) => {
                            let out = swap_out(amount, asset, to);
                            g.push_tx(Tx {
                                time: at,
                                moves: vec![
                                    Move {
                                        from: holder,
                                        to: router,
                                        asset,
                                        amount,
                                        internal: false,
                                    },
                                    Move {
                                        from: router,
                                        to: next,
                                        asset: to,
                                        amount: out,
                                        internal: to == AssetId::Native,
                                    },
                                ],
                                swap: Some(router),
                                salary_of: None,
                                note: "fake swap",
                            });
                            asset = to;
                            amount = out;
                        }
                        Segment::Forward => {
                            let fwd = forwarders[o];
                            g.push(
                                at,
                                "fake forward",
                                vec![
                                    Move {
                                        from: holder,
                                        to: fwd,
                                        asset,
                                        amount,
                                        internal: false,
                                    },
                                    Move {
                                        from: fwd,
                                        to: next,
                                        asset,
                                        amount,
                                        internal: true,
                                    },
                                ],
                            );
                        }
                    }
                    holder = next;
                    at += g.rng.range(2, 8) * HOUR;
                }
            }
            // Consolidation: a share to the facilitator, the rest peeled into deposits.
            for (o, op) in operators.iter().enumerate() {
                let c = op.consolidation;
                let at = payday + 4 * DAY + g.rng.below(4 * HOUR);
                let assets: Vec<AssetId> = std::iter::once(AssetId::Native)
                    .chain((0..n_stable).map(AssetId::Token))
                    .collect();
                let share = g.rng.range(8, 20);
                for (ai, asset) in assets.into_iter().enumerate() {
                    let held = g.balance_before(c, asset, at);
                    if held == 0 {
                        continue;
                    }
                    let to_f = pct(held, share);
                    let t = at + 600 * (ai as u64);
                    g.send_note(t, c, sanctioned, asset, to_f, "payment to facilitator");
                    let k = g.rng.range(2, 4);
                    let chain: Vec<Address> = (1..=k)
                        .map(|j| g.addr(&format!("operator {o} month {m} asset {ai} peel {j}")))
                        .collect();
                    let mut v = held - to_f;
                    let mut t = t + HOUR;
                    g.send_note(t, c, chain[0], asset, v, "to peel chain");
                    for (j, &w) in chain.iter().enumerate() {
                        t += g.rng.range(1, 3) * HOUR;
                        let dep = op_deposits[o][g.rng.index(op_deposits[o].len())];
                        if let Some(&nxt) = chain.get(j + 1) {
                            let peel = pct(v, g.rng.range(15, 30));
                            g.deposit(t, w, dep, asset, peel);
                            g.send_note(t + 60, w, nxt, asset, v - peel, "peel");
                            v -= peel;
                        } else {
                            g.deposit(t, w, dep, asset, v);
                        }
                    }
                    let mut members: BTreeSet<Address> = chain.iter().copied().collect();
                    members.insert(c);
                    patterns.push(PlantedPattern {
                        kind: "peel",
                        center: chain[0],
                        members,
                        source: c,
                    });
                }
            }
            // Real payees: a merchant payment, then most of the rest to their deposit address.
            for &i in &reals {
                let p = &payees[i];
                let asset = AssetId::Token(p.token);
                let mut at = payday + HOUR + g.rng.below(3 * DAY);
                if let Some((_, merchant, _, _)) = merchants.iter().find(|x| x.0 == i) {
                    let v = u128::from(g.rng.range(50, 300)) * UNIT;
                    g.send_note(at, p.address, *merchant, asset, v, "purchase");
                    at += HOUR;
                }
                let held = g.balance_before(p.address, asset, at);
                let keep = g.rng.range(0, 20);
                let out = held - pct(held, keep);
                g.deposit(at, p.address, real_deposits[&i], asset, out);
            }
            // Merchants cash out half of their balance after three weeks; in the last month
            // each pays the sanctioned address once, a small part of its business.
            for (payee, merchant, dep, _) in &merchants {
                let asset = AssetId::Token(payees[*payee].token);
                let at = payday + 21 * DAY;
                if m + 1 == months {
                    let v = u128::from(g.rng.range(20, 80)) * UNIT;
                    g.send_note(
                        at - DAY,
                        *merchant,
                        sanctioned,
                        asset,
                        v,
                        "merchant payment",
                    );
                }
                let held = g.balance_before(*merchant, asset, at);
                g.deposit(at, *merchant, *dep, asset, held / 2);
            }
            // The airdrop, in the first month.
            if m == 0 {
                let fakes: Vec<Address> = payees
                    .iter()
                    .filter(|p| p.fake)
                    .map(|p| p.address)
                    .collect();
                let mut rcpt: Vec<Address> = fakes.iter().take(2).copied().collect();
                rcpt.extend(reals.iter().take(2).map(|&i| payees[i].address));
                rcpt.extend(noise.iter().take(10 + 2 * n_noise / 8).copied());
                let at = payday + 12 * DAY;
                for (k, r) in rcpt.into_iter().enumerate() {
                    g.send_note(
                        at + 12 * (k as u64),
                        distributor,
                        r,
                        AssetId::Token(air),
                        100 * WEI,
                        "airdrop",
                    );
                }
            }
            // Noise, in time order within the month.
            let mut times: Vec<u64> = (0..20 * scale)
                .map(|_| month + g.rng.below(30 * DAY))
                .collect();
            times.sort_unstable();
            for at in times {
                let i = g.rng.index(n_noise);
                let w = noise[i];
                let held: Vec<(AssetId, u128)> = noise_bal
                    .range((i, AssetId::Native)..=(i, AssetId::Token(usize::MAX)))
                    .filter(|(_, v)| **v > UNIT)
                    .map(|(k, v)| (k.1, *v))
                    .collect();
                let kind = g.rng.below(5);
                if held.is_empty() || kind == 4 {
                    let t = AssetId::Token(g.rng.index(n_stable));
                    let v = u128::from(g.rng.range(1_000, 5_000)) * UNIT;
                    let hot = hots[g.rng.index(hots.len())];
                    g.send_note(at, hot, w, t, v, "exchange withdrawal");
                    *noise_bal.entry((i, t)).or_default() += v;
                    continue;
                }
                let (asset, bal) = held[g.rng.index(held.len())];
                let v = pct(bal, g.rng.range(5, 30));
                match kind {
                    0 | 1 => {
                        let j = g.rng.index(n_noise);
                        g.send_note(at, w, noise[j], asset, v, "noise transfer");
                        *noise_bal.entry((j, asset)).or_default() += v;
                    }
                    2 if noise_dep.contains_key(&i) => {
                        g.deposit(at, w, noise_dep[&i], asset, v);
                    }
                    _ => {
                        let AssetId::Token(t) = asset else { continue };
                        let to = AssetId::Token((t + 1) % n_stable);
                        let out = swap_out(v, asset, to);
                        g.push_tx(Tx {
                            time: at,
                            moves: vec![
                                Move {
                                    from: w,
                                    to: router,
                                    asset,
                                    amount: v,
                                    internal: false,
                                },
                                Move {
                                    from: router,
                                    to: w,
                                    asset: to,
                                    amount: out,
                                    internal: false,
                                },
                            ],
                            swap: Some(router),
                            salary_of: None,
                            note: "noise swap",
                        });
                        *noise_bal.entry((i, to)).or_default() += out;
                    }
                }
                if let Some(b) = noise_bal.get_mut(&(i, asset)) {
                    *b -= v;
                }
            }
        }
        for (o, senders) in fan_senders.into_iter().enumerate() {
            if senders.len() >= 2 {
                let mut members = senders;
                members.insert(operators[o].consolidation);
                patterns.push(PlantedPattern {
                    kind: "fan-in",
                    center: operators[o].consolidation,
                    members,
                    source: operators[o].consolidation,
                });
            }
        }
        // Chain order: by time, then by the order of generation.
        g.txs.sort_by_key(|(t, seq, _)| (*t, *seq));
        let txs: Vec<Tx> = g.txs.into_iter().map(|(_, _, tx)| tx).collect();
        let swept: BTreeSet<Address> = txs
            .iter()
            .flat_map(|t| &t.moves)
            .filter(|m| g.deposits.get(&m.from) == Some(&m.to))
            .map(|m| m.from)
            .collect();
        let deposits: BTreeMap<Address, Address> = g
            .deposits
            .into_iter()
            .filter(|(d, _)| swept.contains(d))
            .collect();
        let mut stops: BTreeSet<Address> = hots.iter().copied().collect();
        stops.extend(deposits.keys().copied());
        let reach = reference::reach(&txs, payees.len(), &stops, router, sanctioned);
        let truth_payees = payees
            .iter()
            .enumerate()
            .map(|(i, p)| TruthPayee {
                name: p.name.clone(),
                address: p.address,
                fake: p.fake,
                operator: p.operator.map(operators_name),
                fifo: Amount::from_raw(alloy_primitives::U256::from(reach.fifo[i])),
                haircut: Amount::from_raw(alloy_primitives::U256::from(reach.haircut[i])),
            })
            .collect();
        g.addresses.remove(&zero);
        Self {
            seed,
            scale: u32::try_from(scale).unwrap_or(u32::MAX),
            tokens,
            providers,
            payees,
            txs,
            labels,
            addresses: g.addresses,
            truth: Truth {
                operators,
                payees: truth_payees,
                deposits,
                patterns,
                sanctioned,
                router,
            },
        }
    }

    /// The asset of `id` on the chain.
    pub fn asset(&self, id: AssetId) -> Asset {
        match id {
            AssetId::Native => Asset::Native,
            AssetId::Token(i) => self
                .tokens
                .get(i)
                .map_or(Asset::Native, |t| Asset::Token(t.address)),
        }
    }

    /// The time of the last transaction.
    pub fn end(&self) -> u64 {
        self.txs.last().map_or(BASE, |t| t.time)
    }

    /// The blocks and transfers of the chain `chain` (block `n` holds transaction `n - 1`).
    pub fn blocks(&self, chain: ChainId) -> (Vec<BlockRef>, Vec<Transfer>) {
        let hash =
            |n: u64| alloy_primitives::keccak256(format!("paytrace eval {} block {n}", self.seed));
        let mut blocks = Vec::with_capacity(self.txs.len());
        let mut transfers = Vec::new();
        for (i, tx) in self.txs.iter().enumerate() {
            let n = i as u64 + 1;
            blocks.push(BlockRef {
                number: BlockNumber(n),
                hash: hash(n),
                parent: hash(n - 1),
                time: Timestamp(tx.time),
            });
            let tx_hash = TxHash(alloy_primitives::keccak256(format!(
                "paytrace eval {} tx {n}",
                self.seed
            )));
            let (mut logs, mut calls) = (0u32, 0u32);
            for m in &tx.moves {
                let (kind, position, trace_address) = match (m.asset, m.internal) {
                    (AssetId::Native, false) => (TransferKind::Native, 0, Vec::new()),
                    (AssetId::Native, true) => {
                        calls += 1;
                        (TransferKind::Internal, calls, vec![calls - 1])
                    }
                    (AssetId::Token(_), _) => {
                        logs += 1;
                        (TransferKind::Token, logs - 1, Vec::new())
                    }
                };
                transfers.push(Transfer {
                    key: TransferKey {
                        chain,
                        block: BlockNumber(n),
                        tx_index: 0,
                        kind,
                        position,
                    },
                    time: Timestamp(tx.time),
                    tx_hash,
                    from: m.from,
                    to: m.to,
                    asset: self.asset(m.asset),
                    amount: Amount::from_raw(alloy_primitives::U256::from(m.amount)),
                    trace_address,
                });
            }
        }
        transfers.sort_by_key(|t| t.key);
        (blocks, transfers)
    }

    /// The labels as the label importer's CSV (`address,category,entity,valid_from`).
    pub fn labels_csv(&self) -> String {
        let mut s = String::from("address,category,entity,valid_from\n");
        for l in &self.labels {
            s.push_str(&format!("{},{},{},\n", l.address, l.category, l.entity));
        }
        s
    }

    /// The payroll batch as a finance team exports it
    /// (`payee,address,chain,asset,amount,tx_hash,date`; no transaction hashes).
    pub fn batch_csv(&self, chain: &str) -> String {
        let mut s = String::from("payee,address,chain,asset,amount,tx_hash,date\n");
        for tx in &self.txs {
            let Some(i) = tx.salary_of else { continue };
            let (Some(p), Some(m)) = (self.payees.get(i), tx.moves.first()) else {
                continue;
            };
            let AssetId::Token(t) = m.asset else { continue };
            let tok = &self.tokens[t];
            let amount = Amount::from_raw(alloy_primitives::U256::from(m.amount));
            s.push_str(&format!(
                "{},{},{chain},{},{},,{}\n",
                p.name,
                p.address,
                tok.symbol,
                amount.to_decimal_string(tok.decimals),
                day_string(tx.time)
            ));
        }
        s
    }

    /// Checks that every sender other than the zero address had the value it sent, in chain
    /// order, and that every asset's balances sum to what was minted (what leaves an address
    /// arrives at another). Returns the first violation.
    pub fn check_conservation(&self) -> Result<(), String> {
        let mut bal: BTreeMap<(Address, AssetId), u128> = BTreeMap::new();
        let mut minted: BTreeMap<AssetId, u128> = BTreeMap::new();
        for (n, tx) in self.txs.iter().enumerate() {
            // A swap's router may pay out before it is paid within the transaction: credit
            // first, then debit, per transaction.
            for m in &tx.moves {
                *bal.entry((m.to, m.asset)).or_default() += m.amount;
            }
            for m in &tx.moves {
                if m.from == Address::ZERO_EVM {
                    *minted.entry(m.asset).or_default() += m.amount;
                    continue;
                }
                let b = bal.entry((m.from, m.asset)).or_default();
                *b = b.checked_sub(m.amount).ok_or_else(|| {
                    format!(
                        "block {}: {} sends {} of {:?} holding {}",
                        n + 1,
                        m.from,
                        m.amount,
                        m.asset,
                        b
                    )
                })?;
            }
        }
        let mut held: BTreeMap<AssetId, u128> = BTreeMap::new();
        for ((_, a), v) in &bal {
            *held.entry(*a).or_default() += v;
        }
        if held != minted {
            return Err(format!("balances {held:?} differ from minted {minted:?}"));
        }
        Ok(())
    }
}

fn operators_name(o: usize) -> String {
    format!("Operator {o}")
}

/// `YYYY-MM-DD` of a Unix second.
pub fn day_string(t: u64) -> String {
    i64::try_from(t)
        .ok()
        .and_then(paytrace_indexer::labels::date_of_unix)
        .map(|d| d.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_scenario() {
        for seed in [0, 1, 7] {
            let a = serde_json::to_string(&Scenario::generate(seed, 1)).unwrap();
            let b = serde_json::to_string(&Scenario::generate(seed, 1)).unwrap();
            assert_eq!(a, b, "seed {seed}");
        }
        let a = serde_json::to_string(&Scenario::generate(1, 1)).unwrap();
        let b = serde_json::to_string(&Scenario::generate(2, 1)).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn value_is_conserved_and_every_sender_could_pay() {
        for seed in 0..20 {
            for scale in [1, 5] {
                let s = Scenario::generate(seed, scale);
                s.check_conservation()
                    .unwrap_or_else(|e| panic!("seed {seed} scale {scale}: {e}"));
            }
        }
    }

    #[test]
    fn ground_truth_is_self_consistent() {
        for seed in 0..20 {
            let s = Scenario::generate(seed, 1);
            let t = &s.truth;
            // Every fake belongs to exactly one operator; real payees to none.
            for p in &s.payees {
                let owners = t
                    .operators
                    .iter()
                    .filter(|o| o.fakes.contains(&p.address))
                    .count();
                assert_eq!(owners, usize::from(p.fake), "seed {seed} {}", p.name);
            }
            assert!(t.operators.iter().all(|o| o.fakes.len() >= 2));
            // The consolidation wallets hold nothing but fake payees' salaries, so under FIFO
            // everything they paid the facilitator is the fakes' reach; haircut rounds down
            // once per payout and payment.
            let consolidation: BTreeSet<Address> =
                t.operators.iter().map(|o| o.consolidation).collect();
            let paid: u128 = s
                .txs
                .iter()
                .flat_map(|x| &x.moves)
                .filter(|m| consolidation.contains(&m.from) && m.to == t.sanctioned)
                .map(|m| m.amount)
                .sum();
            let units = |a: &Amount| u128::try_from(a.raw()).unwrap();
            let fifo: u128 = t
                .payees
                .iter()
                .filter(|p| p.fake)
                .map(|p| units(&p.fifo))
                .sum();
            let haircut: u128 = t
                .payees
                .iter()
                .filter(|p| p.fake)
                .map(|p| units(&p.haircut))
                .sum();
            assert_eq!(fifo, paid, "seed {seed}");
            assert!(
                haircut <= paid && paid - haircut <= 1_000,
                "seed {seed}: {haircut} of {paid}"
            );
            for p in t.payees.iter().filter(|p| p.fake) {
                assert!(!p.haircut.is_zero(), "seed {seed} {}", p.name);
            }
            // Every deposit address swept to its hot wallet, which is labelled exchange.
            for (d, h) in &t.deposits {
                assert!(
                    s.labels
                        .iter()
                        .any(|l| l.address == *h && l.category == "exchange")
                );
                assert!(
                    s.txs
                        .iter()
                        .flat_map(|x| &x.moves)
                        .any(|m| m.from == *d && m.to == *h)
                );
            }
            // One payout row per salary transaction, in a batch the importer can read.
            let rows = s.batch_csv("eval").lines().count() - 1;
            assert_eq!(rows, s.txs.iter().filter(|x| x.salary_of.is_some()).count());
            assert!(t.patterns.iter().any(|p| p.kind == "peel"));
        }
    }
}
