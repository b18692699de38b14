//! Accumulator analysis: how wide each lookup's input can get, how wide it was on calibration
//! data, and how much work (multiply-accumulates, PBS) each stage costs per image.
use crate::model::{CodeRange, Model, Shape, Stage, MAX_STAGES};

/// Figures of one stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageReport {
    /// Stage kind: `conv`, `linear`, `sum-pool` or `lookup`.
    pub kind: &'static str,
    /// Output shape.
    pub output: Shape,
    /// Multiply-accumulates (linear stages) per image.
    pub macs: u64,
    /// Additions of a sum-pool per image.
    pub adds: u64,
    /// Lookups (PBS in TFHE) per image.
    pub pbs: u64,
    /// For linear stages: the worst-case accumulator range from the weights and input codes, and
    /// its signed width in bits.
    pub bound: Option<((i64, i64), u32)>,
    /// For lookups: the declared accumulator width, and the centre it is declared about.
    pub acc_bits: Option<(u32, i32)>,
    /// For lookups: the range observed on the calibration set and its width in bits.
    pub calibrated: Option<((i32, i32), u32)>,
}

/// Signed width of the smallest two's-complement integer holding `[lo, hi]`.
pub fn signed_bits(lo: i64, hi: i64) -> u32 {
    let mut b = 1;
    while lo < -(1i64 << (b - 1)) || hi > (1i64 << (b - 1)) - 1 {
        b += 1;
    }
    b
}

/// The centre and width of a lookup whose accumulator was observed in `[lo, hi]`: the narrowest
/// width that holds `[lo − c, hi − c]` for a centre `c` on a grid of `2^(width − 4)`, and centre 0
/// where centring would not save a bit. Rounding to `R` bits then keeps a step of
/// `2^(width − R)`: about twice as fine at a one-sided range such as a pool's `[0, 124]`.
///
/// The grid makes the centre insensitive to a stray extreme value, so the trainer (which measures
/// the same range through its fake-quantized network) and the compiler choose the same centre.
/// It also makes the centre a multiple of the rounding step whenever `R ≥ 4`: the rounding points
/// are then those of a rounding about zero one bit finer, and the centre only moves the window of
/// values the width holds.
pub fn centring(lo: i64, hi: i64) -> (i32, u32) {
    let plain = signed_bits(lo.min(hi), hi.max(lo));
    for bits in 1..plain {
        let half = 1i64 << (bits - 1);
        // The centres that fit: c ∈ [hi − half + 1, lo + half].
        let (c_lo, c_hi) = (hi - half + 1, lo + half);
        let grid = 1i64 << bits.saturating_sub(4);
        // The multiples of the grid in [c_lo, c_hi], if any; the one nearest their middle.
        let (first, last) = ((c_lo + grid - 1).div_euclid(grid) * grid, c_hi.div_euclid(grid) * grid);
        if first <= last {
            let middle = ((c_lo + c_hi).div_euclid(2) + grid / 2).div_euclid(grid) * grid;
            return (middle.clamp(first, last) as i32, bits);
        }
    }
    (0, plain)
}

/// The centre and width a lookup observed in `[lo, hi]` is declared with: [`centring`]'s if
/// `centred`, else the plain width about zero. The one choice the compiler and the trainer share.
pub fn declared_width(lo: i64, hi: i64, centred: bool) -> (i32, u32) {
    if centred {
        centring(lo, hi)
    } else {
        (0, signed_bits(lo, hi))
    }
}

fn dot_bound(w: &[i8], codes: CodeRange, o16: usize, out_c: usize) -> (i64, i64) {
    // Padding reads code 0, so the range of one operand includes 0.
    let (lo, hi) = (codes.lo.min(0) as i64, codes.hi.max(0) as i64);
    let per_block = w.len() / (o16 / 16);
    let (mut mn, mut mx) = (0i64, 0i64);
    for o in 0..out_c {
        let block = &w[(o / 16) * per_block..][..per_block];
        let (mut a, mut b) = (0i64, 0i64);
        for &v in block.chunks_exact(4).skip(o % 16).step_by(16).flatten() {
            let (p, q) = (v as i64 * lo, v as i64 * hi);
            a += p.min(q);
            b += p.max(q);
        }
        mn = mn.min(a);
        mx = mx.max(b);
    }
    (mn, mx)
}

