//! The `paytrace demo` scenario: a deterministic payroll story with its ground truth.
//!
//! A payroll provider pays twelve payees in a USDC-like token (6 decimals) once a month for six
//! months. Eight payees are ordinary people (one keeps the salary, others cash out through
//! their own exchange deposit addresses, pay rent, bridge, save). Four are fake identities run
//! by one operator: within two days each forwards its salary to the operator wallet (two of
//! them also pay into one shared exchange deposit address). The operator splits the pot: part
//! to a facilitator that is put on a sanctions list half-way through (labelled sanctioned with
//! a `valid_from` date), part into a swap contract (swapped for a second token), the rest down a
//! peeling chain of three wallets that peel into exchange deposit addresses; deposit addresses
//! sweep to the exchange's hot wallet. Noise wallets trade among themselves, with the exchange
//! and the swap.
//!
//! [`Scenario::generate`] gives the transfers ([`Step`]s, one transaction each, in time order),
//! the labels and the [`Truth`] the report must find. The binary writes the steps through the
//! store's write path (offline) or sends them to an anvil node and indexes them (`--rpc`).

mod btc_leg;

pub use btc_leg::{BTC_CHAIN, BitcoinLeg, BtcDestination, BtcParty};

use paytrace_indexer::{
    Address, Amount, Asset, BlockNumber, BlockRef, ChainId, Timestamp, Transfer, TransferKey,
    TransferKind, TxHash,
};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// 2025-01-01T00:00:00Z: the default start of the scenario.
pub const DEFAULT_BASE: u64 = 1_735_689_600;
/// Seconds per day.
const DAY: u64 = 86_400;
/// Months of payroll.
pub const MONTHS: u64 = 6;
/// The deployer of the tokens: anvil's first dev account (it holds the whole supply).
pub const DEPLOYER: [u8; 20] = [
    0xf3, 0x9f, 0xd6, 0xe5, 0x1a, 0xad, 0x88, 0xf6, 0xf4, 0xce, 0x6a, 0xb8, 0x82, 0x72, 0x79, 0xcf,
    0xff, 0xb9, 0x22, 0x66,
];

/// One of the scenario's tokens.
#[derive(Clone, Debug, Serialize)]
pub struct DemoToken {
    /// Name.
    pub name: String,
    /// Symbol.
    pub symbol: String,
    /// Decimals.
    pub decimals: u8,
    /// Contract address (the CREATE address of the deployer's nonce `index`).
    pub address: Address,
    /// Total supply (minted to the deployer).
    pub supply: Amount,
}

/// One transfer of the scenario (one transaction).
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// Block time.
    pub time: Timestamp,
    /// Sender.
    pub from: Address,
    /// Receiver.
    pub to: Address,
    /// Index into [`Scenario::tokens`].
    pub token: usize,
    /// Raw units.
    pub amount: Amount,
    /// What it is, for people.
    pub note: String,
}

/// A label of the scenario (imported through the label store as CSV).
#[derive(Clone, Debug, Serialize)]
pub struct DemoLabel {
    /// Address.
    pub address: Address,
    /// Category (taxonomy name).
    pub category: String,
    /// Entity.
    pub entity: String,
    /// First day the label holds, `YYYY-MM-DD`.
    pub valid_from: Option<String>,
}

/// A payee of the scenario.
#[derive(Clone, Debug, Serialize)]
pub struct DemoPayee {
    /// Name.
    pub name: String,
    /// Address.
    pub address: Address,
    /// A fake identity of the operator.
    pub fake: bool,
}

/// What the payout report must find.
#[derive(Clone, Debug, Serialize)]
pub struct Truth {
    /// Per payee.
    pub payees: Vec<TruthPayee>,
    /// Convergence findings (not exchange deposits): address → payee names. One per
    /// operator: the addresses downstream of it are its onward path, not findings.
    pub convergence: BTreeMap<Address, BTreeSet<String>>,
    /// The onward path of each convergence finding: the downstream addresses whose payees and
    /// value all came through it.
    pub onward: BTreeMap<Address, BTreeSet<Address>>,
    /// Exchange deposit addresses paid into directly by several payees: address → payee
    /// names (deposits downstream of a finding are in its onward path).
    pub shared_deposits: BTreeMap<Address, BTreeSet<String>>,
    /// Payees that address clustering (default parameters) puts in one cluster: the two fake
    /// payees who pay into the same exchange deposit address (one exchange account, one
    /// user, by the deposit-address heuristic).
    pub payee_clusters: BTreeSet<BTreeSet<String>>,
    /// The operator wallet.
    pub operator: Address,
    /// The sanctioned facilitator.
    pub sanctioned: Address,
    /// The day it was listed.
    pub sanctioned_from: String,
    /// Payouts made before the listing whose value reached it (`sanctioned_later`), then after
    /// (`sanctioned`): counts.
    pub sanctioned_payouts: BTreeMap<String, usize>,
    /// Value each downstream address received in the scenario (every unit of it came from
    /// the fake payees' salaries), raw units: the report's per-payout amounts there sum to
    /// this, within one unit per payout of haircut rounding.
    pub received: BTreeMap<Address, Amount>,
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
    /// Payouts.
    pub payouts: usize,
    /// Paid in total.
    pub paid: Amount,
    /// (address, kind, shortest hops) of every destination the report lists for the payee
    /// (kinds as in `PayoutDestination::kind`; the payee itself as `still_held`).
    pub destinations: BTreeSet<(Address, String, u32)>,
    /// Exact totals by kind, for destinations one hop away (and `still_held`).
    pub exact: BTreeMap<String, Amount>,
    /// Lowest acceptable verdict (fake payees: medium).
    pub min_risk: crate::risk::RiskLevel,
    /// Highest acceptable verdict (ordinary payees: low).
    pub max_risk: crate::risk::RiskLevel,
}

