//! The `holdout-like` scenario family: a second, independently structured payroll scenario,
//! written from the description of the scenario the findings are graded on (two payroll
//! providers, two stablecoins, four months, twelve payees of which some are fake identities of
//! one operator) rather than from the `payroll` family's code paths.
//!
//! What differs from the `payroll` family (so that rules tuned on one are tested on the other):
//!
//! * the two stablecoins have **different decimals** (6 and 18), and the two providers pay on
//!   **different paydays** (the 1st and the 15th of each 30-day month);
//! * a fake payee's salary takes one to four transfers to its operator, through its own wallet,
//!   a **fresh wallet per month**, a swap through the DEX router (into the other stablecoin or
//!   the native coin) or a **forwarder contract** (one transaction: value in, the contract's
//!   internal or token transfer out);
//! * the operator's consolidation may be **two wallets of one cluster**: both pay part of their
//!   take into one exchange deposit address of the operator, so clustering's deposit heuristic
//!   joins them (each wallet alone receives only some of the fakes' salaries);
//! * each consolidation wallet pays the sanctioned facilitator a share of what it holds and
//!   peels the rest through fresh addresses into exchange deposit addresses;
//! * the **airdrop** is one batched transaction to two fake payees, two real payees and many
//!   unrelated wallets; the fakes forward their airdrop to a consolidation wallet, the real
//!   payees and many unrelated recipients sell theirs at the DEX router;
//! * a real payee buys from a merchant whose much larger business later (in the last month)
//!   pays the sanctioned address once; real payees cash out at their own deposit addresses,
//!   some also pay friends;
//! * zero-value token transfers to payees from look-alike addresses (address-poisoning spam),
//!   and noise (withdrawals, transfers, swaps, deposits) at `8 × scale` wallets and
//!   `25 × scale` actions a month.
//!
//! Variants, by `seed % 3`:
//!
//! * **0, one operator**: five fakes of one operator whose consolidation is two wallets of one
//!   cluster; seven real payees;
//! * **1, two operators**: three fakes each (one operator with two clustered consolidation
//!   wallets, the other with one), six real payees; both pay the same facilitator;
//! * **2, far in its own token**: five fakes meet at one wallet that pays the facilitator only
//!   in the second stablecoin and the native coin; one fake paid in the first stablecoin is six
//!   transfers from the facilitator in that token (the wallet passes it through four fresh
//!   addresses first), so only the meeting tells it apart.
//!
//! Labels known beforehand: exchange hot wallets, the sanctioned address and the DEX router
//! (label sets ship DEX routers; the engines need it to cross swaps). Failed transactions and
//! reverted calls carry no transfer into the store's write path (the decoders drop them), so
//! they are not generated; zero-value transfers, which do reach the store, are.
//!
//! Sanctioned reach (the ground truth of FIFO and haircut exposure) is computed by
//! [`super::reference`] with the report's hop limit.

use super::reference;
use super::scenario::{
    AssetId, BASE, Label, Move, Payee, PlantedPattern, Provider, Scenario, Token, Truth,
    TruthOperator, TruthPayee, Tx,
};
use paytrace_indexer::{Address, Amount};
use std::collections::{BTreeMap, BTreeSet};

const DAY: u64 = 86_400;
const HOUR: u64 = 3_600;
const MONTH: u64 = 30 * DAY;
/// Decimals of the two stablecoins.
const DECIMALS: [u8; 2] = [6, 18];
/// Native coin price in stablecoin units.
const NATIVE_PRICE: u128 = 2_500;

/// xorshift64* (a different generator from the `payroll` family's).
struct Rand(u64);

impl Rand {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x686f_6c64_6f75_7421 | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn upto(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.upto(hi - lo + 1)
    }
    fn pick(&mut self, len: usize) -> usize {
        usize::try_from(self.upto(u64::try_from(len).unwrap_or(1))).unwrap_or(0)
    }
    fn percent(&mut self, p: u64) -> bool {
        self.upto(100) < p
    }
}

