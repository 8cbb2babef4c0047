//! Taint models: the per-(address, asset) state and how a transfer in or out changes it.
//!
//! Every operation is exact integer arithmetic on [`Amount`]s; see docs/heuristics.md for the
//! semantics written out.

use crate::error::TraceError;
use alloy_primitives::{U256, U512};
use paytrace_indexer::Amount;
use serde::Serialize;
use std::{collections::VecDeque, fmt, str::FromStr};

/// How tainted value mixes with clean value inside an address.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    /// Once an address received any tainted value, everything it sends is tainted.
    Poison,
    /// Every outgoing transfer carries the address's tainted fraction, rounded down.
    Haircut,
    /// Value leaves in arrival order (oldest first).
    Fifo,
    /// Value leaves newest first.
    Lifo,
    /// Bitcoin "taint in, highest out": at a transaction node ([`Address::Tx`]) the tainted
    /// input value goes to the highest-value outputs first; elsewhere it behaves as haircut.
    ///
    /// [`Address::Tx`]: paytrace_indexer::Address::Tx
    Tiho,
}

impl Model {
    /// The lower-case name used by the CLI and JSON.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Poison => "poison",
            Self::Haircut => "haircut",
            Self::Fifo => "fifo",
            Self::Lifo => "lifo",
            Self::Tiho => "tiho",
        }
    }

    /// Whether tainted value is conserved (everything but poison).
    pub const fn conserves(&self) -> bool {
        !matches!(self, Self::Poison)
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown model name.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown taint model {0:?}: expected poison, haircut, fifo, lifo or tiho")]
pub struct ModelParseError(pub String);

impl FromStr for Model {
    type Err = ModelParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "poison" => Ok(Self::Poison),
            "haircut" => Ok(Self::Haircut),
            "fifo" => Ok(Self::Fifo),
            "lifo" => Ok(Self::Lifo),
            "tiho" => Ok(Self::Tiho),
            _ => Err(ModelParseError(s.to_owned())),
        }
    }
}

/// A run of value units that are all tainted or all clean (FIFO/LIFO lots).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Segment {
    /// How much.
    pub amount: Amount,
    /// Whether these units are tainted.
    pub tainted: bool,
}

/// What an outgoing transfer carries: its tainted amount and, for lot models, the ordered
/// segments it consists of (oldest units first).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Carry {
    /// Tainted part of the transfer.
    pub tainted: Amount,
    /// For FIFO/LIFO: the transfer's units as segments, oldest first.
    pub segments: Option<Vec<Segment>>,
}

impl Carry {
    /// A transfer carrying no taint.
    pub fn clean() -> Self {
        Self::default()
    }

    /// A transfer of `amount` that is entirely tainted.
    pub fn full(amount: Amount) -> Self {
        Self {
            tainted: amount,
            segments: None,
        }
    }
}

/// Result of a debit: what left and whether the balance had to be clamped.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Debit {
    /// What the outgoing transfer carries.
    pub carry: Carry,
    /// The transfer exceeded the known balance (history before the index).
    pub clamped: bool,
}

/// The state of one (address, asset) under a model.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Holding {
    /// Poison: the balance and whether the address has received taint.
    Poison {
        /// Known balance.
        balance: Amount,
        /// Received tainted value at some point.
        poisoned: bool,
    },
    /// Haircut: the balance and its tainted part (`tainted <= balance`).
    Haircut {
        /// Known balance.
        balance: Amount,
        /// Tainted part of it.
        tainted: Amount,
    },
    /// FIFO/LIFO: the balance as segments in arrival order (front = oldest).
    Lots {
        /// Segments, adjacent ones of equal taint merged.
        segments: VecDeque<Segment>,
        /// Consume from the newest end.
        lifo: bool,
    },
}

fn add(a: Amount, b: Amount) -> Result<Amount, TraceError> {
    a.checked_add(b).map_err(TraceError::from)
}

fn sub(a: Amount, b: Amount) -> Result<Amount, TraceError> {
    a.checked_sub(b).map_err(TraceError::from)
}

