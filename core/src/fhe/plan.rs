//! How a compiled model is laid out on the torus under one parameter set: the encoding of every
//! accumulator, the lookup tables, and the noise each lookup sees. Pure arithmetic, no keys.
//!
//! Encoding: an accumulator of declared width `B` (values in `[−2^(B−1), 2^(B−1))`) is encrypted
//! as `acc · Δ` with `Δ = 2^(63−B)`, so it fills half the torus; the codes a linear stage reads are
//! encoded at its output's `Δ` (each lookup's table writes the next accumulator's scale directly),
//! so linear stages need no rescaling.
//!
//! Lookup: keeping `R = B − lsbs` bits, a rounded step owns `k = N / 2^R` of the `2N` slots the
//! modulus switch reads. A plaintext offset of `(2^(lsbs−1) + 1/2 − centre) · Δ` places every
//! rounding point half-way between two integer accumulators, so the box the bootstrap reads is the
//! round-half-up of the accumulator less the lookup's centre (off by one near a rounding point when
//! the noise says so: approximate rounding, the simulator's model). The `2^R + 1` rounded values
//! `[−2^(R−1), 2^(R−1)]` fit the `2N` negacyclic slots because the table stores `f(r) − c` with
//! `c = (f(lo) + f(hi)) / 2`: then the top box and the negated bottom box hold the same coefficients,
//! and `c · Δ'` is added back after the bootstrap. Beyond either end (an accumulator outside its
//! width, or noise at an end) the bootstrap reads the mirror `f(lo) + f(hi) − f(r ∓ 2^R)`, which
//! the slots above `hi` hold ([`StageRounding::lookup`], so the simulator reads it too).
use super::params::{Bootstrap, ParamSet};
use crate::analysis;
use crate::kernels::reference::Taps;
use crate::model::{Lookup, Model, Stage};
use crate::noise::{NoiseModel, StageNoise};
use crate::rounding::StageRounding;
use crate::{RoundingMode, RunConfig};

/// One lookup stage on the torus.
#[derive(Debug, Clone, PartialEq)]
pub struct LookupPlan {
    /// Rounding of the stage.
    pub rounding: StageRounding,
    /// Scale of the accumulator it reads.
    pub delta_in: u64,
    /// Scale its output codes are written at (the next accumulator's).
    pub delta_out: u64,
    /// Slots per rounded step.
    pub box_slots: usize,
    /// Error of the lookup input, in rounded steps.
    pub sigma_steps: f64,
    /// The bootstrapping key it uses (which sets the noise of its outputs).
    pub bootstrap: Bootstrap,
}

/// One stage on the torus.
#[derive(Debug, Clone, PartialEq)]
pub enum StagePlan {
    /// A linear stage: leveled sums, no bootstrap.
    Linear,
    /// A lookup: one bootstrap per element.
    Lookup(LookupPlan),
}

/// A model under one parameter set and rounding.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The parameter set.
    pub params: ParamSet,
    /// Bits kept before each lookup (`None`: all).
    pub rounding_bits: Option<u8>,
    /// Scale of the input codes.
    pub input_delta: u64,
    /// Scale of the final accumulators.
    pub output_delta: u64,
    /// Number of final accumulators (the model's classes): what a client expects back.
    pub outputs: usize,
    /// Per stage.
    pub stages: Vec<StagePlan>,
}

/// Why a model does not fit a parameter set.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)] // the fields are named for what they hold
pub enum PlanError {
    /// A lookup keeps more bits than the set's polynomial holds.
    TooPrecise { stage: usize, bits: u32, params: ParamSet },
    /// An accumulator wider than the 64-bit torus can carry with its sign.
    TooWide { stage: usize, bits: u32 },
    /// No set meets the error target.
    NoSet { p_error: f64 },
}

impl core::fmt::Display for PlanError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PlanError::TooPrecise { stage, bits, params } => write!(
                f,
                "stage {stage} keeps {bits} bits before its lookup, more than parameter set {params} holds \
                 (log2 N bits): lower --rounding-bits or pick a larger set"
            ),
            PlanError::TooWide { stage, bits } => write!(f, "stage {stage}: a {bits}-bit accumulator does not fit the 64-bit torus"),
            PlanError::NoSet { p_error } => write!(
                f,
                "no tfhe-rs parameter set keeps every lookup's error probability at or below {p_error:e} at this rounding: \
                 lower --rounding-bits or raise --p-error"
            ),
        }
    }
}