/// Whole units of a stablecoin (or the native coin) in raw units.
fn units(asset: AssetId, whole: u128) -> u128 {
    match asset {
        AssetId::Token(t) => whole * 10u128.pow(u32::from(DECIMALS[t.min(1)])),
        AssetId::Native => whole * 10u128.pow(18),
    }
}

/// Value of `amount` of `asset` in micro-dollars.
fn to_micro(asset: AssetId, amount: u128) -> u128 {
    match asset {
        AssetId::Token(0) => amount,
        AssetId::Token(_) => amount / 1_000_000_000_000,
        AssetId::Native => amount / 1_000_000_000_000 * NATIVE_PRICE,
    }
}

fn from_micro(asset: AssetId, v: u128) -> u128 {
    match asset {
        AssetId::Token(0) => v,
        AssetId::Token(_) => v * 1_000_000_000_000,
        AssetId::Native => v * 1_000_000_000_000 / NATIVE_PRICE,
    }
}

/// The router's output for `amount` of `from` in `to` (0.25 % fee).
fn quote(amount: u128, from: AssetId, to: AssetId) -> u128 {
    let v = to_micro(from, amount);
    from_micro(to, v - v / 400)
}

/// `v × num / den`, rounded down.
fn part(v: u128, num: u64, den: u64) -> u128 {
    v / u128::from(den) * u128::from(num) + v % u128::from(den) * u128::from(num) / u128::from(den)
}

/// One way a fake payee's salary moves one step on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// To the identity's own wallet (the same every month).
    Own,
    /// To a wallet created for this month.
    Fresh,
    /// Through the DEX router into this asset.
    Swap(AssetId),
    /// Through the operator's forwarder contract.
    Forward,
}

impl Step {
    fn transfers(self) -> u64 {
        match self {
            Self::Own | Self::Fresh => 1,
            Self::Swap(_) | Self::Forward => 2,
        }
    }
}

struct Builder {
    seed: u64,
    /// The DEX router.
    router: Address,
    r: Rand,
    txs: Vec<(u64, usize, Tx)>,
    addresses: BTreeSet<Address>,
    /// Deposit address → hot wallet.
    deposits: BTreeMap<Address, Address>,
    /// Running balances, to pay only what is held.
    bal: BTreeMap<(Address, AssetId), u128>,
}

impl Builder {
    fn addr(&mut self, name: &str) -> Address {
        let h = alloy_primitives::keccak256(format!("holdout-like {} {name}", self.seed));
        let mut b = [0u8; 20];
        b.copy_from_slice(&h[12..]);
        let a = Address::Evm(b);
        self.addresses.insert(a);
        a
    }

    fn held(&self, a: Address, asset: AssetId) -> u128 {
        self.bal.get(&(a, asset)).copied().unwrap_or(0)
    }

    fn tx(&mut self, time: u64, note: &'static str, moves: Vec<Move>, swap: Option<Address>) {
        for m in &moves {
            *self.bal.entry((m.to, m.asset)).or_default() += m.amount;
        }
        for m in &moves {
            if m.from != Address::ZERO_EVM {
                let b = self.bal.entry((m.from, m.asset)).or_default();
                *b = b.saturating_sub(m.amount);
            }
        }
        let seq = self.txs.len();
        self.txs.push((
            time,
            seq,
            Tx {
                time,
                moves,
                swap,
                salary_of: None,
                note,
            },
        ));
    }

    fn mv(from: Address, to: Address, asset: AssetId, amount: u128) -> Move {
        Move {
            from,
            to,
            asset,
            amount,
            internal: false,
        }
    }

    fn send(
        &mut self,
        time: u64,
        from: Address,
        to: Address,
        asset: AssetId,
        amount: u128,
        note: &'static str,
    ) {
        if amount > 0 {
            self.tx(time, note, vec![Self::mv(from, to, asset, amount)], None);
        }
    }