/// `floor(a * b / c)` exactly (512-bit intermediate); `c` must be non-zero and the result must
/// fit 256 bits (it does whenever `a <= c` or `b <= c`).
pub fn mul_div_floor(a: Amount, b: Amount, c: Amount) -> Result<Amount, TraceError> {
    if c.is_zero() {
        return Err(TraceError::Arithmetic("division by zero".into()));
    }
    if a.is_zero() || b.is_zero() {
        return Ok(Amount::ZERO);
    }
    if b == c {
        return Ok(a);
    }
    if a == c {
        return Ok(b);
    }
    // Fast path: both factors fit 64 bits, so the product fits 128 (the usual case: amounts
    // below 1.8e19 raw units).
    if let (Ok(x), Ok(y), Ok(z)) = (
        u64::try_from(a.raw()),
        u64::try_from(b.raw()),
        u128::try_from(c.raw()),
    ) {
        let q = (u128::from(x) * u128::from(y)) / z;
        return Ok(Amount::from_raw(U256::from(q)));
    }
    let p: U512 = a.raw().widening_mul(b.raw());
    let q = p / U512::from(c.raw());
    let limbs = q.as_limbs();
    if limbs[4..].iter().any(|&l| l != 0) {
        return Err(TraceError::Arithmetic(format!(
            "{a} * {b} / {c} does not fit 256 bits"
        )));
    }
    Ok(Amount::from_raw(U256::from_limbs([
        limbs[0], limbs[1], limbs[2], limbs[3],
    ])))
}

/// `floor(a * b / c)` and the remainder `(a * b) mod c`, exactly; see [`mul_div_floor`].
pub fn mul_div_rem(a: Amount, b: Amount, c: Amount) -> Result<(Amount, U512), TraceError> {
    if c.is_zero() {
        return Err(TraceError::Arithmetic("division by zero".into()));
    }
    let p: U512 = a.raw().widening_mul(b.raw());
    let c512 = U512::from(c.raw());
    let rem = p % c512;
    Ok((mul_div_floor(a, b, c)?, rem))
}

fn push_back(segs: &mut VecDeque<Segment>, s: Segment) {
    if s.amount.is_zero() {
        return;
    }
    if let Some(last) = segs.back_mut()
        && last.tainted == s.tainted
    {
        // Cannot overflow: bounded by the total supply moved, checked elsewhere; fall back
        // to a separate segment if it would.
        if let Ok(sum) = last.amount.checked_add(s.amount) {
            last.amount = sum;
            return;
        }
    }
    segs.push_back(s);
}

fn push_front(segs: &mut VecDeque<Segment>, s: Segment) {
    if s.amount.is_zero() {
        return;
    }
    if let Some(first) = segs.front_mut()
        && first.tainted == s.tainted
        && let Ok(sum) = first.amount.checked_add(s.amount)
    {
        first.amount = sum;
        return;
    }
    segs.push_front(s);
}

/// The tainted total of some segments.
pub fn tainted_of(segs: &[Segment]) -> Result<Amount, TraceError> {
    segs.iter()
        .filter(|s| s.tainted)
        .try_fold(Amount::ZERO, |acc, s| add(acc, s.amount))
}

impl Holding {
    /// The empty state of `model`.
    pub fn new(model: Model) -> Self {
        match model {
            Model::Poison => Self::Poison {
                balance: Amount::ZERO,
                poisoned: false,
            },
            Model::Haircut | Model::Tiho => Self::Haircut {
                balance: Amount::ZERO,
                tainted: Amount::ZERO,
            },
            Model::Fifo | Model::Lifo => Self::Lots {
                segments: VecDeque::new(),
                lifo: model == Model::Lifo,
            },
        }
    }

    /// The tainted value currently held (poison: the whole balance once poisoned).
    pub fn tainted(&self) -> Result<Amount, TraceError> {
        match self {
            Self::Poison { balance, poisoned } => {
                Ok(if *poisoned { *balance } else { Amount::ZERO })
            }
            Self::Haircut { tainted, .. } => Ok(*tainted),
            Self::Lots { segments, .. } => segments
                .iter()
                .filter(|s| s.tainted)
                .try_fold(Amount::ZERO, |acc, s| add(acc, s.amount)),
        }
    }

    /// Whether nothing held is tainted and nothing received ever will be by this state alone
    /// (poison: not poisoned; haircut: no tainted part; lots: no tainted lot). A clean holding
    /// behaves like a fresh one credited with its balance.
    pub fn is_clean(&self) -> bool {
        match self {
            Self::Poison { poisoned, .. } => !poisoned,
            Self::Haircut { tainted, .. } => tainted.is_zero(),
            Self::Lots { segments, .. } => segments.iter().all(|s| !s.tainted),
        }
    }

    /// The known balance.
    pub fn balance(&self) -> Result<Amount, TraceError> {
        match self {
            Self::Poison { balance, .. } | Self::Haircut { balance, .. } => Ok(*balance),
            Self::Lots { segments, .. } => segments
                .iter()
                .try_fold(Amount::ZERO, |acc, s| add(acc, s.amount)),
        }
    }

