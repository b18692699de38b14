//! Rounding an accumulator before its lookup, and the lookup on the rounded value.
//!
//! A lookup stage declares a centre `c` and a width `B` ([`crate::model::Lookup::centre`],
//! [`crate::model::Lookup::acc_bits`]): its accumulator lies in `c + [−2^(B−1), 2^(B−1))`, so an
//! accumulator observed in `[0, 124]` needs 7 bits about `c = 64` where it would need 8 about zero.
//! Keeping `R` bits drops `lsbs = B − R` low bits of `x = acc − c`: `r = (x + 2^(lsbs−1)) >> lsbs`
//! (round half up, as the reference), so `r` ranges over `[−2^(R−1), 2^(R−1)]` and a PBS needs a
//! table of `2^R + 1` entries `T[r] = f(r · 2^lsbs + c)`. Since `f` is stored as thresholds,
//! `T[r] = lo + #{t : ⌈(t − c) / 2^lsbs⌉ ≤ r}`. In TFHE the centre is a plaintext subtraction, so a
//! bit saved by centring is precision kept at no cost.
//!
//! On the torus the bootstrap reads one of `2^(R+1)` boxes, `[−2^R, 2^R)`: the table fills half of
//! them and the other half holds its negacyclic mirror (see `fhe::plan`). An accumulator outside its
//! declared width wraps into that mirror, and so does a rounded value the noise pushes past an end
//! of the table. [`StageRounding::round`] and [`StageRounding::lookup`] follow TFHE there too, so the
//! simulator computes what TFHE computes even then (and counts the accumulators outside their width,
//! so a run reports whether calibration chose wide enough ones).

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
    /// Declared accumulator width, about the centre.
    pub acc_bits: u32,
    /// Subtracted from the accumulator before rounding.
    pub centre: i32,
    /// Low bits dropped.
    pub lsbs: u32,
}

impl StageRounding {
    /// Rounding of an accumulator `acc_bits` wide about `centre` to `keep` bits (`None`: keep all).
    pub fn new(acc_bits: u8, centre: i32, keep: Option<u8>) -> Self {
        let acc_bits = acc_bits as u32;
        let lsbs = keep.map_or(0, |r| acc_bits.saturating_sub(r as u32));
        StageRounding { acc_bits, centre, lsbs }
    }

    /// The rounding of lookup `l` to `keep` bits.
    pub fn of(l: &crate::model::Lookup<'_>, keep: Option<u8>) -> Self {
        Self::new(l.acc_bits, l.centre, keep)
    }

    /// The accumulator values the declared width holds.
    #[inline]
    pub fn acc_range(&self) -> (i32, i32) {
        let m = 1i32 << (self.acc_bits - 1);
        (self.centre.wrapping_sub(m), self.centre.wrapping_add(m - 1))
    }

    /// The rounded values a lookup of this stage must accept: the table's ends.
    #[inline]
    pub fn rounded_range(&self) -> (i32, i32) {
        let m = 1i32 << (self.acc_bits - 1);
        ((self.half() - m) >> self.lsbs, (m - 1 + self.half()) >> self.lsbs)
    }

    #[inline]
    fn half(&self) -> i32 {
        (1i32 << self.lsbs) >> 1
    }

    /// The box of the torus the bootstrap reads for accumulator `acc`: `acc − centre` rounded half
    /// up to `R` bits, wrapped into `[−2^R, 2^R)` as the torus wraps it. Inside the declared width
    /// that is a value of [`Self::rounded_range`].
    #[inline]
    pub fn round(&self, acc: i32) -> i32 {
        // Wrapping i32 arithmetic is exact here: 2^32 is a multiple of the torus' 2^(B+1).
        self.wrap(acc.wrapping_sub(self.centre).wrapping_add(self.half()) >> self.lsbs)
    }

    /// A rounded value (moved by noise, say) as the box of the torus it lands in: `r` modulo
    /// `2^(R+1)`, in `[−2^R, 2^R)`.
    #[inline]
    pub fn wrap(&self, r: i32) -> i32 {
        // R + 1 ≤ 32 since a model's accumulators have at most 31 bits.
        let shift = 31 - (self.acc_bits - self.lsbs);
        (r << shift) >> shift
    }

