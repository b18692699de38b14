//! The error every lookup reads, measured on real ciphertexts and set beside the noise model the
//! simulator injects — the check that [`Plan::noise`](super::Plan::noise) describes what TFHE does.
//!
//! An observer holding the client key follows an evaluation (a [`Trace`]). At each lookup it
//! decrypts the slot the bootstrap will read (after key switch and modulus switch) and records its
//! error and whether the box read differs from the exact rounding. The blind rotation is exact on
//! that slot, so the observer knows the output phase the bootstrap must produce (the table at the
//! slot); the decrypted output minus that is the bootstrap's own output noise — measured without
//! rounding it to the output scale, which would fold noise into the codes when the two are close.
//! Those outputs (the codes TFHE really computed) go through the next linear stages in the clear,
//! giving the exact accumulator every later lookup input should encode, and its modelled variance
//! from the weights that actually made it (the plan bounds it with the worst channel's weight
//! norm; here each element has its own, padding borders included).
use super::eval::{decode, Evaluator, Progress, Trace};
use super::keys::ClientKey;
use super::plan::{LookupPlan, StagePlan};
use super::wire::FheError;
use crate::kernels::reference::{self, Taps};
use crate::model::{Shape, Stage};
use crate::noise::NoiseModel;
use std::sync::{Mutex, RwLock};
use std::time::Instant;
use tfhe::core_crypto::prelude::*;

/// One lookup stage's error on the images measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LookupNoise {
    /// Stage index in the model.
    pub stage: usize,
    /// Lookups measured.
    pub lookups: usize,
    /// The plan's σ for the stage (worst channel: what the simulator injects), in rounded steps.
    pub plan_sigma: f64,
    /// Σ over lookups of the modelled variance of each (its own weights), in steps².
    pub model_square_sum: f64,
    /// Σ over lookups of the measured squared error, in steps².
    pub measured_square_sum: f64,
    /// Lookups whose bootstrap read another box than the exact rounding of the accumulator.
    pub off: usize,
    /// How many the model expects: Σ over lookups of each one's probability of being off.
    pub expected_off: f64,
    /// The bootstrap's output variance by tfhe-rs's formula (torus², 1 = the whole torus).
    pub output_model_variance: f64,
    /// Σ over the stage's outputs of the measured squared output error (torus²).
    pub output_square_sum: f64,
    /// Wall-clock seconds from the end of the previous lookup stage to the end of this one: the
    /// leveled linear stages before it, its key switches and bootstraps (and the observer's
    /// decryptions and clear arithmetic, a small part).
    pub seconds: f64,
}

impl LookupNoise {
    /// Root mean square of the modelled per-lookup σ, in rounded steps.
    pub fn model_sigma(&self) -> f64 {
        (self.model_square_sum / self.lookups.max(1) as f64).sqrt()
    }

    /// Measured variance of the bootstrap's outputs (torus²): against
    /// [`LookupNoise::output_model_variance`], where the formula is conservative.
    pub fn output_variance(&self) -> f64 {
        self.output_square_sum / self.lookups.max(1) as f64
    }

    /// Root mean square of the measured errors, in rounded steps.
    pub fn measured_sigma(&self) -> f64 {
        (self.measured_square_sum / self.lookups.max(1) as f64).sqrt()
    }

    /// Adds another image's measurement of the same stage.
    pub fn merge(&mut self, other: &LookupNoise) {
        self.lookups += other.lookups;
        self.model_square_sum += other.model_square_sum;
        self.measured_square_sum += other.measured_square_sum;
        self.output_square_sum += other.output_square_sum;
        self.off += other.off;
        self.expected_off += other.expected_off;
        self.seconds += other.seconds;
    }
}

/// The clear values of the tensor between two stages and the modelled noise variance of each.
struct Clear {
    values: Vec<i32>,
    variance: Vec<f64>,
    shape: Shape,
}

/// The tables of the lookup stage under way and the output phase each element must get.
#[derive(Default)]
struct Tables {
    /// Per channel: the test polynomial's coefficients and the plaintext added after the bootstrap.
    per_channel: Vec<(Vec<u64>, u64)>,
    /// Per element: the phase its bootstrap must output.
    expected: Vec<u64>,
}

impl Tables {
    fn new(model: &crate::Model<'_>, lp: &LookupPlan, stage: usize, n: usize) -> Self {
        let Stage::Lookup(l) = &model.stages()[stage] else { unreachable!("a lookup stage") };
        let info = &model.info()[stage];
        let channels = info.output.c;
        Tables { per_channel: (0..channels).map(|c| lp.table(l, c, channels, n)).collect(), expected: vec![0; info.output.len()] }
    }

    /// What the bootstrap of channel `ch` outputs for `slot` of `2N`: the negacyclic test
    /// polynomial read at the slot, then the added plaintext.
    fn output(&self, ch: usize, slot: usize) -> u64 {
        let (table, after) = &self.per_channel[ch];
        let n = table.len();
        let read = if slot < n { table[slot] } else { table[slot - n].wrapping_neg() };
        read.wrapping_add(*after)
    }
}

/// The observer: the client key, what it knows in the clear, and the running tallies.
struct Meter<'a> {
    client: &'a ClientKey,
    eval: &'a Evaluator<'a, 'a, 'a>,
    clear: RwLock<Clear>,
    tables: Mutex<Tables>,
    stages: Mutex<Vec<LookupNoise>>,
    /// When the previous lookup stage ended.
    started: Mutex<Instant>,
}