    /// Receives `amount`, of which `carry` says what is tainted.
    ///
    /// For lot models a carry with segments appends them in order; without segments the transfer
    /// becomes one lot, tainted first if it is partly tainted.
    pub fn credit(&mut self, amount: Amount, carry: &Carry) -> Result<(), TraceError> {
        if carry.tainted > amount {
            return Err(TraceError::Arithmetic(format!(
                "tainted {} exceeds transfer amount {amount}",
                carry.tainted
            )));
        }
        match self {
            Self::Poison { balance, poisoned } => {
                *balance = add(*balance, amount)?;
                if !carry.tainted.is_zero() {
                    *poisoned = true;
                }
            }
            Self::Haircut { balance, tainted } => {
                *balance = add(*balance, amount)?;
                *tainted = add(*tainted, carry.tainted)?;
            }
            Self::Lots { segments, .. } => match &carry.segments {
                Some(segs) => {
                    for s in segs {
                        push_back(segments, *s);
                    }
                }
                None => {
                    push_back(
                        segments,
                        Segment {
                            amount: carry.tainted,
                            tainted: true,
                        },
                    );
                    push_back(
                        segments,
                        Segment {
                            amount: sub(amount, carry.tainted)?,
                            tainted: false,
                        },
                    );
                }
            },
        }
        Ok(())
    }

    /// Marks up to `amount` of value already credited as clean as tainted (a swap payout found
    /// tainted after it was processed): haircut raises the tainted part (capped at the balance),
    /// poison poisons, lots re-colour the newest clean units.
    pub fn retaint(&mut self, amount: Amount) -> Result<(), TraceError> {
        match self {
            Self::Poison { poisoned, .. } => *poisoned |= !amount.is_zero(),
            Self::Haircut { balance, tainted } => {
                *tainted = add(*tainted, amount)?.min(*balance);
            }
            Self::Lots { segments, .. } => {
                let mut need = amount;
                let mut out: VecDeque<Segment> = VecDeque::new();
                while let Some(mut seg) = segments.pop_back() {
                    if !need.is_zero() && !seg.tainted {
                        let take = seg.amount.min(need);
                        need = sub(need, take)?;
                        seg.amount = sub(seg.amount, take)?;
                        push_front(
                            &mut out,
                            Segment {
                                amount: take,
                                tainted: true,
                            },
                        );
                    }
                    push_front(&mut out, seg);
                }
                *segments = out;
            }
        }
        Ok(())
    }

    /// Sends `amount` of which `tainted` is decided by the caller (TIHO at a transaction node);
    /// the tainted part is capped at what is held. Only for the haircut state (TIHO's state
    /// everywhere); other states fall back to [`Holding::debit`].
    pub fn debit_exact(&mut self, amount: Amount, tainted: Amount) -> Result<Debit, TraceError> {
        match self {
            Self::Haircut {
                balance,
                tainted: held,
            } => {
                let clamped = amount > *balance;
                let t = tainted.min(*held).min(amount);
                *balance = balance.saturating_sub(amount);
                *held = sub(*held, t)?;
                if *held > *balance {
                    // Never hold more taint than balance (only on clamped histories).
                    *held = *balance;
                }
                Ok(Debit {
                    carry: Carry::full(t),
                    clamped,
                })
            }
            _ => self.debit(amount),
        }
    }