impl std::error::Error for PlanError {}

fn delta(bits: u32, stage: usize) -> Result<u64, PlanError> {
    if !(1..=62).contains(&bits) {
        return Err(PlanError::TooWide { stage, bits });
    }
    Ok(1u64 << (63 - bits))
}

/// The per-lookup error probability the TFHE commands and the web demo target by default when
/// choosing a parameter set and its per-stage bootstraps.
pub const DEFAULT_P_ERROR_TARGET: f64 = 0.05;

impl Plan {
    /// The plan a client and a server agree on without talking: the model's own rounding and
    /// per-stage bootstraps at [`DEFAULT_P_ERROR_TARGET`] ([`Plan::for_set`]).
    pub fn for_model(model: &Model<'_>, params: ParamSet) -> Result<Plan, PlanError> {
        Self::for_set(model, params, model.rounding_bits(), DEFAULT_P_ERROR_TARGET)
    }

    /// Lays `model` out under `params`, keeping `rounding_bits` before each lookup, every lookup
    /// with the set's standard bootstrap.
    pub fn new(model: &Model<'_>, params: ParamSet, rounding_bits: Option<u8>) -> Result<Plan, PlanError> {
        Self::with_bootstraps(model, params, rounding_bits, |_| Bootstrap::Standard)
    }

    /// The cheapest per-stage choice of bootstraps under `params`: a lookup's bootstrap sets only
    /// the noise of the next lookup, so lookup `i` gets the fine key when, with the standard one,
    /// the next lookup's error probability is above `p_error` and at least twice what the fine
    /// key gives (where the key switch and modulus switch dominate, the fine key buys nothing).
    pub fn for_set(model: &Model<'_>, params: ParamSet, rounding_bits: Option<u8>, p_error: f64) -> Result<Plan, PlanError> {
        let standard = Self::new(model, params, rounding_bits)?;
        let all_fine = Self::with_bootstraps(model, params, rounding_bits, |_| Bootstrap::Fine)?;
        let p = |plan: &Plan, i: usize| match &plan.stages[i] {
            StagePlan::Lookup(l) => NoiseModel::from_sigma(l.sigma_steps).p_error(),
            StagePlan::Linear => 0.0,
        };
        let mut fine = Vec::new();
        let mut feeding = None;
        for (i, stage) in standard.stages.iter().enumerate() {
            if matches!(stage, StagePlan::Lookup(_)) {
                if let Some(prev) = feeding.filter(|_| p(&standard, i) > p_error.max(2.0 * p(&all_fine, i))) {
                    fine.push(prev);
                }
                feeding = Some(i);
            }
        }
        if fine.is_empty() {
            return Ok(standard);
        }
        Self::with_bootstraps(model, params, rounding_bits, |i| if fine.contains(&i) { Bootstrap::Fine } else { Bootstrap::Standard })
    }