    /// A payment into deposit address `dep` and its sweep to the hot wallet 20 to 80 minutes
    /// later (everything the deposit address holds of the asset).
    fn deposit(&mut self, time: u64, from: Address, dep: Address, asset: AssetId, amount: u128) {
        if amount == 0 {
            return;
        }
        self.send(time, from, dep, asset, amount, "deposit");
        if let Some(&hot) = self.deposits.get(&dep) {
            let later = time + self.r.between(20, 80) * 60;
            let all = self.held(dep, asset);
            self.send(later, dep, hot, asset, all, "sweep");
        }
    }

    fn swap(
        &mut self,
        time: u64,
        from: Address,
        to: Address,
        asset: AssetId,
        into: AssetId,
        amount: u128,
    ) -> u128 {
        let out = quote(amount, asset, into);
        let router = self.router;
        let mut pay = Self::mv(router, to, into, out);
        pay.internal = into == AssetId::Native;
        self.tx(
            time,
            "swap",
            vec![Self::mv(from, router, asset, amount), pay],
            Some(router),
        );
        out
    }
}

/// Generates the `holdout-like` scenario of `seed` with noise at `scale`.
pub fn generate(seed: u64, scale: u32) -> Scenario {
    let scale = u64::from(scale.max(1));
    let variant = seed % 3;
    let mut b = Builder {
        seed,
        router: Address::ZERO_EVM,
        r: Rand::new(seed),
        txs: Vec::new(),
        addresses: BTreeSet::new(),
        deposits: BTreeMap::new(),
        bal: BTreeMap::new(),
    };
    let mut tokens: Vec<Token> = ["USDX", "DAIX"]
        .iter()
        .enumerate()
        .map(|(i, s)| Token {
            symbol: (*s).to_owned(),
            decimals: DECIMALS[i],
            address: b.addr(&format!("stablecoin {s}")),
        })
        .collect();
    tokens.push(Token {
        symbol: "DROP".into(),
        decimals: 18,
        address: b.addr("airdrop token"),
    });
    let stable = [AssetId::Token(0), AssetId::Token(1)];
    let drop = AssetId::Token(2);
    let hots: Vec<Address> = (0..3).map(|i| b.addr(&format!("cex {i} hot"))).collect();
    let router = b.addr("amm router");
    b.router = router;
    let sanctioned = b.addr("sanctioned facilitator");
    let distributor = b.addr("airdrop distributor");
    let mut labels: Vec<Label> = hots
        .iter()
        .enumerate()
        .map(|(i, h)| Label {
            address: *h,
            category: "exchange",
            entity: format!("Cex {i}"),
        })
        .collect();
    labels.push(Label {
        address: sanctioned,
        category: "sanctioned",
        entity: "Facilitator (holdout SDN)".into(),
    });
    labels.push(Label {
        address: router,
        category: "defi",
        entity: "Holdout AMM router".into(),
    });
    let new_dep = |b: &mut Builder, name: &str| {
        let d = b.addr(name);
        let h = hots[b.r.pick(hots.len())];
        b.deposits.insert(d, h);
        d
    };
    // Providers: provider 0 pays USDX on the 1st, provider 1 DAIX on the 15th.
    let providers: Vec<Provider> = (0..2)
        .map(|i| Provider {
            name: format!("Payroll {i}"),
            address: b.addr(&format!("payroll provider {i}")),
        })
        .collect();
    // Operators and their fakes.
    let fakes_per_op: Vec<usize> = match variant {
        1 => vec![3, 3],
        _ => vec![5],
    };
    let n_fake: usize = fakes_per_op.iter().sum();
    let mut roles: Vec<Option<usize>> = Vec::new();
    for (o, n) in fakes_per_op.iter().enumerate() {
        roles.extend(std::iter::repeat_n(Some(o), *n));
    }
    roles.extend(std::iter::repeat_n(None, 12 - n_fake));
    for i in (1..roles.len()).rev() {
        let j = b.r.pick(i + 1);
        roles.swap(i, j);
    }
    let mut payees: Vec<Payee> = Vec::new();
    let mut salary: Vec<u128> = Vec::new();
    // In the far variant the first fake is paid in USDX, the others in DAIX.
    let mut far: Option<usize> = None;
    for (i, role) in roles.iter().enumerate() {
        let provider = match (variant, role) {
            (2, Some(_)) if far.is_none() => {
                far = Some(i);
                0
            }
            (2, Some(_)) => 1,
            _ => b.r.pick(2),
        };
        let address = b.addr(&format!("employee {i}"));
        payees.push(Payee {
            name: format!("Employee {i:02}"),
            address,
            fake: role.is_some(),
            operator: *role,
            provider,
            token: provider,
        });
        salary.push(b.r.between(2_500, 9_000).into());
    }
    // Consolidation wallets: operator 0 has two (one cluster through a shared deposit address)
    // except in the far variant; operator 1 has one.
    let n_op = fakes_per_op.len();
    let mut cons: Vec<Vec<Address>> = Vec::new();
    for o in 0..n_op {
        let n = if o == 0 && variant != 2 { 2 } else { 1 };
        cons.push(
            (0..n)
                .map(|k| b.addr(&format!("operator {o} collector {k}")))
                .collect(),
        );
    }
    let op_dep: Vec<Address> = (0..n_op)
        .map(|o| new_dep(&mut b, &format!("operator {o} cex account")))
        .collect();
    let op_peel_deps: Vec<Vec<Address>> = (0..n_op)
        .map(|o| {
            (0..2)
                .map(|k| new_dep(&mut b, &format!("operator {o} cashout {k}")))
                .collect()
        })
        .collect();
    let forwarder: Vec<Address> = (0..n_op)
        .map(|o| b.addr(&format!("operator {o} forwarder")))
        .collect();
    // Each fake: its collector and its steps (1 to 4 transfers).
    struct Plan {
        collector: Address,
        steps: Vec<Step>,
        own: Vec<Address>,
    }
    let mut plans: BTreeMap<usize, Plan> = BTreeMap::new();
    let mut k_in_op = vec![0usize; n_op];
    for (i, p) in payees.iter().enumerate() {
        let Some(o) = p.operator else { continue };
        let collector = cons[o][k_in_op[o] % cons[o].len()];
        k_in_op[o] += 1;
        let mut steps = Vec::new();
        if Some(i) != far {
            let budget = b.r.between(1, 4);
            let mut used = 0;
            while used < budget {
                let left = budget - used;
                let s = match b.r.upto(4) {
                    0 if left >= 2 && steps.iter().all(|s| !matches!(s, Step::Swap(_))) => {
                        // In the far variant only into the native coin: the collector's
                        // first stablecoin is the far fake's alone.
                        let into = if variant == 2 || b.r.percent(50) {
                            AssetId::Native
                        } else {
                            stable[1 - p.token]
                        };
                        Step::Swap(into)
                    }
                    1 if left >= 2 => Step::Forward,
                    2 => Step::Fresh,
                    _ => Step::Own,
                };
                used += s.transfers();
                steps.push(s);
            }
        }
        let own = (0..steps.len())
            .map(|k| b.addr(&format!("employee {i} own wallet {k}")))
            .collect();
        plans.insert(
            i,
            Plan {
                collector,
                steps,
                own,
            },
        );
    }
    let reals: Vec<usize> = (0..payees.len()).filter(|&i| !payees[i].fake).collect();
    let real_dep: BTreeMap<usize, Address> = reals
        .iter()
        .map(|&i| (i, new_dep(&mut b, &format!("employee {i} cex account"))))
        .collect();
    let merchant_of = reals[b.r.pick(reals.len())];
    let merchant = b.addr("merchant");
    let merchant_dep = new_dep(&mut b, "merchant cex account");
    let customers: Vec<Address> = (0..b.r.between(4, 8))
        .map(|c| b.addr(&format!("merchant customer {c}")))
        .collect();
    let friends: Vec<Address> = (0..4).map(|f| b.addr(&format!("friend {f}"))).collect();
    let n_noise = usize::try_from(8 * scale).unwrap_or(8);
    let noise: Vec<Address> = (0..n_noise)
        .map(|i| b.addr(&format!("bystander {i}")))
        .collect();
    let noise_dep: BTreeMap<usize, Address> = (0..n_noise)
        .filter(|i| i % 3 != 0)
        .map(|i| (i, new_dep(&mut b, &format!("bystander {i} cex account"))))
        .collect();
    let spam: Vec<Address> = (0..3).map(|k| b.addr(&format!("poisoner {k}"))).collect();

    // Mints.
    let zero = Address::ZERO_EVM;
    let t0 = BASE - 5 * DAY;
    for (i, p) in providers.iter().enumerate() {
        b.send(
            t0,
            zero,
            p.address,
            stable[i],
            units(stable[i], 100_000_000),
            "mint",
        );
    }
    for a in stable.iter().chain([&AssetId::Native]) {
        b.send(t0, zero, router, *a, units(*a, 500_000_000), "mint");
        for &h in &hots {
            b.send(t0, zero, h, *a, units(*a, 500_000_000), "mint");
        }
    }
    b.send(
        t0,
        zero,
        distributor,
        drop,
        units(drop, 1_000_000_000),
        "mint",
    );
    // Bystanders and customers start with exchange withdrawals.
    for &w in noise.iter().chain(&customers).chain(&friends) {
        let a = stable[b.r.pick(2)];
        let a = if customers.contains(&w) {
            stable[payees[merchant_of].token]
        } else {
            a
        };
        let v = units(a, b.r.between(3_000, 40_000).into());
        let h = hots[b.r.pick(hots.len())];
        let at = t0 + DAY + b.r.upto(DAY);
        b.send(at, h, w, a, v, "withdrawal");
    }

    let months = 4;
    let mut fan_senders: BTreeMap<Address, BTreeSet<Address>> = BTreeMap::new();
    let mut patterns: Vec<PlantedPattern> = Vec::new();
    for m in 0..months {
        let month = BASE + m * MONTH;
        let payday = |prov: usize| month + if prov == 0 { 0 } else { 14 * DAY } + 10 * HOUR;
        // Salaries.
        for (i, p) in payees.iter().enumerate() {
            let at = payday(p.provider) + 7 * u64::try_from(i).unwrap_or(0);
            let asset = stable[p.token];
            let amount = units(asset, salary[i]) + units(asset, (m as u128) * 25) / 10;
            b.tx(
                at,
                "salary",
                vec![Builder::mv(
                    providers[p.provider].address,
                    p.address,
                    asset,
                    amount,
                )],
                None,
            );
            if let Some(last) = b.txs.last_mut() {
                last.2.salary_of = Some(i);
            }
        }
        // Fakes move their salary to their collector.
        for (&i, plan) in &plans {
            let p = &payees[i];
            let Some(o) = p.operator else { continue };
            let mut at = payday(p.provider) + b.r.between(2, 30) * HOUR;
            let mut asset = stable[p.token];
            let mut holder = p.address;
            let mut amount = b.held(holder, asset);
            for (k, step) in plan.steps.iter().enumerate() {
                // The last step ends at the collector; a fresh step at this month's wallet.
                let next = if k + 1 == plan.steps.len() {
                    plan.collector
                } else if *step == Step::Fresh {
                    b.addr(&format!("employee {i} month {m} fresh {k}"))
                } else {
                    plan.own[k]
                };
                if next == plan.collector {
                    fan_senders.entry(next).or_default().insert(holder);
                }
                match *step {
                    Step::Own | Step::Fresh => {
                        b.send(at, holder, next, asset, amount, "fake hop");
                    }
                    Step::Swap(into) => {
                        amount = b.swap(at, holder, next, asset, into, amount);
                        asset = into;
                    }
                    Step::Forward => {
                        let f = forwarder[o];
                        let mut out = Builder::mv(f, next, asset, amount);
                        out.internal = asset == AssetId::Native;
                        b.tx(
                            at,
                            "forwarder call",
                            vec![Builder::mv(holder, f, asset, amount), out],
                            None,
                        );
                    }
                }
                holder = next;
                at += b.r.between(1, 9) * HOUR;
            }
            if plan.steps.is_empty() {
                // The far fake: straight to the collector.
                b.send(at, holder, plan.collector, asset, amount, "fake hop");
                fan_senders
                    .entry(plan.collector)
                    .or_default()
                    .insert(holder);
            }
        }
        // Collectors: the facilitator's share, the operator's own exchange account, then a peel
        // chain of fresh addresses into cash-out deposit addresses. They act after both paydays.
        for (o, list) in cons.iter().enumerate() {
            for (k, &c) in list.iter().enumerate() {
                // Collectors of one operator act on different days (their cash-out deposits
                // are swept before the next one arrives).
                let mut at = month + 19 * DAY + 2 * DAY * (k as u64) + b.r.upto(12 * HOUR);
                let fee_share = b.r.between(10, 25);
                for (ai, asset) in [stable[0], stable[1], AssetId::Native]
                    .into_iter()
                    .enumerate()
                {
                    let held = b.held(c, asset);
                    if held == 0 {
                        continue;
                    }
                    at += 1_800;
                    let far_token = variant == 2 && asset == stable[0];
                    let mut rest = held;
                    if !far_token {
                        let fee = part(held, fee_share, 100);
                        b.send(at, c, sanctioned, asset, fee, "facilitator");
                        rest -= fee;
                    }
                    if list.len() > 1 || m == 0 {
                        let own = part(rest, 10, 100);
                        b.deposit(at + 300, c, op_dep[o], asset, own);
                        rest -= own;
                    }
                    if far_token {
                        // Four pass-through wallets, then the facilitator.
                        let mut h = c;
                        let mut t = at + HOUR;
                        for j in 0..4 {
                            let w = b.addr(&format!("op {o} month {m} relay {j}"));
                            b.send(t, h, w, asset, rest, "relay");
                            h = w;
                            t += b.r.between(1, 4) * HOUR;
                        }
                        b.send(t, h, sanctioned, asset, rest, "facilitator");
                        continue;
                    }
                    let n = b.r.between(2, 4);
                    let chain: Vec<Address> = (0..n)
                        .map(|j| b.addr(&format!("op {o} c{k} m{m} a{ai} peel {j}")))
                        .collect();
                    let mut t = at + HOUR;
                    b.send(t, c, chain[0], asset, rest, "to peel chain");
                    let mut v = rest;
                    for (j, &w) in chain.iter().enumerate() {
                        t += b.r.between(1, 5) * HOUR;
                        let dep = op_peel_deps[o][b.r.pick(2)];
                        if let Some(&nx) = chain.get(j + 1) {
                            let cut = part(v, b.r.between(20, 40), 100);
                            b.deposit(t, w, dep, asset, cut);
                            b.send(t + 120, w, nx, asset, v - cut, "peel");
                            v -= cut;
                        } else {
                            b.deposit(t, w, dep, asset, v);
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
        }
        // Real payees: a purchase at the merchant, a friend now and then, then cash out.
        for &i in &reals {
            let p = &payees[i];
            let asset = stable[p.token];
            let mut at = payday(p.provider) + b.r.between(3, 60) * HOUR;
            if i == merchant_of {
                let v = part(b.held(p.address, asset), b.r.between(2, 9), 100);
                b.send(at, p.address, merchant, asset, v, "purchase");
                at += HOUR;
            }
            if b.r.percent(30) {
                let f = friends[b.r.pick(friends.len())];
                let v = part(b.held(p.address, asset), b.r.between(5, 15), 100);
                b.send(at, p.address, f, asset, v, "to a friend");
                at += HOUR;
            }
            let held = b.held(p.address, asset);
            let v = part(held, b.r.between(70, 100), 100);
            b.deposit(at, p.address, real_dep[&i], asset, v);
        }
        // The merchant's business; in the last month it pays the facilitator once.
        let ma = stable[payees[merchant_of].token];
        for &c in &customers {
            for _ in 0..3 {
                let at = month + b.r.upto(26 * DAY);
                let v = units(ma, b.r.between(400, 2_500).into());
                if b.held(c, ma) >= v {
                    b.send(at, c, merchant, ma, v, "sale");
                }
            }
        }
        if m + 1 == months {
            let v = units(ma, b.r.between(30, 90).into());
            b.send(
                month + 25 * DAY,
                merchant,
                sanctioned,
                ma,
                v,
                "merchant to facilitator",
            );
        }
        let half = b.held(merchant, ma) / 2;
        b.deposit(month + 27 * DAY, merchant, merchant_dep, ma, half);
        // Address-poisoning spam: zero-value token transfers to payees.
        for _ in 0..3 {
            let to = payees[b.r.pick(payees.len())].address;
            let from = spam[b.r.pick(spam.len())];
            let at = month + b.r.upto(MONTH);
            let a = stable[b.r.pick(2)];
            b.tx(at, "poisoning", vec![Builder::mv(from, to, a, 0)], None);
        }
        // Noise, at the scale.
        let mut times: Vec<u64> = (0..25 * scale).map(|_| month + b.r.upto(MONTH)).collect();
        times.sort_unstable();
        for at in times {
            let i = b.r.pick(n_noise);
            let w = noise[i];
            let a = stable[b.r.pick(2)];
            let held = b.held(w, a);
            match b.r.upto(6) {
                _ if held < units(a, 10) => {
                    let h = hots[b.r.pick(hots.len())];
                    let v = units(a, b.r.between(500, 8_000).into());
                    b.send(at, h, w, a, v, "withdrawal");
                }
                0 | 1 => {
                    let j = b.r.pick(n_noise);
                    let v = part(held, b.r.between(3, 40), 100);
                    b.send(at, w, noise[j], a, v, "bystander transfer");
                }
                2 if noise_dep.contains_key(&i) => {
                    let v = part(held, b.r.between(20, 90), 100);
                    b.deposit(at, w, noise_dep[&i], a, v);
                }
                3 => {
                    let v = part(held, b.r.between(5, 30), 100);
                    let into = if b.r.percent(30) {
                        AssetId::Native
                    } else {
                        stable[1 - usize::from(a == stable[1])]
                    };
                    b.swap(at, w, w, a, into, v);
                }
                4 => {
                    let v = part(held, b.r.between(5, 20), 100);
                    let c = customers[b.r.pick(customers.len())];
                    b.send(at, w, c, a, v, "bystander payment");
                }
                _ => {
                    let v = part(held, b.r.between(1, 10), 100);
                    let f = friends[b.r.pick(friends.len())];
                    b.send(at, w, f, a, v, "bystander gift");
                }
            }
        }
        // The batched airdrop in the second month (generated after the month's noise, so
        // that the noise never spends what the airdrop brought before it arrived): two fakes, two real payees, bystanders.
        if m == 1 {
            let fakes: Vec<usize> = plans.keys().copied().take(2).collect();
            let mut rcpt: Vec<Address> = fakes.iter().map(|&i| payees[i].address).collect();
            rcpt.extend(reals.iter().take(2).map(|&i| payees[i].address));
            rcpt.extend(noise.iter().take(12).copied());
            let amount = units(drop, 250);
            let at = month + 9 * DAY;
            let moves = rcpt
                .iter()
                .map(|&r| Builder::mv(distributor, r, drop, amount))
                .collect();
            b.tx(at, "airdrop", moves, None);
            // Fakes hand theirs to their operator's (first) collector; everybody else sells.
            for (k, &r) in rcpt.iter().enumerate() {
                let later = at + DAY + 600 * (k as u64);
                if let Some(&i) = fakes.get(k) {
                    let o = payees[i].operator.unwrap_or(0);
                    b.send(later, r, cons[o][0], drop, amount, "airdrop forward");
                } else if b.r.percent(80) {
                    let into = stable[b.r.pick(2)];
                    b.swap(later, r, r, drop, into, amount);
                }
            }
        }
    }
    for (center, senders) in fan_senders {
        if senders.len() >= 2 {
            let mut members = senders;
            members.insert(center);
            patterns.push(PlantedPattern {
                kind: "fan-in",
                center,
                members,
                source: center,
            });
        }
    }
    b.txs.sort_by_key(|(t, seq, _)| (*t, *seq));
    let txs: Vec<Tx> = b.txs.into_iter().map(|x| x.2).collect();
    let swept: BTreeSet<Address> = txs
        .iter()
        .flat_map(|t| &t.moves)
        .filter(|m| b.deposits.get(&m.from) == Some(&m.to))
        .map(|m| m.from)
        .collect();
    let deposits: BTreeMap<Address, Address> = b
        .deposits
        .into_iter()
        .filter(|(d, _)| swept.contains(d))
        .collect();
    let mut stops: BTreeSet<Address> = hots.iter().copied().collect();
    stops.extend(deposits.keys().copied());
    let reach = reference::reach_within(
        &txs,
        payees.len(),
        &stops,
        router,
        sanctioned,
        reference::REPORT_HOPS,
    );
    let operators: Vec<TruthOperator> = (0..n_op)
        .map(|o| TruthOperator {
            name: format!("Operator {o}"),
            consolidation: cons[o][0],
            fakes: payees
                .iter()
                .filter(|p| p.operator == Some(o))
                .map(|p| p.address)
                .collect(),
        })
        .collect();
    let truth_payees = payees
        .iter()
        .enumerate()
        .map(|(i, p)| TruthPayee {
            name: p.name.clone(),
            address: p.address,
            fake: p.fake,
            operator: p.operator.map(|o| format!("Operator {o}")),
            fifo: Amount::from_raw(alloy_primitives::U256::from(reach.fifo[i])),
            haircut: Amount::from_raw(alloy_primitives::U256::from(reach.haircut[i])),
        })
        .collect();
    let mut addresses = b.addresses;
    addresses.remove(&zero);
    Scenario {
        seed,
        scale: u32::try_from(scale).unwrap_or(u32::MAX),
        tokens,
        providers,
        payees,
        txs,
        labels,
        addresses,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holdout_scenarios_conserve_value_and_are_deterministic() {
        for seed in 0..12 {
            for scale in [1, 4] {
                let s = generate(seed, scale);
                s.check_conservation()
                    .unwrap_or_else(|e| panic!("seed {seed} scale {scale}: {e}"));
                assert_eq!(s.payees.len(), 12);
                let fakes = s.payees.iter().filter(|p| p.fake).count();
                assert_eq!(fakes, if seed % 3 == 1 { 6 } else { 5 }, "seed {seed}");
                // Every fake's salary reaches the facilitator within the report's hops, except
                // the far fake's (six transfers in its own token).
                let reached = s
                    .truth
                    .payees
                    .iter()
                    .filter(|p| p.fake && !p.haircut.is_zero())
                    .count();
                let expect = if seed % 3 == 2 { fakes - 1 } else { fakes };
                assert_eq!(reached, expect, "seed {seed} scale {scale}");
                let rows = s.batch_csv("eval").lines().count() - 1;
                assert_eq!(rows, 12 * 4);
            }
        }
        let a = serde_json::to_string(&generate(4, 1)).unwrap();
        let b = serde_json::to_string(&generate(4, 1)).unwrap();
        assert_eq!(a, b);
    }
}