    /// Sends `amount`; returns what it carries. A debit beyond the known balance empties the
    /// holding, treats the missing part as clean and reports `clamped`.
    pub fn debit(&mut self, amount: Amount) -> Result<Debit, TraceError> {
        match self {
            Self::Poison { balance, poisoned } => {
                let clamped = amount > *balance;
                *balance = balance.saturating_sub(amount);
                let carry = if *poisoned {
                    Carry::full(amount)
                } else {
                    Carry::clean()
                };
                Ok(Debit { carry, clamped })
            }
            Self::Haircut { balance, tainted } => {
                if amount >= *balance {
                    let clamped = amount > *balance;
                    let t = *tainted;
                    *balance = Amount::ZERO;
                    *tainted = Amount::ZERO;
                    return Ok(Debit {
                        carry: Carry::full(t),
                        clamped,
                    });
                }
                let t = mul_div_floor(amount, *tainted, *balance)?;
                *balance = sub(*balance, amount)?;
                *tainted = sub(*tainted, t)?;
                Ok(Debit {
                    carry: Carry::full(t),
                    clamped: false,
                })
            }
            Self::Lots { segments, lifo } => {
                let mut need = amount;
                let mut taken: Vec<Segment> = Vec::new();
                while !need.is_zero() {
                    let next = if *lifo {
                        segments.pop_back()
                    } else {
                        segments.pop_front()
                    };
                    let Some(mut seg) = next else { break };
                    if seg.amount > need {
                        // Split the lot: take `need`, put the rest back where it was.
                        let rest = Segment {
                            amount: sub(seg.amount, need)?,
                            tainted: seg.tainted,
                        };
                        if *lifo {
                            segments.push_back(rest);
                        } else {
                            segments.push_front(rest);
                        }
                        seg.amount = need;
                    }
                    need = sub(need, seg.amount)?;
                    taken.push(seg);
                }
                if *lifo {
                    // Taken newest first; keep the units in their arrival order.
                    taken.reverse();
                }
                let clamped = !need.is_zero();
                let mut out: VecDeque<Segment> = VecDeque::new();
                for s in taken {
                    push_back(&mut out, s);
                }
                if clamped {
                    // Value from before the index: clean, and older than anything known.
                    push_front(
                        &mut out,
                        Segment {
                            amount: need,
                            tainted: false,
                        },
                    );
                }
                let segs: Vec<Segment> = out.into_iter().collect();
                Ok(Debit {
                    carry: Carry {
                        tainted: tainted_of(&segs)?,
                        segments: Some(segs),
                    },
                    clamped,
                })
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn a(v: u64) -> Amount {
        Amount::from_u64(v)
    }

    #[test]
    fn haircut_floor_and_conservation() {
        let mut h = Holding::new(Model::Haircut);
        h.credit(a(10), &Carry::full(a(10))).unwrap();
        h.credit(a(20), &Carry::clean()).unwrap();
        // 7 * 10 / 30 = 2.33 -> 2
        let d = h.debit(a(7)).unwrap();
        assert_eq!(d.carry.tainted, a(2));
        assert_eq!(h.tainted().unwrap(), a(8));
        assert_eq!(h.balance().unwrap(), a(23));
        // overdraft: all remaining taint leaves, flagged
        let d = h.debit(a(30)).unwrap();
        assert!(d.clamped);
        assert_eq!(d.carry.tainted, a(8));
        assert_eq!(h.balance().unwrap(), Amount::ZERO);
    }

    #[test]
    fn mul_div_does_not_overflow() {
        let max = Amount::from_raw(U256::MAX);
        assert_eq!(mul_div_floor(max, max, max).unwrap(), max);
        assert!(mul_div_floor(max, max, a(1)).is_err());
        assert!(mul_div_floor(a(1), a(1), Amount::ZERO).is_err());
    }

    #[test]
    fn fifo_and_lifo_split_lots() {
        for (lifo, expect) in [(false, 3u64), (true, 0)] {
            let mut h = Holding::new(if lifo { Model::Lifo } else { Model::Fifo });
            h.credit(a(3), &Carry::full(a(3))).unwrap(); // tainted lot, oldest
            h.credit(a(5), &Carry::clean()).unwrap();
            let d = h.debit(a(4)).unwrap();
            assert_eq!(d.carry.tainted, a(expect), "lifo={lifo}");
            assert_eq!(h.balance().unwrap(), a(4));
            assert_eq!(h.tainted().unwrap(), a(3 - expect));
        }
    }

    #[test]
    fn lifo_split_keeps_unit_order() {
        let mut h = Holding::new(Model::Lifo);
        h.credit(a(5), &Carry::clean()).unwrap();
        h.credit(a(2), &Carry::full(a(2))).unwrap();
        let d = h.debit(a(4)).unwrap();
        assert_eq!(
            d.carry.segments.unwrap(),
            vec![
                Segment {
                    amount: a(2),
                    tainted: false
                },
                Segment {
                    amount: a(2),
                    tainted: true
                }
            ]
        );
        assert_eq!(h.balance().unwrap(), a(3));
    }

    #[test]
    fn poison_taints_whole_transfers() {
        let mut h = Holding::new(Model::Poison);
        h.credit(a(100), &Carry::clean()).unwrap();
        assert_eq!(h.debit(a(10)).unwrap().carry.tainted, Amount::ZERO);
        h.credit(a(1), &Carry::full(a(1))).unwrap();
        assert_eq!(h.debit(a(50)).unwrap().carry.tainted, a(50));
    }
}