/// The figures of every stage of `model`.
pub fn analyze(model: &Model<'_>) -> heapless::Vec<StageReport, MAX_STAGES> {
    let mut v = heapless::Vec::new();
    for (stage, info) in model.stages().iter().zip(model.info()) {
        let (i, o) = (info.input, info.output);
        let positions = (o.h * o.w) as u64;
        let o16 = o.c.div_ceil(16) * 16;
        let mut r = StageReport { kind: "", output: o, macs: 0, adds: 0, pbs: 0, bound: None, acc_bits: None, calibrated: None };
        match stage {
            Stage::Conv(c) => {
                r.kind = "conv";
                r.macs = positions * (o.c * c.kernel_h as usize * c.kernel_w as usize * i.c) as u64;
                let b = dot_bound(c.weights(), info.codes, o16, o.c);
                r.bound = Some((b, signed_bits(b.0, b.1)));
            }
            Stage::Linear(l) => {
                r.kind = "linear";
                r.macs = (o.c * i.len()) as u64;
                let b = dot_bound(l.weights(), info.codes, o16, o.c);
                r.bound = Some((b, signed_bits(b.0, b.1)));
            }
            Stage::SumPool(p) => {
                r.kind = "sum-pool";
                let k2 = (p.kernel as u64).pow(2);
                r.adds = positions * o.c as u64 * (k2 - 1);
                let (lo, hi) = (info.codes.lo.min(0) as i64 * k2 as i64, info.codes.hi.max(0) as i64 * k2 as i64);
                r.bound = Some(((lo, hi), signed_bits(lo, hi)));
            }
            Stage::Lookup(l) => {
                r.kind = "lookup";
                r.pbs = positions * o.c as u64;
                r.acc_bits = Some((l.acc_bits as u32, l.centre));
                let (lo, hi) = l.calibrated;
                r.calibrated = Some(((lo, hi), signed_bits(lo as i64, hi as i64)));
            }
        }
        let _ = v.push(r);
    }
    v
}

/// Totals over a model: (multiply-accumulates, PBS) per image.
pub fn totals(model: &Model<'_>) -> (u64, u64) {
    analyze(model).iter().fold((0, 0), |(m, p), r| (m + r.macs, p + r.pbs))
}

#[cfg(test)]
mod tests {
    use super::{centring, signed_bits};

    #[test]
    fn signed_widths() {
        assert_eq!(signed_bits(0, 0), 1);
        assert_eq!(signed_bits(-1, 0), 1);
        assert_eq!(signed_bits(0, 1), 2);
        assert_eq!(signed_bits(-128, 127), 8);
        assert_eq!(signed_bits(-129, 0), 9);
        assert_eq!(signed_bits(0, 128), 9);
    }

    #[test]
    fn centring_saves_the_bit_a_one_sided_range_wastes() {
        assert_eq!(centring(0, 124), (64, 7));
        assert_eq!(centring(-35675, 27407), (-4096, 16));
        assert_eq!(centring(-10036, 8225), (0, 15), "nearly symmetric: nothing to save");
        assert_eq!(centring(0, 930), (448, 10));
        assert_eq!(centring(5, 5), (5, 1));
        let mut rng = crate::rng::Rng::new(5, 0);
        for _ in 0..20_000 {
            let state = rng.next_u64();
            let lo = (state % 200_001) as i64 - 100_000;
            let hi = lo + ((state >> 20) % (1 << ((state >> 40) % 18))) as i64;
            let (c, bits) = centring(lo, hi);
            assert!(bits <= signed_bits(lo, hi), "[{lo}, {hi}]");
            assert_eq!(signed_bits(lo - c as i64, hi - c as i64).max(bits), bits, "[{lo}, {hi}] about {c}");
            assert!(1i64 << bits > hi - lo, "no width narrower than the span");
            assert!(c == 0 || bits < signed_bits(lo, hi), "centred only where it saves a bit");
        }
    }
}
