//! An account's usual amounts, and whether one transfer's amount is unusual for it.
//!
//! The usual amount of an account (per asset and direction) is learnt from its own transfers
//! in the examined set: each counterparty contributes **once**, with the median of the amounts
//! exchanged with it (so a burst of many transfers to one receiver does not define what is
//! usual), and statistics are taken on the decimal logarithm of the amounts (payment sizes on
//! chain spread over orders of magnitude; a factor matters, not a difference).
//!
//! A transfer between the account and counterparty `c` is judged against the account's
//! counterparties **other than** `c`: it is unusual when at least `usual_min_counterparties`
//! of them are known and its amount lies outside both
//!
//! * Tukey's far-out fences of their per-counterparty amounts, `[Q1 − 3 IQR, Q3 + 3 IQR]`, and
//! * a factor `usual_min_ratio` around their median (an account that always pays the same
//!   amount has IQR 0; a change of a few percent is not unusual, an order of magnitude is).
//!
//! Amounts themselves stay integers; only these statistics use floating point.

use super::PatternParams;
use paytrace_indexer::{Address, Amount, Asset, Transfer};
use std::collections::HashMap;

/// Which side of the account's transfers a profile describes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Side {
    /// What the account sends (its outflows, by receiver).
    Sent,
    /// What the account receives (its inflows, by sender).
    Received,
}

/// One account's amounts with each counterparty, sorted.
#[derive(Debug, Default)]
struct Profile {
    /// `(log10 median amount, counterparty)`, sorted by value.
    sorted: Vec<(f64, Address)>,
    /// Counterparty -> index in `sorted`.
    pos: HashMap<Address, usize>,
}

/// Usual amounts of every account of a transfer set, for one side.
#[derive(Debug)]
pub struct UsualAmounts {
    side: Side,
    profiles: HashMap<(Address, Asset), Profile>,
}

/// The decimal logarithm of a non-zero amount.
pub fn log10(a: Amount) -> Option<f64> {
    (!a.is_zero()).then(|| a.raw().approx_log10())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        f64::midpoint(v[n / 2 - 1], v[n / 2])
    }
}

