//! The error model of a programmable bootstrap, as the simulator injects it.
//!
//! TFHE computes a lookup on `x + ε`, where `x` is the accumulator in units of one rounded step
//! (`acc / 2^lsbs`) and `ε` is the ciphertext noise reaching the bootstrap's modulus switch
//! (dot-product growth, key switch, modulus switch), Gaussian with standard deviation `σ` steps.
//! The lookup reads the rounded value `floor(x + ε + 1/2)`. So:
//! - with *exact* rounding the low bits are already removed, `x` is an integer, and the lookup
//!   input is off by `j ≠ 0` with probability `P(|ε| ≥ 1/2) = erfc(1 / (2√2 σ))`: this is the
//!   per-PBS `p_error`, and `σ = 1 / (2 z)` with `z = √2 · erfcinv(p_error)`, as in Concrete;
//! - with *approximate* rounding (the modulus switch itself drops the low bits) `x` keeps its
//!   fraction `f ∈ (−1/2, 1/2)` and is off by one with probability `P(ε ≥ 1/2 − f) + P(ε < −1/2 − f)`.
//!   The TFHE encoding places each rounding point half-way between two integer accumulators, so
//!   `x = (acc + 1/2) / 2^lsbs` and no input sits exactly on a rounding point.
//!
//! [`NoiseModel`] is that function of `σ`; the TFHE backend derives `σ` from its parameters with
//! the formulas it documents, and checks on real ciphertexts that its errors follow this model.
use crate::model::MAX_STAGES;
use crate::rng::Rng;

/// Gaussian noise at a lookup input, `σ` in units of one rounded step (`σ = 0`: no noise).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseModel {
    sigma: f64,
}

/// Concrete's default per-PBS error probability, 2^-40: at this level the simulation is exact
/// integer evaluation for every practical purpose.
pub const DEFAULT_P_ERROR: f64 = 9.094_947_017_729_282e-13;

impl NoiseModel {
    /// No noise at all.
    pub const NONE: NoiseModel = NoiseModel { sigma: 0.0 };

    /// Noise of standard deviation `sigma` steps (negative or NaN is treated as zero).
    pub fn from_sigma(sigma: f64) -> Self {
        NoiseModel { sigma: if sigma > 0.0 { sigma } else { 0.0 } }
    }

    /// The noise whose exact-rounding error probability per PBS is `p_error` (0 < p < 1).
    pub fn from_p_error(p_error: f64) -> Self {
        if p_error.is_nan() || p_error <= 0.0 {
            return Self::NONE;
        }
        let p = p_error.min(0.999_999);
        Self::from_sigma(1.0 / (2.0 * core::f64::consts::SQRT_2 * erfcinv(p)))
    }

    /// Standard deviation in rounded steps.
    pub fn sigma(&self) -> f64 {
        self.sigma
    }

    /// Probability that an exactly rounded lookup input is off: `P(|ε| ≥ 1/2)`.
    pub fn p_error(&self) -> f64 {
        2.0 * self.tail(0.5)
    }

    /// `P(ε ≥ x)`.
    pub fn tail(&self, x: f64) -> f64 {
        if self.sigma == 0.0 {
            // No noise: ε = 0, and an input exactly on a rounding boundary keeps its exact rounding.
            return if x < 0.0 { 1.0 } else { 0.0 };
        }
        0.5 * libm::erfc(x / (self.sigma * core::f64::consts::SQRT_2))
    }

    /// Probability that the lookup input is off by exactly `j` for an input at fraction `f`.
    pub fn p_offset(&self, f: f64, j: i32) -> f64 {
        // floor(f + ε + 1/2) = j  ⇔  j − 1/2 − f ≤ ε < j + 1/2 − f
        let (lo, hi) = (j as f64 - 0.5 - f, j as f64 + 0.5 - f);
        self.tail(lo) - self.tail(hi)
    }
}

