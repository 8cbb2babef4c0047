//! The reference taint bookkeeping behind the ground truth: how much of each payout reaches the
//! sanctioned address under FIFO and under haircut, written from the models' definitions
//! (docs/heuristics.md) and independent of the tracer's engine.
//!
//! Definitions, per asset and address:
//!
//! * every payout (salary transfer) is its own origin, fully tainted on arrival; everything
//!   else is clean;
//! * **FIFO**: an address's holding is a queue of (origin, amount) slices in arrival order; a
//!   transfer out takes slices from the front and the receiver appends them in that order;
//! * **haircut**: an address holds a balance and a tainted amount per origin; a transfer of `a`
//!   out of balance `B` carries `floor(a × t / B)` of every origin's tainted `t`;
//! * **stops** (exchange hot wallets and deposit addresses) and the target keep what arrives;
//!   their payouts are clean;
//! * **swaps**: the router is never followed in the asset it receives; in a swap transaction
//!   its payout `b` in another asset carries `floor(b × t / R)` of each origin, where `t` is the
//!   origin's taint that reached the router in the transaction and `R` everything the router
//!   received in that asset there;
//! * transfers of a transaction are applied in the chain's order (native value, internal
//!   transfers, token transfers).
//!
//! Per payee, the reach is the sum over its payouts.

use super::scenario::{AssetId, Move, Tx};
use alloy_primitives::U256;
use paytrace_indexer::Address;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Value of each payee's payouts that reached the target.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reach {
    /// Under FIFO, per payee (index into the scenario's payees).
    pub fifo: Vec<u128>,
    /// Under haircut, per payee.
    pub haircut: Vec<u128>,
}

/// `a × b / c` rounded down, in 256 bits (`c > 0`).
fn mul_div(a: u128, b: u128, c: u128) -> u128 {
    if c == 0 {
        return 0;
    }
    let v = U256::from(a) * U256::from(b) / U256::from(c);
    u128::try_from(v).unwrap_or(u128::MAX)
}

/// Taint of one transfer: per origin, in the order it leaves (FIFO) or as a set (haircut).
type Slices = Vec<(usize, u128)>;

/// Per (origin, address): the fewest hops from the origin's payee.
type Hops = BTreeMap<(usize, Address), u32>;

/// A FIFO holding: (origin, amount) slices in arrival order (`None`: clean).
type Queue = VecDeque<(Option<usize>, u128)>;

#[derive(Default)]
struct Fifo(BTreeMap<(Address, AssetId), Queue>);

impl Fifo {
    /// Debits `amount` from `from`; returns the tainted slices it carries, in order.
    fn take(&mut self, from: Address, asset: AssetId, amount: u128) -> Slices {
        let q = self.0.entry((from, asset)).or_default();
        let mut left = amount;
        let mut out = Vec::new();
        while left > 0 {
            let Some(front) = q.front_mut() else { break };
            let v = front.1.min(left);
            if let Some(o) = front.0 {
                out.push((o, v));
            }
            front.1 -= v;
            left -= v;
            if front.1 == 0 {
                q.pop_front();
            }
        }
        out
    }

    fn put(&mut self, to: Address, asset: AssetId, amount: u128, tainted: &Slices) {
        let q = self.0.entry((to, asset)).or_default();
        let mut clean = amount;
        for &(o, v) in tainted {
            q.push_back((Some(o), v));
            clean = clean.saturating_sub(v);
        }
        if clean > 0 {
            q.push_back((None, clean));
        }
    }
}

#[derive(Default)]
struct Haircut(BTreeMap<(Address, AssetId), (u128, BTreeMap<usize, u128>)>);

impl Haircut {
    fn take(&mut self, from: Address, asset: AssetId, amount: u128) -> Slices {
        let (bal, taint) = self.0.entry((from, asset)).or_default();
        let mut out = Vec::new();
        for (o, t) in taint.iter_mut() {
            let share = if amount >= *bal {
                *t
            } else {
                mul_div(amount, *t, *bal)
            };
            if share > 0 {
                out.push((*o, share));
                *t -= share;
            }
        }
        taint.retain(|_, t| *t > 0);
        *bal = bal.saturating_sub(amount);
        out
    }