impl UsualAmounts {
    /// Profiles of every account on `side` of `ts` (self-transfers and zero amounts ignored).
    pub fn new<'a>(ts: impl IntoIterator<Item = &'a Transfer>, side: Side) -> Self {
        let mut raw: HashMap<(Address, Asset), HashMap<Address, Vec<f64>>> = HashMap::new();
        for t in ts {
            if t.from == t.to {
                continue;
            }
            let Some(l) = log10(t.amount) else { continue };
            let (acct, cp) = match side {
                Side::Sent => (t.from, t.to),
                Side::Received => (t.to, t.from),
            };
            raw.entry((acct, t.asset))
                .or_default()
                .entry(cp)
                .or_default()
                .push(l);
        }
        let profiles = raw
            .into_iter()
            .map(|(k, per)| {
                let mut sorted: Vec<(f64, Address)> = per
                    .into_iter()
                    .map(|(cp, mut v)| (median(&mut v), cp))
                    .collect();
                sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                let pos = sorted.iter().enumerate().map(|(i, x)| (x.1, i)).collect();
                (k, Profile { sorted, pos })
            })
            .collect();
        Self { side, profiles }
    }

    /// The side these profiles describe.
    pub fn side(&self) -> Side {
        self.side
    }

    /// Whether `amount` of `asset` between `account` and `counterparty` is unusual for
    /// `account`, judged against its other counterparties; `None` when fewer than
    /// `p.usual_min_counterparties` of them are known or the amount is zero.
    pub fn is_unusual(
        &self,
        account: &Address,
        asset: &Asset,
        counterparty: &Address,
        amount: Amount,
        p: &PatternParams,
    ) -> Option<bool> {
        let la = log10(amount)?;
        let prof = self.profiles.get(&(*account, *asset))?;
        let skip = prof.pos.get(counterparty).copied();
        let n = prof.sorted.len() - usize::from(skip.is_some());
        if n == 0 || n < p.usual_min_counterparties {
            return None;
        }
        let get = |i: usize| -> f64 {
            let i = match skip {
                Some(j) if i >= j => i + 1,
                _ => i,
            };
            prof.sorted.get(i).map_or(0.0, |x| x.0)
        };
        // Quantile `num / 4` with linear interpolation between order statistics
        // (Hyndman-Fan type 7): position (n - 1) × num / 4.
        let q = |num: usize| -> f64 {
            let pos = (n - 1) * num;
            let (i, rem) = (pos / 4, pos % 4);
            let a = get(i);
            if i + 1 >= n || rem == 0 {
                a
            } else {
                a + rem as f64 / 4.0 * (get(i + 1) - a)
            }
        };
        let (q1, med, q3) = (q(1), q(2), q(3));
        let iqr = q3 - q1;
        let ratio = f64::from(p.usual_min_ratio.max(1)).log10();
        let lo = (q1 - 3.0 * iqr).min(med - ratio);
        let hi = (q3 + 3.0 * iqr).max(med + ratio);
        Some(la < lo || la > hi)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::patterns::tests::t;

    #[test]
    fn a_tenfold_change_against_a_steady_amount_is_unusual() {
        // 1 pays 2, 3, 4 always 500; then 5 once 40 (12.5x less) and 6 once 450.
        let ts = vec![
            t(1, 1, 2, 500),
            t(2, 1, 3, 500),
            t(3, 1, 4, 500),
            t(4, 1, 2, 500),
            t(5, 1, 5, 40),
            t(6, 1, 6, 450),
        ];
        let u = UsualAmounts::new(&ts, Side::Sent);
        let p = PatternParams::default();
        let a = |n: u8| Address::Evm([n; 20]);
        let judge = |cp: u8, amt: u64| {
            u.is_unusual(&a(1), &Asset::Native, &a(cp), Amount::from_u64(amt), &p)
        };
        assert_eq!(judge(5, 40), Some(true));
        assert_eq!(judge(6, 450), Some(false));
        assert_eq!(judge(6, 5_100), Some(true));
        assert_eq!(judge(6, 4_900), Some(false));
        // Zero amounts are not judged; an account with one other counterparty is not known.
        assert_eq!(judge(5, 0), None);
        let two = vec![t(1, 7, 2, 500), t(2, 7, 3, 5)];
        let u2 = UsualAmounts::new(&two, Side::Sent);
        assert_eq!(
            u2.is_unusual(&a(7), &Asset::Native, &a(3), Amount::from_u64(5), &p),
            None
        );
        // The receiving side mirrors it.
        let r = UsualAmounts::new(&ts, Side::Received);
        assert_eq!(
            r.is_unusual(&a(2), &Asset::Native, &a(1), Amount::from_u64(500), &p),
            None
        );
    }

    #[test]
    fn a_burst_to_one_receiver_does_not_define_the_usual_amount() {
        // Five small transfers to 9 and one each of 300 to 2 and 3: the usual amount is 300
        // (each counterparty counts once), so the small ones are unusual for 1.
        let mut ts: Vec<Transfer> = (0..5).map(|i| t(10 + i, 1, 9, 4)).collect();
        ts.push(t(1, 1, 2, 300));
        ts.push(t(2, 1, 3, 310));
        let u = UsualAmounts::new(&ts, Side::Sent);
        let p = PatternParams::default();
        let a = |n: u8| Address::Evm([n; 20]);
        assert_eq!(
            u.is_unusual(&a(1), &Asset::Native, &a(9), Amount::from_u64(4), &p),
            Some(true)
        );
        assert_eq!(
            u.is_unusual(&a(1), &Asset::Native, &a(3), Amount::from_u64(310), &p),
            Some(false)
        );
    }
}