/// The noise at every lookup stage of a model: the same everywhere (a `p_error` target), or one
/// model per stage (what a TFHE parameter set gives, since each stage's noise depends on its
/// weights and rounding).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StageNoise {
    stages: [NoiseModel; MAX_STAGES],
}

impl StageNoise {
    /// The same noise at every stage.
    pub const fn uniform(noise: NoiseModel) -> Self {
        StageNoise { stages: [noise; MAX_STAGES] }
    }

    /// Noise `noise(i)` at stage `i`.
    pub fn per_stage(noise: impl Fn(usize) -> NoiseModel) -> Self {
        StageNoise { stages: core::array::from_fn(noise) }
    }

    /// The noise at stage `i`.
    pub fn at(&self, i: usize) -> NoiseModel {
        self.stages[i]
    }

    /// The largest exact-rounding error probability of any stage.
    pub fn max_p_error(&self) -> f64 {
        self.stages.iter().map(NoiseModel::p_error).fold(0.0, f64::max)
    }
}

impl From<NoiseModel> for StageNoise {
    fn from(noise: NoiseModel) -> Self {
        Self::uniform(noise)
    }
}

/// Inverse of the complementary error function on (0, 2), by bisection on `libm::erfc`
/// (called once per configuration, so simplicity beats speed).
pub fn erfcinv(p: f64) -> f64 {
    let (mut lo, mut hi) = (-30.0f64, 30.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if libm::erfc(mid) > p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Bins of the rounded-away fraction `f` for the approximate-rounding fast path.
pub const BINS: usize = 64;
/// Thresholds [`Sampler::prepare`] stores per bin edge.
const EDGE_WORDS: usize = 4;
/// `u64` words of the per-stage table [`Sampler::prepare`] fills.
pub const TABLE_WORDS: usize = EDGE_WORDS * (BINS + 1);

/// Draws the offsets of one image's lookup inputs. Deterministic for `(seed, image index)`.
#[derive(Debug, Clone)]
pub struct Sampler {
    rng: Rng,
    noise: NoiseModel,
    /// `ln(1 − p_error)`: the geometric law of the gap between errors of exactly rounded inputs.
    ln_keep: f64,
    /// Exactly rounded lookup inputs left before the next error.
    countdown: u64,
}

impl Sampler {
    /// The sampler of image `index`.
    pub fn new(noise: NoiseModel, seed: u64, index: u64) -> Self {
        let p = noise.p_error();
        let mut s = Sampler { rng: Rng::new(seed, index), noise, ln_keep: libm::log1p(-p), countdown: 0 };
        s.countdown = s.draw_gap();
        s
    }

    /// Switches to the noise of another stage. The gap to the next error is redrawn (the geometric
    /// law is memoryless, so this keeps the error statistics exact); no-op if the noise is the same.
    pub fn set_noise(&mut self, noise: NoiseModel) {
        if noise != self.noise {
            self.noise = noise;
            self.ln_keep = libm::log1p(-noise.p_error());
            self.countdown = self.draw_gap();
        }
    }

    /// The noise this sampler draws.
    pub fn noise(&self) -> NoiseModel {
        self.noise
    }

    fn draw_gap(&mut self) -> u64 {
        if self.ln_keep == 0.0 {
            return u64::MAX;
        }
        let g = libm::log(self.rng.open01()) / self.ln_keep;
        if g >= u64::MAX as f64 {
            u64::MAX
        } else {
            g as u64
        }
    }

    /// Errors among the next `n` exactly rounded lookup inputs: calls `hit(i, j)` for each input
    /// `i < n` that is off by `j`, in increasing `i`. Costs nothing per input when `p_error` is small.
    #[inline]
    pub fn exact_errors(&mut self, n: usize, mut hit: impl FnMut(usize, i32)) {
        let mut i = 0u64;
        while self.countdown < n as u64 - i {
            i += self.countdown;
            let j = self.error_offset();
            hit(i as usize, j);
            i += 1;
            self.countdown = self.draw_gap();
        }
        self.countdown -= n as u64 - i;
    }

    /// The offset of an exactly rounded input known to be off: random sign, magnitude `k ≥ 1`
    /// with `P(|j| ≥ k + 1 | |j| ≥ k) = P(ε ≥ k + 1/2) / P(ε ≥ k − 1/2)`.
    fn error_offset(&mut self) -> i32 {
        let sign = if self.rng.next_u64() >> 63 == 0 { 1 } else { -1 };
        let mut k = 1;
        while k < 1 << 20 {
            let (t_in, t_out) = (self.noise.tail(k as f64 - 0.5), self.noise.tail(k as f64 + 0.5));
            if t_in <= 0.0 || self.rng.open01() * t_in > t_out {
                break;
            }
            k += 1;
        }
        sign * k
    }

    /// Fills `table` for approximate rounding with this noise: for each bin edge
    /// `f_b = b / BINS − 1/2`, the `u64` thresholds `⌈P · 2^64⌉` of the probabilities that an input at
    /// `f_b` goes down by at least 1, by at least 2, up by at least 1 and up by at least 2
    /// (`P(ε < −1/2 − f_b)`, `P(ε < −3/2 − f_b)`, `P(ε ≥ 1/2 − f_b)`, `P(ε ≥ 3/2 − f_b)`). Each is
    /// monotonic in `f`, so a bin's two edges bound it for every `f` in the bin: most inputs, moved
    /// by one or not at all, are decided by comparisons, without a special function.
    pub fn prepare(&self, table: &mut [u64]) {
        for (b, edge) in table[..TABLE_WORDS].chunks_exact_mut(EDGE_WORDS).enumerate() {
            let f = b as f64 / BINS as f64 - 0.5;
            let t = |x: f64| to_threshold(self.noise.tail(x));
            edge.copy_from_slice(&[t(0.5 + f), t(1.5 + f), t(0.5 - f), t(1.5 - f)]);
        }
    }

    /// The offset of one approximately rounded input whose dropped bits are `low` of `lsbs`
    /// (`lsbs ≥ 1`), using the `table` of [`Sampler::prepare`]. The modulus switch reads an integer
    /// accumulator at the middle of its unit, so the fraction is `f = (low + 1/2) / 2^lsbs − 1/2`:
    /// no accumulator sits on a rounding point, and without noise this is the exact rounding.
    ///
    /// One uniform `u` decides: down by `k` or more when `u` is below that probability, up by `k`
    /// or more when `!u` is below that one. The bin's bounds settle it when `u` falls clear of
    /// them; the exact probabilities at `f` are computed only in the narrow band between a bin's
    /// bounds, and for moves of two or more.
    #[inline]
    pub fn approximate_offset(&mut self, low: u32, lsbs: u32, table: &[u64]) -> i32 {
        let u = self.rng.next_u64();
        let v = !u;
        let bin = ((((2 * low + 1) as u64) << 5) >> lsbs) as usize;
        let (lo, hi) = (&table[EDGE_WORDS * bin..][..EDGE_WORDS], &table[EDGE_WORDS * (bin + 1)..][..EDGE_WORDS]);
        // Down-probabilities fall as f grows, up-probabilities rise: the bin's upper bounds are
        // `lo[0]`, `lo[1]` (down) and `hi[2]`, `hi[3]` (up), its lower bounds `hi[0]` and `lo[2]`.
        if u >= lo[0] && v >= hi[2] {
            return 0;
        }
        if u < hi[0] && u >= lo[1] {
            return -1;
        }
        if v < lo[2] && v >= hi[3] && u >= lo[0] {
            return 1;
        }
        let f = (2 * low + 1) as f64 / (1u64 << (lsbs + 1)) as f64 - 0.5;
        let (uf, vf) = (u as f64 * TWO_M64, v as f64 * TWO_M64);
        let mut j = 0;
        // j ≤ −k ⇔ ε < −(k − 1/2) − f ⇔ u < P(ε ≥ k − 1/2 + f)
        while j > -(1 << 20) && uf < self.noise.tail(-(j as f64) + 0.5 + f) {
            j -= 1;
        }
        if j != 0 {
            return j;
        }
        // j ≥ k ⇔ ε ≥ k − 1/2 − f ⇔ v < P(ε ≥ k − 1/2 − f)
        while j < 1 << 20 && vf < self.noise.tail(j as f64 + 0.5 - f) {
            j += 1;
        }
        j
    }
}

const TWO_M64: f64 = 1.0 / 18_446_744_073_709_551_616.0;

fn to_threshold(p: f64) -> u64 {
    let x = libm::ceil(p * 18_446_744_073_709_551_616.0);
    if x >= 18_446_744_073_709_551_615.0 {
        u64::MAX
    } else {
        x as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p_error_round_trips_through_sigma() {
        for p in [1e-1, 1e-3, 2f64.powi(-20), DEFAULT_P_ERROR] {
            let n = NoiseModel::from_p_error(p);
            assert!((n.p_error() / p - 1.0).abs() < 1e-6, "p {p}: got {}", n.p_error());
        }
        // Concrete's z for 2^-40 is about 7.1: σ = 1 / (2z).
        let s = NoiseModel::from_p_error(DEFAULT_P_ERROR).sigma();
        assert!((1.0 / (2.0 * s) - 7.13).abs() < 0.05, "z = {}", 1.0 / (2.0 * s));
    }

    #[test]
    fn exact_error_rate_matches_p_error() {
        let noise = NoiseModel::from_p_error(0.05);
        let mut s = Sampler::new(noise, 3, 0);
        let (n, mut hits, mut twos) = (400_000usize, 0usize, 0usize);
        for _ in 0..(n / 1000) {
            s.exact_errors(1000, |_, j| {
                hits += 1;
                twos += (j.abs() >= 2) as usize;
            });
        }
        let rate = hits as f64 / n as f64;
        assert!((rate - 0.05).abs() < 0.003, "rate {rate}");
        let p2 = 2.0 * noise.tail(1.5) / noise.p_error();
        assert!((twos as f64 / hits as f64 - p2).abs() < 0.01 + p2);
    }

    #[test]
    fn approximate_offsets_follow_the_model() {
        // Low noise (moves by one, decided from the table's bounds or, in a bin's narrow band,
        // exactly) and high noise (moves by two and more, always computed exactly).
        for (p_error, seed) in [(0.01, 9), (0.6, 4)] {
            let noise = NoiseModel::from_p_error(p_error);
            let mut s = Sampler::new(noise, seed, 1);
            let mut table = [0u64; TABLE_WORDS];
            s.prepare(&mut table);
            let lsbs = 8;
            for low in [0u32, 20, 100, 127, 128, 200, 255] {
                let f = (low as f64 + 0.5) / 256.0 - 0.5;
                let n = 200_000;
                let mut seen = [0usize; 5];
                for _ in 0..n {
                    seen[(s.approximate_offset(low, lsbs, &table).clamp(-2, 2) + 2) as usize] += 1;
                }
                for (k, &count) in seen.iter().enumerate() {
                    let j = k as i32 - 2;
                    let p = match j {
                        -2 => noise.tail(1.5 + f),
                        2 => noise.tail(1.5 - f),
                        _ => noise.p_offset(f, j),
                    };
                    let tol = 5.0 * (p * (1.0 - p) / n as f64).sqrt() + 1e-4;
                    assert!((count as f64 / n as f64 - p).abs() < tol, "p_error {p_error}, low {low}: {count} offsets of {j} against {p}");
                }
            }
        }
    }

    #[test]
    fn no_noise_means_no_errors() {
        let mut s = Sampler::new(NoiseModel::NONE, 1, 1);
        s.exact_errors(1 << 30, |_, _| panic!("no error expected"));
        let mut table = [0u64; TABLE_WORDS];
        s.prepare(&mut table);
        for low in 0..256 {
            assert_eq!(s.approximate_offset(low, 8, &table), 0);
        }
    }
}
