//! Rounding an accumulator before its lookup, and the lookup on the rounded value.
//!
//! A lookup stage declares its accumulator width `B` ([`crate::model::Lookup::acc_bits`]). Keeping
//! `R` bits drops `lsbs = B − R` low bits: `r = (acc + 2^(lsbs−1)) >> lsbs` (round half up, as the
//! reference), so `r` ranges over `[−2^(R−1), 2^(R−1)]` and a PBS needs a table of `2^R + 1` entries
//! `T[r] = f(r · 2^lsbs)`. Since `f` is stored as thresholds, `T[r] = lo + #{t : ⌈t / 2^lsbs⌉ ≤ r}`.
//!
//! An accumulator outside its declared width would wrap around in TFHE; the simulator saturates it
//! and counts it, so a run reports whether calibration chose wide enough accumulators.

/// How the low bits are removed before a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum RoundingMode {
    /// Exactly rounded (extra PBS in TFHE), then the PBS noise applies to the rounded value.
    #[default]
    Exact,
    /// Rounded by the bootstrap's own modulus switch: the noise applies before rounding, so an
    /// input near a rounding boundary can land on either neighbour.
    Approximate,
}

/// The rounding of one lookup stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageRounding {
    /// Declared accumulator width.
    pub acc_bits: u32,
    /// Low bits dropped.
    pub lsbs: u32,
}

impl StageRounding {
    /// Rounding of a `acc_bits`-wide accumulator to `keep` bits (`None`: keep all).
    pub fn new(acc_bits: u8, keep: Option<u8>) -> Self {
        let acc_bits = acc_bits as u32;
        let lsbs = keep.map_or(0, |r| acc_bits.saturating_sub(r as u32));
        StageRounding { acc_bits, lsbs }
    }

    /// The accumulator values the declared width holds.
    #[inline]
    pub fn acc_range(&self) -> (i32, i32) {
        let m = 1i32 << (self.acc_bits - 1);
        (-m, m - 1)
    }

    /// The rounded values a lookup of this stage must accept.
    #[inline]
    pub fn rounded_range(&self) -> (i32, i32) {
        let (lo, hi) = self.acc_range();
        (self.round_clamped(lo), self.round_clamped(hi))
    }

    #[inline]
    fn half(&self) -> i32 {
        (1i32 << self.lsbs) >> 1
    }

    /// Rounds an accumulator already inside [`Self::acc_range`].
    #[inline]
    pub fn round_clamped(&self, acc: i32) -> i32 {
        (acc + self.half()) >> self.lsbs
    }

    /// Saturates to the declared width and rounds.
    #[inline]
    pub fn round(&self, acc: i32) -> i32 {
        let (lo, hi) = self.acc_range();
        self.round_clamped(acc.clamp(lo, hi))
    }

    /// The dropped bits of the saturated accumulator, offset so that `low / 2^lsbs − 1/2` is the
    /// fraction `x − round(x)` of `x = acc / 2^lsbs`.
    #[inline]
    pub fn low_bits(&self, acc: i32) -> u32 {
        let (lo, hi) = self.acc_range();
        ((acc.clamp(lo, hi) + self.half()) as u32) & ((1u32 << self.lsbs) - 1)
    }

    /// The output code of lookup `l`, channel `ch` of `channels`, for the rounded input `r`: the
    /// table a PBS of this stage holds (`T[r] = f(r · 2^lsbs)`).
    pub fn lookup(&self, l: &crate::model::Lookup<'_>, r: i32, ch: usize, channels: usize) -> i8 {
        l.apply(r << self.lsbs, ch, channels)
    }

    /// A lookup threshold in the rounded domain: `acc' = r · 2^lsbs ≥ t ⇔ r ≥ ⌈t / 2^lsbs⌉`.
    #[inline]
    pub fn threshold(&self, t: i32) -> i32 {
        (-((-(t as i64)) >> self.lsbs)) as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_round_half_up_and_thresholds_commute() {
        let r = StageRounding::new(10, Some(6));
        assert_eq!(r.lsbs, 4);
        assert_eq!(r.round(7), 0);
        assert_eq!(r.round(8), 1);
        assert_eq!(r.round(-8), 0);
        assert_eq!(r.round(-9), -1);
        assert_eq!(r.rounded_range(), (-32, 32));
        assert_eq!(r.round(5000), 32);
        for t in -600..600 {
            for acc in -512..512 {
                let rr = r.round(acc);
                assert_eq!(rr << r.lsbs >= t, rr >= r.threshold(t), "t {t} acc {acc}");
            }
        }
        let none = StageRounding::new(12, None);
        assert_eq!((none.lsbs, none.round(1234), none.threshold(-77)), (0, 1234, -77));
    }

    #[test]
    fn low_bits_give_the_fraction() {
        let r = StageRounding::new(12, Some(8));
        for acc in -2048..2048 {
            let x = acc as f64 / 16.0;
            let f = r.low_bits(acc) as f64 / 16.0 - 0.5;
            assert!((x - r.round(acc) as f64 - f).abs() < 1e-12);
        }
    }
}