    /// The layout with lookup stage `i` using the bootstrapping key `bootstrap(i)`.
    pub fn with_bootstraps(model: &Model<'_>, params: ParamSet, rounding_bits: Option<u8>, bootstrap: impl Fn(usize) -> Bootstrap) -> Result<Plan, PlanError> {
        let report = analysis::analyze(model);
        let stages = model.stages();
        // The scale of the accumulators of stage i: that of the next lookup, or of the output.
        let last = stages.len() - 1;
        let final_bits = report[last].bound.map_or(32, |(_, bits)| bits);
        let acc_delta = |i: usize| -> Result<u64, PlanError> {
            match stages[i..].iter().position(|s| matches!(s, Stage::Lookup(_))) {
                Some(j) => match &stages[i + j] {
                    Stage::Lookup(l) => delta(l.acc_bits as u32, i + j),
                    _ => unreachable!(),
                },
                None => delta(final_bits, last),
            }
        };
        let log_n = params.polynomial_size().0.trailing_zeros();
        let mut plan =
            Plan { params, rounding_bits, input_delta: acc_delta(0)?, output_delta: delta(final_bits, last)?, outputs: model.classes(), stages: Vec::new() };
        let mut variance = params.fresh_variance();
        let mut shape = model.input_shape();
        for (i, (stage, info)) in stages.iter().zip(model.info()).enumerate() {
            match stage {
                Stage::Lookup(l) => {
                    let rounding = StageRounding::of(l, rounding_bits);
                    let bits = rounding.acc_bits - rounding.lsbs;
                    if bits > log_n {
                        return Err(PlanError::TooPrecise { stage: i, bits, params });
                    }
                    let box_slots = 1usize << (log_n - bits);
                    let sigma_steps = params.lookup_sigma_slots(variance) / box_slots as f64;
                    let delta_out = if i == last { plan.output_delta } else { acc_delta(i + 1)? };
                    let bootstrap = bootstrap(i);
                    plan.stages.push(StagePlan::Lookup(LookupPlan {
                        rounding,
                        delta_in: delta(rounding.acc_bits, i)?,
                        delta_out,
                        box_slots,
                        sigma_steps,
                        bootstrap,
                    }));
                    variance = params.pbs_variance(bootstrap);
                }
                linear => {
                    let taps = Taps::of_stage(linear, shape).expect("a linear stage");
                    variance *= taps.max_weight_norm().powi(2);
                    plan.stages.push(StagePlan::Linear);
                }
            }
            shape = info.output;
        }
        Ok(plan)
    }

    /// The cheapest parameter set (with its per-stage bootstraps, [`Plan::for_set`]) under which
    /// every lookup's exact-rounding error probability is at most `p_error`.
    pub fn cheapest(model: &Model<'_>, rounding_bits: Option<u8>, p_error: f64) -> Result<Plan, PlanError> {
        let mut last_err = PlanError::NoSet { p_error };
        for params in ParamSet::ALL {
            match Plan::for_set(model, params, rounding_bits, p_error) {
                Ok(plan) if plan.noise().max_p_error() <= p_error => return Ok(plan),
                Ok(_) => {}
                Err(e @ PlanError::TooWide { .. }) => return Err(e),
                Err(e) => last_err = e,
            }
        }
        Err(match last_err {
            PlanError::TooPrecise { .. } => last_err,
            _ => PlanError::NoSet { p_error },
        })
    }

    /// The simulator run that reproduces this plan's TFHE evaluation: its rounding, removed by the
    /// modulus switch (approximate), and each lookup's noise. `base` gives the seed and kernels.
    pub fn simulation(&self, base: RunConfig) -> RunConfig {
        RunConfig { rounding_bits: self.rounding_bits, mode: RoundingMode::Approximate, noise: self.noise(), ..base }
    }

    /// The noise of every lookup, for the simulator: the same model the evaluator's errors follow.
    pub fn noise(&self) -> StageNoise {
        StageNoise::per_stage(|i| match self.stages.get(i) {
            Some(StagePlan::Lookup(l)) => NoiseModel::from_sigma(l.sigma_steps),
            _ => NoiseModel::NONE,
        })
    }

    /// Number of bootstraps per image.
    pub fn bootstraps(&self, model: &Model<'_>) -> u64 {
        self.bootstraps_of(model, Bootstrap::Standard) + self.bootstraps_of(model, Bootstrap::Fine)
    }

    /// Number of bootstraps per image with the `kind` key.
    pub fn bootstraps_of(&self, model: &Model<'_>, kind: Bootstrap) -> u64 {
        self.stages
            .iter()
            .zip(model.info())
            .filter(|(s, _)| matches!(s, StagePlan::Lookup(l) if l.bootstrap == kind))
            .map(|(_, info)| info.output.len() as u64)
            .sum()
    }

    /// Whether some lookup uses the fine bootstrapping key (so the server key must hold it).
    pub fn uses_fine(&self) -> bool {
        self.stages.iter().any(|s| matches!(s, StagePlan::Lookup(l) if l.bootstrap == Bootstrap::Fine))
    }
}

impl LookupPlan {
    /// The plaintext added to an accumulator before its key switch (see the module docs), less
    /// the stage's centre: the bootstrap reads `acc − centre`.
    pub fn input_offset(&self) -> u64 {
        let half = (1u64 << self.rounding.lsbs) >> 1;
        ((2 * half + 1) * (self.delta_in / 2)).wrapping_sub((self.rounding.centre as i64 as u64).wrapping_mul(self.delta_in))
    }