    fn put(&mut self, to: Address, asset: AssetId, amount: u128, tainted: &Slices) {
        let (bal, taint) = self.0.entry((to, asset)).or_default();
        *bal += amount;
        for &(o, v) in tainted {
            *taint.entry(o).or_default() += v;
        }
    }
}

/// One model's bookkeeping over the scenario.
trait Ledger {
    fn take(&mut self, from: Address, asset: AssetId, amount: u128) -> Slices;
    fn put(&mut self, to: Address, asset: AssetId, amount: u128, tainted: &Slices);
}

impl Ledger for Fifo {
    fn take(&mut self, from: Address, asset: AssetId, amount: u128) -> Slices {
        Fifo::take(self, from, asset, amount)
    }
    fn put(&mut self, to: Address, asset: AssetId, amount: u128, tainted: &Slices) {
        Fifo::put(self, to, asset, amount, tainted);
    }
}

impl Ledger for Haircut {
    fn take(&mut self, from: Address, asset: AssetId, amount: u128) -> Slices {
        Haircut::take(self, from, asset, amount)
    }
    fn put(&mut self, to: Address, asset: AssetId, amount: u128, tainted: &Slices) {
        Haircut::put(self, to, asset, amount, tainted);
    }
}

fn rank(m: &Move) -> u8 {
    match (m.asset, m.internal) {
        (AssetId::Native, false) => 0,
        (AssetId::Native, true) => 1,
        (AssetId::Token(_), _) => 2,
    }
}

/// Runs one model; returns the taint per origin that arrived at `target`.
fn run<L: Ledger>(
    ledger: &mut L,
    txs: &[Tx],
    origins: &BTreeMap<usize, usize>,
    stops: &BTreeSet<Address>,
    router: Address,
    target: Address,
    limit: u32,
) -> BTreeMap<usize, u128> {
    let mut reached: BTreeMap<usize, u128> = BTreeMap::new();
    // Per (origin, address): the fewest hops from the origin's payee (hop 0) at which the
    // origin's taint arrived. An address at `limit` hops or more is not followed for that
    // origin: what it sends carries none of that origin's taint.
    let mut hops: Hops = BTreeMap::new();
    let zero = Address::ZERO_EVM;
    let held = |a: &Address| *a == zero || *a == router || *a == target || stops.contains(a);
    let hop_of = |hops: &Hops, o: usize, a: Address| hops.get(&(o, a)).copied().unwrap_or(0);
    for (n, tx) in txs.iter().enumerate() {
        let mut moves: Vec<&Move> = tx.moves.iter().collect();
        moves.sort_by_key(|m| rank(m));
        // Credits `m` with taint `t`, each origin arriving at hop `hop(o)`.
        let mut credit = |ledger: &mut L,
                          hops: &mut Hops,
                          m: &Move,
                          t: &Slices,
                          from_hop: &dyn Fn(&Hops, usize) -> u32| {
            for &(o, v) in t {
                if v == 0 {
                    continue;
                }
                let h = from_hop(hops, o);
                let e = hops.entry((o, m.to)).or_insert(h);
                *e = (*e).min(h);
            }
            if m.to == target {
                for &(o, v) in t {
                    *reached.entry(o).or_default() += v;
                }
            } else if !held(&m.to) {
                ledger.put(m.to, m.asset, m.amount, t);
            }
        };
        // Debits `m`; returns the taint it carries (origins whose sender is at the hop limit
        // carry nothing on).
        let carry = |ledger: &mut L, hops: &Hops, i: usize, m: &Move| {
            if let (Some(o), 0) = (origins.get(&n), i) {
                // The payout itself: fully tainted with its own origin.
                vec![(*o, m.amount)]
            } else if held(&m.from) {
                Vec::new()
            } else {
                let mut t = ledger.take(m.from, m.asset, m.amount);
                t.retain(|&(o, _)| hop_of(hops, o, m.from) < limit);
                t
            }
        };
        let payout = |i: usize| i == 0 && origins.contains_key(&n);
        if tx.swap != Some(router) {
            // In chain order, each transfer debited and credited before the next.
            for (i, m) in moves.iter().enumerate() {
                let t = carry(ledger, &hops, i, m);
                let from = m.from;
                let seed = payout(i);
                credit(ledger, &mut hops, m, &t, &|h, o| {
                    if seed {
                        0
                    } else {
                        hop_of(h, o, from).saturating_add(1)
                    }
                });
            }
            continue;
        }
        // A swap: the router's payouts are decided by everything it received in the
        // transaction, whatever their order; the router is one hop after its payer and its
        // payouts' receivers one after the router (the router is converted whatever its hops).
        let mut carried: Vec<Slices> = Vec::with_capacity(moves.len());
        for (i, m) in moves.iter().enumerate() {
            let t = if m.from == router {
                Vec::new()
            } else {
                carry(ledger, &hops, i, m)
            };
            carried.push(t);
        }
        let mut received: BTreeMap<AssetId, u128> = BTreeMap::new();
        let mut taint_in: BTreeMap<(AssetId, usize), u128> = BTreeMap::new();
        for (m, t) in moves.iter().zip(&carried) {
            if m.to == router {
                *received.entry(m.asset).or_default() += m.amount;
                for &(o, v) in t {
                    *taint_in.entry((m.asset, o)).or_default() += v;
                }
            }
        }
        for (i, m) in moves.iter().enumerate() {
            if m.from != router {
                continue;
            }
            let mut out: Slices = Vec::new();
            for (&(asset, o), &t) in &taint_in {
                if asset == m.asset {
                    continue;
                }
                let share = mul_div(m.amount, t, received.get(&asset).copied().unwrap_or(0));
                if share > 0 {
                    out.push((o, share));
                }
            }
            carried[i] = out;
        }
        // Payments into the router first (they set its hops), then its payouts.
        let mut order: Vec<usize> = (0..moves.len()).collect();
        order.sort_by_key(|&i| moves[i].from == router);
        for i in order {
            let m = moves[i];
            let from = m.from;
            let seed = payout(i);
            credit(ledger, &mut hops, m, &carried[i], &|h, o| {
                if seed {
                    0
                } else {
                    hop_of(h, o, from).saturating_add(1)
                }
            });
        }
    }
    reached
}