impl Meter<'_> {
    fn lookup_plan(&self, stage: usize) -> &LookupPlan {
        match &self.eval.plan().stages[stage] {
            StagePlan::Lookup(lp) => lp,
            StagePlan::Linear => unreachable!("only lookups have key-switched inputs"),
        }
    }

    /// Opens the tally and the tables of `stage` if it is a lookup.
    fn open(&self, stage: usize) {
        if let Some(StagePlan::Lookup(lp)) = self.eval.plan().stages.get(stage) {
            let n = self.eval.plan().params.polynomial_size().0;
            *self.tables.lock().expect("meter lock") = Tables::new(self.eval.model(), lp, stage, n);
            self.stages.lock().expect("meter lock").push(LookupNoise { stage, plan_sigma: lp.sigma_steps, ..Default::default() });
        }
    }
}

impl Trace for Meter<'_> {
    fn lookup_input(&self, stage: usize, element: usize, switched: LweCiphertextView<'_, u64>) {
        let lp = self.lookup_plan(stage);
        let params = self.eval.plan().params;
        let (acc, variance) = {
            let clear = self.clear.read().expect("meter lock");
            (clear.values[element], clear.variance[element])
        };
        let n = params.polynomial_size().0 as f64;
        let k = lp.box_slots as f64;
        // Noiseless position in slots of 2N: (acc·Δ + offset)·2N/2^64, minus the centered switch's half slot.
        let ideal = (acc as f64 * lp.delta_in as f64 + lp.input_offset() as f64) * 2.0 * n / 2f64.powi(64) - 0.5;
        let slot = self.client.lookup_slot(switched);
        {
            let mut tables = self.tables.lock().expect("meter lock");
            let channels = tables.per_channel.len();
            tables.expected[element] = tables.output(element % channels, slot);
        }
        let d = (slot as f64 - ideal).rem_euclid(2.0 * n);
        let d = if d > n { d - 2.0 * n } else { d };
        // Box read against the exact round-half-up, modulo the boxes of the torus.
        let signed = if slot as f64 >= n { slot as i64 - 2 * n as i64 } else { slot as i64 };
        let boxes = (2.0 * n / k) as i64;
        let off = (signed.div_euclid(lp.box_slots as i64) - lp.rounding.round(acc) as i64).rem_euclid(boxes) != 0;
        let sigma = params.lookup_sigma_slots(variance) / k;
        let fraction = (lp.rounding.low_bits(acc) as f64 + 0.5) / (1u64 << lp.rounding.lsbs) as f64 - 0.5;
        let p_off = 1.0 - NoiseModel::from_sigma(sigma).p_offset(fraction, 0);
        let mut stages = self.stages.lock().expect("meter lock");
        let s = stages.iter_mut().find(|s| s.stage == stage).expect("stage opened by stage_output");
        s.lookups += 1;
        s.model_square_sum += sigma * sigma;
        s.measured_square_sum += (d / k) * (d / k);
        s.off += off as usize;
        s.expected_off += p_off;
    }

    fn stage_output(&self, stage: usize, outputs: LweCiphertextListView<'_, u64>) {
        let model = self.eval.model();
        let plan = self.eval.plan();
        let seconds = self.started.lock().expect("meter lock").elapsed().as_secs_f64();
        let mut clear = self.clear.write().expect("meter lock");
        let next = match &model.stages()[stage] {
            Stage::Lookup(_) => {
                let lp = self.lookup_plan(stage);
                let tables = std::mem::take(&mut *self.tables.lock().expect("meter lock"));
                // The codes TFHE computed (exact: the table value at the slot read), and the
                // bootstrap's output noise around them.
                let values: Vec<i32> = tables.expected.iter().map(|&e| decode(e, lp.delta_out)).collect();
                let squares: f64 = outputs
                    .iter()
                    .zip(&tables.expected)
                    .map(|(ct, &e)| (self.client.decrypt_phase(ct).wrapping_sub(e) as i64 as f64 / 2f64.powi(64)).powi(2))
                    .sum();
                let model_variance = plan.params.pbs_variance(lp.bootstrap);
                if let Some(s) = self.stages.lock().expect("meter lock").iter_mut().find(|s| s.stage == stage) {
                    (s.seconds, s.output_square_sum, s.output_model_variance) = (seconds, squares, model_variance);
                }
                *self.started.lock().expect("meter lock") = Instant::now();
                Clear { values, variance: vec![model_variance; outputs.entity_count()], shape: clear.shape }
            }
            linear => {
                let taps = Taps::of_stage(linear, clear.shape).expect("a linear stage");
                let shape = taps.output();
                let mut values = vec![0i32; shape.len()];
                taps.apply(&clear.values, &mut values);
                let variance = (0..shape.len())
                    .map(|o| {
                        let mut v = 0.0;
                        taps.for_each(o, |j, w| v += (w * w) as f64 * clear.variance[j]);
                        v
                    })
                    .collect();
                Clear { values, variance, shape }
            }
        };
        *clear = next;
        drop(clear);
        self.open(stage + 1);
    }
}

/// Encrypts `image` under `client`, evaluates it with `eval` (whose server key must be
/// `client`'s) and returns, per lookup stage, the measured and modelled errors.
pub fn measure(client: &ClientKey, eval: &Evaluator<'_, '_, '_>, image: &[u8], progress: Progress<'_>) -> Result<Vec<LookupNoise>, FheError> {
    let (model, plan) = (eval.model(), eval.plan());
    let encrypted = client.encrypt_image(model, plan, image)?;
    let values = reference::input_codes(model, image);
    let variance = vec![plan.params.fresh_variance(); values.len()];
    let meter = Meter {
        client,
        eval,
        clear: RwLock::new(Clear { values, variance, shape: model.input_shape() }),
        tables: Mutex::new(Tables::default()),
        stages: Mutex::new(Vec::new()),
        started: Mutex::new(Instant::now()),
    };
    meter.open(0);
    eval.run_traced(&encrypted, progress, &meter)?;
    Ok(meter.stages.into_inner().expect("meter lock"))
}