/// The whole scenario.
#[derive(Clone, Debug, Serialize)]
pub struct Scenario {
    /// Start time.
    pub base: Timestamp,
    /// Tokens: `[0]` the USDC-like payroll token, `[1]` the token the swap pays out.
    pub tokens: Vec<DemoToken>,
    /// Token deployer (holds the supply, funds everyone).
    pub deployer: Address,
    /// Provider name.
    pub provider_name: String,
    /// Provider hot wallet.
    pub provider: Address,
    /// Payees.
    pub payees: Vec<DemoPayee>,
    /// Transfers, strictly increasing in time.
    pub steps: Vec<Step>,
    /// Labels.
    pub labels: Vec<DemoLabel>,
    /// Ground truth.
    pub truth: Truth,
    /// The Bitcoin leg: the operator's proceeds withdrawn from the exchange in BTC and peeled
    /// (with its own ground truth).
    pub bitcoin: BitcoinLeg,
}

/// A named demo address: `keccak256("paytrace demo " + name)[12..]`.
pub fn demo_address(name: &str) -> Address {
    let h = alloy_primitives::keccak256(format!("paytrace demo {name}").as_bytes());
    let mut b = [0u8; 20];
    b.copy_from_slice(&h[12..]);
    Address::Evm(b)
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// `units` whole tokens plus `cents` hundredths, in raw units of a 6-decimal token.
const fn usdc(units: u64, cents: u64) -> u64 {
    units * 1_000_000 + cents * 10_000
}

fn day_string(t: u64) -> String {
    i64::try_from(t)
        .ok()
        .and_then(paytrace_indexer::labels::date_of_unix)
        .map(|d| d.to_string())
        .unwrap_or_default()
}

/// Plan builder: steps with nominal times, and balances to keep the plan spendable.
struct Plan {
    steps: Vec<(u64, usize, Step)>,
    balance: BTreeMap<(Address, usize), u64>,
}

impl Plan {
    fn send(
        &mut self,
        time: u64,
        from: Address,
        to: Address,
        token: usize,
        amount: u64,
        note: &str,
    ) {
        if amount == 0 {
            return;
        }
        let seq = self.steps.len();
        let b = self.balance.entry((from, token)).or_default();
        *b = b.saturating_sub(amount);
        *self.balance.entry((to, token)).or_default() += amount;
        self.steps.push((
            time,
            seq,
            Step {
                time: Timestamp(time),
                from,
                to,
                token,
                amount: Amount::from_u64(amount),
                note: note.to_owned(),
            },
        ));
    }
    fn bal(&self, a: Address, token: usize) -> u64 {
        self.balance.get(&(a, token)).copied().unwrap_or(0)
    }
}

fn pct(amount: u64, p: u64) -> u64 {
    amount / 100 * p + amount % 100 * p / 100
}

impl Scenario {
    /// The scenario starting at `base` (unix seconds; [`DEFAULT_BASE`] offline).
    pub fn generate(base: u64) -> Self {
        let deployer = Address::Evm(DEPLOYER);
        let dep = alloy_primitives::Address::from(DEPLOYER);
        let tokens = vec![
            DemoToken {
                name: "Demo USD Coin".into(),
                symbol: "USDC".into(),
                decimals: 6,
                address: Address::evm(dep.create(0)),
                supply: Amount::from_u64(usdc(10_000_000, 0)),
            },
            DemoToken {
                name: "Demo Wrapped Ether".into(),
                symbol: "WETH".into(),
                decimals: 18,
                address: Address::evm(dep.create(1)),
                supply: Amount::from_raw(
                    alloy_primitives::U256::from(10_000u64)
                        * alloy_primitives::U256::from(1_000_000_000_000_000_000u64),
                ),
            },
        ];
        let a = demo_address;
        let provider = a("provider");
        let names = [
            ("Alice Martin", false),
            ("Bob Chen", false),
            ("Carol Diaz", false),
            ("Dave Evans", false),
            ("Erin Fischer", false),
            ("Frank Garcia", false),
            ("Grace Hill", false),
            ("Heidi Ito", false),
            ("Kai Morgan", true),
            ("Leo Brandt", true),
            ("Max Rivera", true),
            ("Nia Okafor", true),
        ];
        let payees: Vec<DemoPayee> = names
            .iter()
            .map(|(n, f)| DemoPayee {
                name: (*n).to_owned(),
                address: a(&format!("payee {n}")),
                fake: *f,
            })
            .collect();
        let salaries = [
            usdc(4_200, 0),
            usdc(5_100, 50),
            usdc(3_900, 0),
            usdc(4_750, 25),
            usdc(6_000, 0),
            usdc(5_500, 0),
            usdc(4_400, 0),
            usdc(3_800, 75),
            usdc(5_178, 15),
            usdc(5_020, 40),
            usdc(4_980, 60),
            usdc(5_240, 0),
        ];
        let hot = a("exchange hot wallet");
        let dep_of = |who: &str| a(&format!("exchange deposit {who}"));
        let d_bob = dep_of("bob");
        let d_carol = dep_of("carol");
        let d_heidi = dep_of("heidi");
        let d_shared = dep_of("shared");
        let d_f4 = dep_of("nia");
        let d_op = [dep_of("op1"), dep_of("op2"), dep_of("op3")];
        let d_noise = dep_of("noise");
        let bob_savings = a("bob savings");
        let landlord = a("landlord");
        let bridge = a("bridge");
        let erin_l2 = a("erin l2");
        let frank_cold = a("frank cold");
        let operator = a("operator");
        let facilitator = a("facilitator");
        let swap = a("swap router");
        let peel = [a("peel 1"), a("peel 2"), a("peel 3")];
        let noise: Vec<Address> = (0..10).map(|i| a(&format!("noise {i}"))).collect();
        let listed_at = base + 3 * 30 * DAY;
        let labels = vec![
            DemoLabel {
                address: provider,
                category: "payroll_provider".into(),
                entity: "Acme Payroll".into(),
                valid_from: None,
            },
            DemoLabel {
                address: hot,
                category: "exchange".into(),
                entity: "ExampleX Exchange".into(),
                valid_from: None,
            },
            DemoLabel {
                address: bridge,
                category: "bridge".into(),
                entity: "DemoBridge".into(),
                valid_from: None,
            },
            DemoLabel {
                address: swap,
                category: "defi".into(),
                entity: "DemoSwap router".into(),
                valid_from: None,
            },
            DemoLabel {
                address: facilitator,
                category: "sanctioned".into(),
                entity: "Tetra Facilitation (demo SDN)".into(),
                valid_from: Some(day_string(listed_at)),
            },
        ]
        .into_iter()
        .chain(
            [
                d_bob, d_carol, d_heidi, d_shared, d_f4, d_op[0], d_op[1], d_op[2], d_noise,
            ]
            .into_iter()
            .map(|d| DemoLabel {
                address: d,
                category: "exchange_deposit".into(),
                entity: "ExampleX Exchange".into(),
                valid_from: None,
            }),
        )
        .collect();

        let mut plan = Plan {
            steps: Vec::new(),
            balance: BTreeMap::new(),
        };
        plan.balance.insert((deployer, 0), usdc(10_000_000, 0));
        plan.balance.insert((deployer, 1), u64::MAX);
        let weth = |x: u64| x * 10_000_000_000_000_000; // hundredths of a token (1e16)
        let mut truth_payees: Vec<TruthPayee> = payees
            .iter()
            .map(|p| TruthPayee {
                name: p.name.clone(),
                address: p.address,
                fake: p.fake,
                payouts: 0,
                paid: Amount::ZERO,
                destinations: BTreeSet::new(),
                exact: BTreeMap::new(),
                min_risk: crate::risk::RiskLevel::None,
                max_risk: crate::risk::RiskLevel::Severe,
            })
            .collect();
        let exact = |t: &mut Vec<TruthPayee>, i: usize, kind: &str, v: u64| {
            let e = t[i].exact.entry(kind.to_owned()).or_default();
            *e = e.checked_add(Amount::from_u64(v)).unwrap_or(*e);
        };
        // Funding, the day before the first payday.
        let f = base - DAY;
        let payroll_total: u64 = (0..MONTHS)
            .map(|m| salaries.iter().map(|s| s + m * 1_000).sum::<u64>())
            .sum();
        plan.send(
            f,
            deployer,
            provider,
            0,
            payroll_total + usdc(1_000, 0),
            "fund provider",
        );
        for (i, n) in noise.iter().enumerate() {
            plan.send(
                f + 60 * (i as u64 + 1),
                deployer,
                *n,
                0,
                usdc(10_000, 0),
                "fund noise",
            );
        }
        plan.send(
            f + 3_600,
            deployer,
            swap,
            1,
            weth(1_500),
            "fund swap liquidity",
        );
        plan.send(
            f + 3_700,
            deployer,
            hot,
            0,
            usdc(50_000, 0),
            "fund exchange",
        );
        let mut rng = Rng(7);
        let mut sanctioned_payouts: BTreeMap<String, usize> = BTreeMap::new();
        let mut received: BTreeMap<Address, u64> = BTreeMap::new();
        for m in 0..MONTHS {
            let payday = base + m * 30 * DAY + 9 * 3_600;
            for (k, p) in payees.iter().enumerate() {
                let amount = salaries[k] + m * 1_000;
                plan.send(
                    payday + 120 * k as u64,
                    provider,
                    p.address,
                    0,
                    amount,
                    "salary",
                );
                let tp = &mut truth_payees[k];
                tp.payouts += 1;
                tp.paid = tp
                    .paid
                    .checked_add(Amount::from_u64(amount))
                    .unwrap_or(tp.paid);
                let t1 = payday + 3_600 + 60 * k as u64;
                let t_day = payday + DAY + 60 * k as u64;
                match k {
                    0 | 6 => exact(&mut truth_payees, k, "still_held", amount),
                    1 => {
                        let x = pct(amount, 80);
                        plan.send(t1, p.address, d_bob, 0, x, "cash out");
                        plan.send(t1 + 30, p.address, bob_savings, 0, amount - x, "savings");
                        exact(&mut truth_payees, k, "exchange_deposit", x);
                        exact(&mut truth_payees, k, "unattributed", amount - x);
                    }
                    2 => {
                        plan.send(t1, p.address, d_carol, 0, amount, "cash out");
                        exact(&mut truth_payees, k, "exchange_deposit", amount);
                    }
                    3 => {
                        plan.send(t_day, p.address, landlord, 0, amount, "rent");
                        exact(&mut truth_payees, k, "unattributed", amount);
                    }
                    4 => {
                        let x = pct(amount, 50);
                        plan.send(t_day, p.address, bridge, 0, x, "bridge");
                        plan.send(t_day + 30, p.address, erin_l2, 0, amount - x, "own wallet");
                        exact(&mut truth_payees, k, "bridge", x);
                        exact(&mut truth_payees, k, "unattributed", amount - x);
                    }
                    5 => {
                        let x = pct(amount, 30);
                        plan.send(t_day, p.address, hot, 0, x, "direct exchange deposit");
                        plan.send(
                            t_day + 30,
                            p.address,
                            frank_cold,
                            0,
                            amount - x,
                            "cold storage",
                        );
                        exact(&mut truth_payees, k, "exchange", x);
                        exact(&mut truth_payees, k, "unattributed", amount - x);
                    }
                    7 => {
                        plan.send(t1, p.address, d_heidi, 0, amount, "cash out");
                        exact(&mut truth_payees, k, "exchange_deposit", amount);
                    }
                    _ => {
                        // Fake identities: forward to the operator within two days.
                        let (share, side) = match k {
                            8 | 9 => (95, Some(d_shared)),
                            10 => (100, None),
                            _ => (90, Some(d_f4)),
                        };
                        let t = payday + DAY + (k as u64 - 8) * 7_200;
                        let x = pct(amount, share);
                        plan.send(t, p.address, operator, 0, x, "forward to operator");
                        *received.entry(operator).or_default() += x;
                        if let Some(d) = side {
                            plan.send(t + 60, p.address, d, 0, amount - x, "cash out");
                            exact(&mut truth_payees, k, "exchange_deposit", amount - x);
                        }
                        let kind = if payday + DAY * 4 >= listed_at {
                            "sanctioned"
                        } else {
                            "sanctioned_later"
                        };
                        *sanctioned_payouts.entry(kind.to_owned()).or_default() += 1;
                    }
                }
            }
            // The operator splits the month's pot on day 4.
            let t = payday + 4 * DAY;
            let pot = plan.bal(operator, 0);
            let s = pct(pot, 10);
            let w = pct(pot, 20);
            plan.send(t, operator, facilitator, 0, s, "to facilitator");
            plan.send(t + 60, operator, swap, 0, w, "swap");
            plan.send(t + 120, swap, operator, 1, weth(150 + m), "swap output");
            plan.send(t + 180, operator, peel[0], 0, pot - s - w, "peel chain");
            *received.entry(facilitator).or_default() += s;
            *received.entry(swap).or_default() += w;
            *received.entry(peel[0]).or_default() += pot - s - w;
            for i in 0..3 {
                let tt = payday + (5 + i as u64) * DAY;
                let b = plan.bal(peel[i], 0);
                let x = if i == 2 { b } else { pct(b, 15) };
                plan.send(tt, peel[i], d_op[i], 0, x, "peel to deposit");
                *received.entry(d_op[i]).or_default() += x;
                if i < 2 {
                    plan.send(tt + 60, peel[i], peel[i + 1], 0, b - x, "peel chain");
                    *received.entry(peel[i + 1]).or_default() += b - x;
                }
            }
            // Deposit addresses sweep to the hot wallet on day 10.
            let sweep = payday + 10 * DAY;
            for (i, d) in [
                d_bob, d_carol, d_heidi, d_shared, d_f4, d_op[0], d_op[1], d_op[2], d_noise,
            ]
            .into_iter()
            .enumerate()
            {
                let b = plan.bal(d, 0);
                plan.send(sweep + 60 * i as u64, d, hot, 0, b, "sweep");
            }
            // Noise: trades among noise wallets, with the exchange and the swap.
            for j in 0..20u64 {
                let t = payday + (rng.next() % (25 * DAY)) + j;
                let from = noise[usize::try_from(rng.next() % 10).unwrap_or(0)];
                let to = noise[usize::try_from(rng.next() % 10).unwrap_or(0)];
                let amt = usdc(1 + rng.next() % 300, rng.next() % 100);
                if from != to && plan.bal(from, 0) > amt {
                    plan.send(t, from, to, 0, amt, "noise");
                }
            }
            plan.send(
                payday + 12 * DAY,
                noise[0],
                d_noise,
                0,
                usdc(700, 0),
                "noise cash out",
            );
            plan.send(
                payday + 13 * DAY,
                hot,
                noise[2],
                0,
                usdc(650, 0),
                "exchange withdrawal",
            );
            plan.send(
                payday + 14 * DAY,
                noise[3],
                swap,
                0,
                usdc(300, 0),
                "noise swap",
            );
            plan.send(
                payday + 14 * DAY + 60,
                swap,
                noise[3],
                1,
                weth(9),
                "noise swap output",
            );
        }
        // Time order, then strictly increasing times (one block per step).
        let mut steps = std::mem::take(&mut plan.steps);
        steps.sort_by_key(|(t, seq, _)| (*t, *seq));
        let mut last = 0u64;
        let steps: Vec<Step> = steps
            .into_iter()
            .map(|(t, _, mut s)| {
                let t = t.max(last + 1);
                last = t;
                s.time = Timestamp(t);
                s
            })
            .collect();

        // Ground truth destinations.
        let fakes: BTreeSet<String> = payees
            .iter()
            .filter(|p| p.fake)
            .map(|p| p.name.clone())
            .collect();
        for (k, tp) in truth_payees.iter_mut().enumerate() {
            let d = &mut tp.destinations;
            let mut add = |a: Address, kind: &str, h: u32| {
                d.insert((a, kind.to_owned(), h));
            };
            match k {
                0 | 6 => add(tp.address, "still_held", 0),
                1 => {
                    add(d_bob, "exchange_deposit", 1);
                    add(bob_savings, "unattributed", 1);
                }
                2 => add(d_carol, "exchange_deposit", 1),
                3 => add(landlord, "unattributed", 1),
                4 => {
                    add(bridge, "bridge", 1);
                    add(erin_l2, "unattributed", 1);
                }
                5 => {
                    add(hot, "exchange", 1);
                    add(frank_cold, "unattributed", 1);
                }
                7 => add(d_heidi, "exchange_deposit", 1),
                _ => {
                    match k {
                        8 | 9 => add(d_shared, "exchange_deposit", 1),
                        11 => add(d_f4, "exchange_deposit", 1),
                        _ => {}
                    }
                    add(facilitator, "sanctioned", 2);
                    add(facilitator, "sanctioned_later", 2);
                    add(swap, "labelled", 2);
                    add(d_op[0], "exchange_deposit", 3);
                    add(d_op[1], "exchange_deposit", 4);
                    add(d_op[2], "exchange_deposit", 5);
                }
            }
            use crate::risk::RiskLevel;
            (tp.min_risk, tp.max_risk) = if tp.fake {
                (RiskLevel::Medium, RiskLevel::Severe)
            } else {
                (RiskLevel::None, RiskLevel::Low)
            };
        }
        let mut convergence = BTreeMap::new();
        convergence.insert(operator, fakes.clone());
        let mut onward = BTreeMap::new();
        onward.insert(
            operator,
            [
                peel[0],
                peel[1],
                peel[2],
                facilitator,
                d_op[0],
                d_op[1],
                d_op[2],
            ]
            .into_iter()
            .collect(),
        );
        let mut shared_deposits = BTreeMap::new();
        shared_deposits.insert(
            d_shared,
            [names[8].0, names[9].0]
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        );
        let payee_clusters = [[names[8].0, names[9].0]
            .iter()
            .map(|s| (*s).to_owned())
            .collect()]
        .into_iter()
        .collect();
        let truth = Truth {
            payees: truth_payees,
            convergence,
            onward,
            shared_deposits,
            payee_clusters,
            operator,
            sanctioned: facilitator,
            sanctioned_from: day_string(listed_at),
            sanctioned_payouts,
            received: received
                .into_iter()
                .map(|(k, v)| (k, Amount::from_u64(v)))
                .collect(),
        };
        // The operator buys BTC at the exchange after its fifth month's deposits and withdraws
        // it (before the scenario's last day, after the facilitator's listing).
        let bitcoin = BitcoinLeg::generate(base, base + 158 * DAY, &day_string(listed_at));
        Self {
            base: Timestamp(base),
            tokens,
            deployer,
            provider_name: "Acme Payroll".into(),
            provider,
            payees,
            steps,
            labels,
            truth,
            bitcoin,
        }
    }

    /// The token `i` as an asset.
    pub fn asset(&self, i: usize) -> Asset {
        self.tokens
            .get(i)
            .map_or(Asset::Native, |t| Asset::Token(t.address))
    }

    /// The transfers as the indexer would store them, offline: block 1 and 2 mint the tokens
    /// to the deployer (the deployments), then one block per step. Returns the blocks and the
    /// transfers. Hashes are synthetic (`keccak256` of the block number).
    pub fn blocks(&self, chain: ChainId) -> (Vec<BlockRef>, Vec<Transfer>) {
        let start = self.steps.first().map_or(self.base.0, |s| s.time.0);
        let hash = |n: u64| alloy_primitives::keccak256(format!("demo block {n}").as_bytes());
        let txh = |n: u64| {
            TxHash(alloy_primitives::keccak256(
                format!("demo tx {n}").as_bytes(),
            ))
        };
        let mut blocks = Vec::new();
        let mut transfers = Vec::new();
        let mut push = |n: u64, time: u64, from: Address, to: Address, token: Asset, amount| {
            blocks.push(BlockRef {
                number: BlockNumber(n),
                hash: hash(n),
                parent: hash(n - 1),
                time: Timestamp(time),
            });
            transfers.push(Transfer {
                key: TransferKey {
                    chain,
                    block: BlockNumber(n),
                    tx_index: 0,
                    kind: TransferKind::Token,
                    position: 0,
                },
                time: Timestamp(time),
                tx_hash: txh(n),
                from,
                to,
                asset: token,
                amount,
                trace_address: Vec::new(),
            });
        };
        for (i, t) in self.tokens.iter().enumerate() {
            let n = i as u64 + 1;
            push(
                n,
                start - 3_600 + n,
                Address::ZERO_EVM,
                self.deployer,
                Asset::Token(t.address),
                t.supply,
            );
        }
        let first = self.tokens.len() as u64 + 1;
        for (i, s) in self.steps.iter().enumerate() {
            push(
                first + i as u64,
                s.time.0,
                s.from,
                s.to,
                self.asset(s.token),
                s.amount,
            );
        }
        (blocks, transfers)
    }

    /// The labels as a CSV for the label importer (`address,category,entity,valid_from`).
    pub fn labels_csv(&self) -> String {
        let mut s = String::from("address,category,entity,valid_from\n");
        for l in &self.labels {
            s.push_str(&format!(
                "{},{},{},{}\n",
                l.address,
                l.category,
                l.entity,
                l.valid_from.as_deref().unwrap_or("")
            ));
        }
        for row in self.bitcoin.label_rows() {
            s.push_str(&row);
            s.push('\n');
        }
        s
    }

    /// The labelled parties of the Bitcoin leg: (address, category, entity, valid from).
    fn bitcoin_labels(&self) -> impl Iterator<Item = (Address, &str, &str, Option<&str>)> {
        self.bitcoin.parties.iter().filter_map(|p| {
            let (c, e, v) = p.label.as_ref()?;
            Some((p.id, c.as_str(), e.as_str(), v.as_deref()))
        })
    }

    /// The payroll batch of the scenario as the finance team would export it
    /// (`payee,address,chain,asset,amount,tx_hash,date`; no hashes).
    pub fn batch_csv(&self, chain: &str) -> String {
        let mut s = String::from("payee,address,chain,asset,amount,tx_hash,date\n");
        for st in self
            .steps
            .iter()
            .filter(|s| s.from == self.provider && s.note == "salary")
        {
            let name = self
                .payees
                .iter()
                .find(|p| p.address == st.to)
                .map_or_else(|| st.to.to_string(), |p| p.name.clone());
            s.push_str(&format!(
                "{name},{},{chain},USDC,{},,{}\n",
                st.to,
                st.amount.to_decimal_string(6),
                day_string(st.time.0)
            ));
        }
        s
    }

    /// The time of the last step.
    pub fn end(&self) -> Timestamp {
        self.steps.last().map_or(self.base, |s| s.time)
    }
}

impl Scenario {
    /// The labels in memory (tests; the binary imports [`Scenario::labels_csv`] into the label
    /// store instead).
    pub fn memory_labels(&self) -> crate::MemoryLabels {
        let mut m = crate::MemoryLabels::new();
        for l in &self.labels {
            m.insert_named(
                l.address,
                &l.category,
                vec![format!("{} ({}, demo)", l.entity, l.category)],
            );
        }
        for (a, c, e, _) in self.bitcoin_labels() {
            m.insert_named(a, c, vec![format!("{e} ({c}, demo)")]);
        }
        m.set_version("demo");
        m
    }

    /// The sanctions listings with their start (midnight UTC of `valid_from`).
    pub fn memory_listings(&self) -> crate::report::MemoryListings {
        let mut m = crate::report::MemoryListings::default();
        let start = |v: Option<&str>| {
            v.and_then(paytrace_indexer::labels::parse_date)
                .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
                .and_then(|z| u64::try_from(z.timestamp().as_second()).ok())
                .unwrap_or(0)
        };
        for l in self.labels.iter().filter(|l| l.category == "sanctioned") {
            let from = start(l.valid_from.as_deref());
            m.0.insert(l.address, (l.entity.clone(), Timestamp(from)));
        }
        for (a, _, e, v) in self.bitcoin_labels().filter(|l| l.1 == "sanctioned") {
            m.0.insert(a, (e.to_owned(), Timestamp(start(v))));
        }
        m
    }

    /// The labels with their validity, for screening in memory (tests; the binary screens with
    /// the label store the CSV was imported into).
    pub fn memory_label_history(&self) -> crate::risk::MemoryLabelHistory {
        let mut m = crate::risk::MemoryLabelHistory::new();
        for l in &self.labels {
            let from = l
                .valid_from
                .as_deref()
                .and_then(paytrace_indexer::labels::parse_date);
            m.insert(l.address, &l.category, from, None);
        }
        for (a, c, _, v) in self.bitcoin_labels() {
            m.insert(a, c, v.and_then(paytrace_indexer::labels::parse_date), None);
        }
        m
    }

    /// The asset book of the scenario's tokens.
    pub fn asset_book(&self) -> crate::report::AssetBook {
        let mut b = crate::report::AssetBook::new();
        for t in &self.tokens {
            b.insert(Asset::Token(t.address), &t.symbol, t.decimals);
        }
        b
    }
}

/// Compares screenings of the payees and of the operator wallet (as of the scenario's end, with
/// the scenario's labels) with the ground truth; returns the differences. Expected: every fake
/// payee has indirect exposure sent to the sanctioned facilitator and is at least `medium`; no
/// ordinary payee has any exposure to a category of severity 70 or more (sanctioned, mixer,
/// ransomware, ...) or is above `low`; the operator sent to the facilitator directly and is
/// `severe`.
pub fn check_screening(
    results: &[(String, crate::risk::ScreenResult)],
    truth: &Truth,
) -> Vec<String> {
    use crate::risk::{ExposureKind, Flow, RiskLevel, Scoring};
    let scoring = Scoring::default();
    let find = |a: &Address| results.iter().find(|(_, r)| r.address == *a);
    let reaches = |r: &crate::risk::ScreenResult, kind: ExposureKind| {
        r.direct.iter().chain(&r.indirect).any(|e| {
            e.kind == kind
                && e.direction == Flow::Sent
                && e.category.as_str() == "sanctioned"
                && e.counterparties.contains(&truth.sanctioned)
        })
    };
    let mut diffs = Vec::new();
    for tp in &truth.payees {
        let Some((_, r)) = find(&tp.address) else {
            diffs.push(format!("{}: not screened", tp.name));
            continue;
        };
        if tp.fake {
            if !reaches(r, ExposureKind::Indirect) {
                diffs.push(format!(
                    "{}: no indirect exposure to the sanctioned facilitator {}",
                    tp.name, truth.sanctioned
                ));
            }
            if r.level < RiskLevel::Medium {
                diffs.push(format!(
                    "{}: screened {}, expected medium or above",
                    tp.name, r.level
                ));
            }
        } else {
            let severe: Vec<_> = r
                .direct
                .iter()
                .chain(&r.indirect)
                .filter(|e| scoring.severity(&e.category) >= 70)
                .map(|e| e.category.to_string())
                .collect();
            if !severe.is_empty() {
                diffs.push(format!("{}: unexpected exposure to {severe:?}", tp.name));
            }
            if r.level > RiskLevel::Low {
                diffs.push(format!(
                    "{}: screened {}, expected low or none",
                    tp.name, r.level
                ));
            }
        }
    }
    match find(&truth.operator) {
        None => diffs.push(format!("operator {} not screened", truth.operator)),
        Some((_, r)) => {
            if !reaches(r, ExposureKind::Direct) || r.level != RiskLevel::Severe {
                diffs.push(format!(
                    "operator {}: screened {}, expected severe with direct exposure to {}",
                    truth.operator, r.level, truth.sanctioned
                ));
            }
        }
    }
    diffs
}

/// Compares the report's "payees in one cluster" findings with the ground truth (for a report
/// made after clustering the scenario's store); returns the differences.
pub fn check_clusters(report: &crate::report::Report, truth: &Truth) -> Vec<String> {
    let found: BTreeSet<BTreeSet<String>> = report
        .payee_clusters
        .iter()
        .map(|c| c.payees.iter().map(|p| p.payee.clone()).collect())
        .collect();
    if found == truth.payee_clusters {
        Vec::new()
    } else {
        vec![format!(
            "payee clusters {found:?}, expected {:?}",
            truth.payee_clusters
        )]
    }
}

/// Compares a payout report of the scenario with its ground truth (all but the clusters, see
/// [`check_clusters`]); returns the differences (empty when the report found exactly what the
/// scenario planted).
pub fn check(report: &crate::report::Report, truth: &Truth) -> Vec<String> {
    use crate::report::DestKind;
    let mut diffs = Vec::new();
    for tp in &truth.payees {
        let Some(ps) = report.payees.iter().find(|p| p.address == tp.address) else {
            diffs.push(format!("payee {} ({}) missing", tp.name, tp.address));
            continue;
        };
        let payouts: Vec<_> = report
            .payouts
            .iter()
            .filter(|p| p.address == tp.address)
            .collect();
        if payouts.len() != tp.payouts {
            diffs.push(format!(
                "{}: {} payouts, expected {}",
                tp.name,
                payouts.len(),
                tp.payouts
            ));
        }
        let paid: Amount = ps.paid.values().copied().next().unwrap_or_default();
        if paid != tp.paid {
            diffs.push(format!("{}: paid {paid}, expected {}", tp.name, tp.paid));
        }
        let mut dests = BTreeSet::new();
        let mut exact: BTreeMap<String, Amount> = BTreeMap::new();
        for p in &payouts {
            for d in &p.destinations {
                dests.insert((d.address, d.kind.as_str().to_owned(), d.hops));
                if d.hops <= 1 {
                    let e = exact.entry(d.kind.as_str().to_owned()).or_default();
                    *e = e.checked_add(d.amount).unwrap_or(*e);
                }
            }
        }
        if dests != tp.destinations {
            let missing: Vec<_> = tp.destinations.difference(&dests).collect();
            let extra: Vec<_> = dests.difference(&tp.destinations).collect();
            diffs.push(format!(
                "{}: destinations differ; missing {missing:?}, unexpected {extra:?}",
                tp.name
            ));
        }
        if exact != tp.exact {
            diffs.push(format!(
                "{}: one-hop totals {exact:?}, expected {:?}",
                tp.name, tp.exact
            ));
        }
        if ps.risk.level < tp.min_risk || ps.risk.level > tp.max_risk {
            diffs.push(format!(
                "{}: risk {}, expected {} to {}",
                tp.name, ps.risk.level, tp.min_risk, tp.max_risk
            ));
        }
    }
    if report.payees.len() != truth.payees.len() {
        diffs.push(format!(
            "{} payees in the report, expected {}",
            report.payees.len(),
            truth.payees.len()
        ));
    }
    let as_map = |v: &[crate::report::Finding]| -> BTreeMap<Address, BTreeSet<String>> {
        v.iter()
            .filter_map(|f| {
                f.address
                    .map(|a| (a, f.payees.iter().map(|p| p.payee.clone()).collect()))
            })
            .collect()
    };
    let conv = as_map(&report.convergence);
    if conv != truth.convergence {
        diffs.push(format!(
            "convergence points {conv:?}, expected {:?}",
            truth.convergence
        ));
    }
    let onward: BTreeMap<Address, BTreeSet<Address>> = report
        .convergence
        .iter()
        .filter_map(|f| {
            f.address.map(|a| {
                (
                    a,
                    f.onward
                        .iter()
                        .flat_map(|o| o.addresses.iter().copied())
                        .collect(),
                )
            })
        })
        .collect();
    if onward != truth.onward {
        diffs.push(format!(
            "onward paths {onward:?}, expected {:?}",
            truth.onward
        ));
    }
    let shared = as_map(&report.shared_deposits);
    if shared != truth.shared_deposits {
        diffs.push(format!(
            "shared deposits {shared:?}, expected {:?}",
            truth.shared_deposits
        ));
    }
    // As-of sanctions: payouts whose value reached the facilitator before / after listing.
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for p in &report.payouts {
        for d in p
            .destinations
            .iter()
            .filter(|d| d.address == truth.sanctioned)
        {
            if matches!(d.kind, DestKind::Sanctioned | DestKind::SanctionedLater) {
                *counts.entry(d.kind.as_str().to_owned()).or_default() += 1;
            }
        }
    }
    if counts != truth.sanctioned_payouts {
        diffs.push(format!(
            "payouts reaching the sanctioned facilitator {counts:?}, expected {:?}",
            truth.sanctioned_payouts
        ));
    }
    // Amounts downstream of the operator: per-payout haircut shares sum to what the address
    // received, less at most one unit of rounding per payout.
    let n = u64::try_from(report.payouts.len()).unwrap_or(u64::MAX);
    for (addr, want) in &truth.received {
        let listed: Vec<_> = report
            .payouts
            .iter()
            .flat_map(|p| p.destinations.iter().filter(|d| d.address == *addr))
            .collect();
        if listed.is_empty() {
            continue; // pass-through wallets hold nothing and are not destinations
        }
        let got = listed
            .iter()
            .try_fold(Amount::ZERO, |acc, d| acc.checked_add(d.reached))
            .unwrap_or_default();
        // Floors of partial debits leave their remainders with the sender, and a debit of
        // the whole balance passes them on: off by at most one unit per payout either way.
        let low = want.saturating_sub(Amount::from_u64(n));
        let high = want.checked_add(Amount::from_u64(n)).unwrap_or(*want);
        if got > high || got < low {
            diffs.push(format!(
                "{addr}: payouts' value reaching it {got}, expected {want} (within rounding)"
            ));
        }
    }
    diffs
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{
        MemoryGraph, Model,
        report::{NoClusters, ReportParams, build_report, discover_payouts},
    };

    fn run(model: Model) -> (Scenario, crate::report::Report) {
        let s = Scenario::generate(DEFAULT_BASE);
        let (_, transfers) = s.blocks(ChainId(0));
        let g = MemoryGraph::from_transfers(transfers);
        let labels = s.memory_labels();
        let payouts = discover_payouts(
            &g,
            &[s.provider],
            Some(&[s.asset(0)]),
            None,
            None,
            None,
            &s.payees
                .iter()
                .map(|p| (p.address, p.name.clone()))
                .collect(),
        )
        .unwrap();
        let mut params = ReportParams::default();
        params.trace.model = model;
        let r = build_report(
            &g,
            &labels,
            &s.memory_listings(),
            &NoClusters,
            "demo",
            &[s.provider],
            &payouts,
            Vec::new(),
            s.asset_book(),
            &params,
        )
        .unwrap();
        (s, r)
    }

    #[test]
    fn scenario_is_deterministic_and_spendable() {
        let a = Scenario::generate(DEFAULT_BASE);
        let b = Scenario::generate(DEFAULT_BASE);
        assert_eq!(a.steps.len(), b.steps.len());
        assert!(a.steps.windows(2).all(|w| w[0].time < w[1].time));
        // Every sender can pay: replay balances from the deployer's supply.
        let mut bal: BTreeMap<(Address, usize), Amount> = BTreeMap::new();
        for (i, t) in a.tokens.iter().enumerate() {
            bal.insert((a.deployer, i), t.supply);
        }
        for s in &a.steps {
            let f = bal.entry((s.from, s.token)).or_default();
            *f = f
                .checked_sub(s.amount)
                .unwrap_or_else(|_| panic!("overdraft: {s:?}"));
            let t = bal.entry((s.to, s.token)).or_default();
            *t = t.checked_add(s.amount).unwrap();
        }
    }

    #[test]
    fn screening_matches_ground_truth() {
        let s = Scenario::generate(DEFAULT_BASE);
        let (_, transfers) = s.blocks(ChainId(0));
        let g = MemoryGraph::from_transfers(transfers);
        let history = s.memory_label_history();
        let as_of =
            paytrace_indexer::labels::date_of_unix(i64::try_from(s.end().0).unwrap()).unwrap();
        let p = crate::risk::ScreenParams::new(as_of);
        let results: Vec<_> = s
            .payees
            .iter()
            .map(|x| (x.name.clone(), x.address))
            .chain([("operator".to_owned(), s.truth.operator)])
            .map(|(n, a)| (n, crate::risk::screen(&g, &history, &a, &p).unwrap()))
            .collect();
        let diffs = check_screening(&results, &s.truth);
        assert!(diffs.is_empty(), "{diffs:#?}");
    }

    #[test]
    fn report_matches_ground_truth() {
        let (s, r) = run(Model::Haircut);
        let diffs = check(&r, &s.truth);
        assert!(diffs.is_empty(), "{diffs:#?}");
        assert_eq!(r.payouts.len(), 72);
    }
}