/// The reach of every payee's payouts at `target` under FIFO and haircut. Payouts are the
/// transactions with `salary_of`; `stops` keep what arrives; `router` is the swap address.
pub fn reach(
    txs: &[Tx],
    payees: usize,
    stops: &BTreeSet<Address>,
    router: Address,
    target: Address,
) -> Reach {
    reach_within(txs, payees, stops, router, target, u32::MAX)
}

/// The hop limit of `report payouts` by default: addresses reached at this many hops after the
/// payee are not followed.
pub const REPORT_HOPS: u32 = 5;

/// [`reach`] as a trace with hop limit `limit` sees it: an address whose fewest hops from a
/// payee (the payee is 0) are `limit` or more passes none of that payee's taint on.
pub fn reach_within(
    txs: &[Tx],
    payees: usize,
    stops: &BTreeSet<Address>,
    router: Address,
    target: Address,
    limit: u32,
) -> Reach {
    let origins: BTreeMap<usize, usize> = txs
        .iter()
        .enumerate()
        .filter_map(|(n, t)| t.salary_of.map(|_| (n, n)))
        .collect();
    let payee_of: BTreeMap<usize, usize> = txs
        .iter()
        .enumerate()
        .filter_map(|(n, t)| t.salary_of.map(|p| (n, p)))
        .collect();
    let sum = |r: BTreeMap<usize, u128>| {
        let mut v = vec![0u128; payees];
        for (o, x) in r {
            if let Some(p) = payee_of.get(&o).and_then(|&p| v.get_mut(p)) {
                *p += x;
            }
        }
        v
    };
    let fifo = run(
        &mut Fifo::default(),
        txs,
        &origins,
        stops,
        router,
        target,
        limit,
    );
    let haircut = run(
        &mut Haircut::default(),
        txs,
        &origins,
        stops,
        router,
        target,
        limit,
    );
    Reach {
        fifo: sum(fifo),
        haircut: sum(haircut),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(n: u8) -> Address {
        Address::Evm([n; 20])
    }

    fn tx(moves: &[(u8, u8, u128)], salary_of: Option<usize>) -> Tx {
        Tx {
            time: 0,
            moves: moves
                .iter()
                .map(|&(f, t, v)| Move {
                    from: a(f),
                    to: a(t),
                    asset: AssetId::Token(0),
                    amount: v,
                    internal: false,
                })
                .collect(),
            swap: None,
            salary_of,
            note: "test",
        }
    }

    /// FIFO by brute force: every unit is a tagged element of a queue.
    fn fifo_units(txs: &[Tx], target: Address) -> Vec<u128> {
        let mut q: BTreeMap<Address, VecDeque<Option<usize>>> = BTreeMap::new();
        let mut out = vec![0u128; 2];
        for t in txs {
            for m in &t.moves {
                let units: Vec<Option<usize>> = match t.salary_of {
                    Some(p) => vec![Some(p); usize::try_from(m.amount).unwrap()],
                    None => {
                        let src = q.entry(m.from).or_default();
                        (0..m.amount)
                            .map(|_| src.pop_front().unwrap_or(None))
                            .collect()
                    }
                };
                for u in units {
                    if m.to == target {
                        if let Some(p) = u {
                            out[p] += 1;
                        }
                    } else {
                        q.entry(m.to).or_default().push_back(u);
                    }
                }
            }
        }
        out
    }

    /// Hand-written: wallet 10 holds 30 clean units, receives payee 0's payout (50) and payee
    /// 1's (40) through the payees, pays 60 to the target 99, then 20 more.
    fn case() -> Vec<Tx> {
        vec![
            tx(&[(0, 10, 30)], None),
            tx(&[(1, 20, 50)], Some(0)),
            tx(&[(1, 21, 40)], Some(1)),
            tx(&[(20, 10, 50)], None),
            tx(&[(21, 10, 40)], None),
            tx(&[(10, 99, 60)], None),
            tx(&[(10, 99, 20)], None),
        ]
    }

    #[test]
    fn fifo_matches_a_unit_by_unit_reference_on_a_hand_written_case() {
        let txs = case();
        let r = reach(&txs, 2, &BTreeSet::new(), a(200), a(99));
        // FIFO: 30 clean leave first, then 30 of payee 0; then 20 more of payee 0.
        assert_eq!(r.fifo, vec![50, 0]);
        assert_eq!(r.fifo, fifo_units(&txs, a(99)));
    }

    #[test]
    fn haircut_takes_the_tainted_fraction_rounded_down() {
        let r = reach(&case(), 2, &BTreeSet::new(), a(200), a(99));
        // 60 of 120: floor(60·50/120) = 25 and floor(60·40/120) = 20; then 20 of 60 holding
        // 25 and 20: floor(20·25/60) = 8 and floor(20·20/60) = 6.
        assert_eq!(r.haircut, vec![33, 26]);
    }

    #[test]
    fn stops_keep_what_arrives_and_swaps_carry_taint_across_assets() {
        let router = a(200);
        let mut txs = vec![tx(&[(1, 20, 100)], Some(0))];
        // 20 swaps 100 units of token 0 for 50 of token 1, paid to 30.
        txs.push(Tx {
            time: 0,
            moves: vec![
                Move {
                    from: a(20),
                    to: router,
                    asset: AssetId::Token(0),
                    amount: 100,
                    internal: false,
                },
                Move {
                    from: router,
                    to: a(30),
                    asset: AssetId::Token(1),
                    amount: 50,
                    internal: false,
                },
            ],
            swap: Some(router),
            salary_of: None,
            note: "swap",
        });
        // 30 pays 10 to a stop (40) that pays the target, and 40 to the target directly.
        let mut t = tx(&[(30, 40, 10)], None);
        t.moves[0].asset = AssetId::Token(1);
        txs.push(t);
        let mut t = tx(&[(40, 99, 10), (30, 99, 40)], None);
        for m in &mut t.moves {
            m.asset = AssetId::Token(1);
        }
        txs.push(t);
        let stops: BTreeSet<Address> = [a(40)].into();
        let r = reach(&txs, 1, &stops, router, a(99));
        assert_eq!(r.fifo, vec![40]);
        assert_eq!(r.haircut, vec![40]);
    }
}