    /// The dropped bits of the accumulator, offset so that `low / 2^lsbs − 1/2` is the fraction
    /// `x − round(x)` of `x = (acc − centre) / 2^lsbs`.
    #[inline]
    pub fn low_bits(&self, acc: i32) -> u32 {
        (acc.wrapping_sub(self.centre).wrapping_add(self.half()) as u32) & ((1u32 << self.lsbs) - 1)
    }

    /// The output code of lookup `l`, channel `ch` of `channels`, for the box `r` the bootstrap
    /// reads: inside [`Self::rounded_range`] `[lo, hi]` the table, `T[r] = f(r · 2^lsbs + centre)`; beyond
    /// it, in `[−2^R, 2^R)`, the negacyclic mirror a TFHE table holds there,
    /// `T[lo] + T[hi] − T[r ∓ 2^R]` (between `T[lo]` and `T[hi]`, since `f` is a staircase).
    pub fn lookup(&self, l: &crate::model::Lookup<'_>, r: i32, ch: usize, channels: usize) -> i8 {
        let (lo, hi) = self.rounded_range();
        let t = |r: i32| l.apply((r << self.lsbs).wrapping_add(self.centre), ch, channels) as i16;
        let period = 1i32 << (self.acc_bits - self.lsbs);
        let mirror = |r: i32| t(lo) + t(hi) - t(r);
        (if r < lo {
            mirror(r + period)
        } else if r > hi {
            mirror(r - period)
        } else {
            t(r)
        }) as i8
    }

    /// A lookup threshold in the rounded domain: `acc' = r · 2^lsbs + c ≥ t ⇔ r ≥ ⌈(t − c) / 2^lsbs⌉`.
    #[inline]
    pub fn threshold(&self, t: i32) -> i32 {
        (-((self.centre as i64 - t as i64) >> self.lsbs)) as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_round_half_up_and_thresholds_commute() {
        let r = StageRounding::new(10, 0, Some(6));
        assert_eq!(r.lsbs, 4);
        assert_eq!(r.round(7), 0);
        assert_eq!(r.round(8), 1);
        assert_eq!(r.round(-8), 0);
        assert_eq!(r.round(-9), -1);
        assert_eq!(r.rounded_range(), (-32, 32));
        // Beyond the declared width the torus wraps (mod 2^11): 5000 ≡ 904, which rounds to 57.
        assert_eq!(r.round(5000), 57);
        for acc in -5000..5000 {
            let torus = (acc + 1024i32).rem_euclid(2048) - 1024;
            assert_eq!(r.round(acc), r.round(torus), "acc {acc}");
            assert!((-64..64).contains(&r.round(acc)));
            let inside = (-512..512).contains(&acc);
            let (lo, hi) = r.rounded_range();
            assert!(!inside || (lo..=hi).contains(&r.round(acc)), "acc {acc}");
        }
        assert_eq!((r.wrap(32 + 1), r.wrap(-32 - 1), r.wrap(64), r.wrap(-65)), (33, -33, -64, 63));
        for t in -600..600 {
            for acc in -512..512 {
                let rr = r.round(acc);
                assert_eq!(rr << r.lsbs >= t, rr >= r.threshold(t), "t {t} acc {acc}");
            }
        }
        let none = StageRounding::new(12, 0, None);
        assert_eq!((none.lsbs, none.round(1234), none.threshold(-77)), (0, 1234, -77));
    }

    #[test]
    fn a_centred_rounding_rounds_the_accumulator_less_its_centre() {
        let (plain, centred) = (StageRounding::new(7, 0, Some(5)), StageRounding::new(7, 64, Some(5)));
        assert_eq!((centred.acc_range(), centred.rounded_range()), ((0, 127), plain.rounded_range()));
        for acc in -300..300 {
            assert_eq!(centred.round(acc), plain.round(acc - 64), "acc {acc}");
            assert_eq!(centred.low_bits(acc), plain.low_bits(acc - 64), "acc {acc}");
            if (0..128).contains(&acc) {
                let r = centred.round(acc);
                for t in -200..300 {
                    assert_eq!((r << centred.lsbs) + 64 >= t, r >= centred.threshold(t), "t {t} acc {acc}");
                }
            }
        }
    }

    #[test]
    fn low_bits_give_the_fraction() {
        let r = StageRounding::new(12, 0, Some(8));
        for acc in -2048..2048 {
            let x = acc as f64 / 16.0;
            let f = r.low_bits(acc) as f64 / 16.0 - 0.5;
            assert!((x - r.round(acc) as f64 - f).abs() < 1e-12);
        }
    }
}