    /// The table of channel `ch` (of `channels`) for a polynomial of `n` coefficients, and the
    /// plaintext to add to the bootstrap's output.
    pub fn table(&self, l: &Lookup<'_>, ch: usize, channels: usize, n: usize) -> (Vec<u64>, u64) {
        let (lo, hi) = self.rounding.rounded_range();
        let f = |r: i32| self.rounding.lookup(l, r, ch, channels) as i64;
        let (f_lo, f_hi) = (f(lo), f(hi));
        let half_delta = self.delta_out / 2;
        // (f(r) − c) · Δ' = (2 f(r) − f(lo) − f(hi)) · Δ' / 2, exact since Δ' is even; on the
        // torus, i.e. modulo 2^64 (a code may exceed what its scale holds when the next stage
        // cannot see it, e.g. behind zero weights).
        let coef = |r: i32| ((2 * f(r) - f_lo - f_hi) as u64).wrapping_mul(half_delta);
        // Slot s holds box r = s / k of [0, 2^R); above hi that is the mirror, which is what makes
        // the bootstrap's negated read of the negative boxes give the table there.
        let table = (0..n).map(|s| coef((s / self.box_slots) as i32)).collect();
        (table, ((f_lo + f_hi) as u64).wrapping_mul(half_delta))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::ModelBuilder;
    use crate::fhe::eval::decode;
    use crate::model::Shape;

    /// Input → 1×1 conv → lookup (8-bit accumulators; staircases whose last step is at the top end,
    /// so the mirror beyond the bottom differs from the bottom end) → linear.
    fn model() -> Vec<u8> {
        let input = Shape { h: 2, w: 2, c: 1 };
        let mut b = ModelBuilder::new("mirror", input, &[core::array::from_fn(|p| (p as i32 / 128) as i8)]);
        b.conv(&[1, -1, 2], 3, 1, 1, 1, 1, 0);
        let t: Vec<Vec<i32>> = (0..3).map(|c| (0..9).map(|l| 127 - (8 - l) * (25 + c)).collect()).collect();
        b.lookup(8, -4, 5, &t, (-128, 127));
        b.linear(&[1; 2 * 12], 2, Shape { h: 2, w: 2, c: 3 });
        b.output(&[1.0; 2], &[0.0; 2]);
        b.to_bytes()
    }

    #[test]
    fn the_bootstrap_reads_what_the_simulators_lookup_gives_in_every_box() {
        let bytes = model();
        let model = Model::from_bytes(&bytes).unwrap();
        let Stage::Lookup(l) = &model.stages()[1] else { panic!("stage 1 is the lookup") };
        for bits in [None, Some(6), Some(4)] {
            let plan = Plan::new(&model, ParamSet::M2C2, bits).unwrap();
            let StagePlan::Lookup(lp) = &plan.stages[1] else { panic!("stage 1 is the lookup") };
            let n = ParamSet::M2C2.polynomial_size().0;
            let boxes = (2 * n / lp.box_slots) as i32;
            let (lo, hi) = lp.rounding.rounded_range();
            for ch in 0..3 {
                let (table, after) = lp.table(l, ch, 3, n);
                // The blind rotation reads slot s of the negacyclic polynomial: coefficient s, or
                // minus coefficient s + N for s in [−N, 0).
                let read = |s: i64| if s >= 0 { table[s as usize] } else { table[(s + n as i64) as usize].wrapping_neg() };
                for r in -boxes / 2..boxes / 2 {
                    for s in [r as i64 * lp.box_slots as i64, (r as i64 + 1) * lp.box_slots as i64 - 1] {
                        let got = decode(read(s).wrapping_add(after), lp.delta_out);
                        assert_eq!(got, lp.rounding.lookup(l, r, ch, 3) as i32, "bits {bits:?}, channel {ch}, box {r}, slot {s}");
                    }
                }
                // Two boxes below the bottom end the mirror is not the end's value (where a
                // saturating lookup would read): the boxes beyond the table are really tested.
                let below = lp.rounding.lookup(l, lo - 2, ch, 3);
                assert_ne!(below, lp.rounding.lookup(l, lo, ch, 3), "bits {bits:?}, channel {ch}: {lo}..={hi}");
            }
        }
    }
}
