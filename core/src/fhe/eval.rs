//! Encryption of an image, evaluation of the circuit on ciphertexts, decryption of the logits.
//!
//! The server walks the same stages as the simulator: linear stages through the shared
//! [`Taps`] (a ciphertext times a clear integer weight is a wrapping scalar product), lookups as
//! one key switch and one programmable bootstrap per element, in batches (see [`super::batch`])
//! on all cores.
use super::batch;
use super::keys::{ClientKey, KeyId, ServerKey};
use super::params::Bootstrap;
use super::plan::{LookupPlan, Plan, StagePlan};
use super::wire::{self, FheError};
use crate::kernels::reference::{self, Taps};
use crate::model::{Model, Stage};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tfhe::core_crypto::algorithms::slice_algorithms::slice_wrapping_add_scalar_mul_assign;
use tfhe::core_crypto::fft_impl::fft64::crypto::bootstrap::batch_blind_rotate_assign_scratch;
use tfhe::core_crypto::fft_impl::fft64::math::fft::Fft;
use tfhe::core_crypto::prelude::*;

/// What binds a ciphertext to the circuit it was encrypted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Binding {
    key: KeyId,
    params: super::ParamSet,
    /// Scale of the codes (input) or accumulators (output): differs between models and roundings.
    delta: u64,
}

/// The quantized image, encrypted (seeded: only the bodies travel).
#[derive(Serialize, Deserialize)]
pub struct EncryptedImage {
    binding: Binding,
    codes: SeededLweCiphertextListOwned<u64>,
}

/// The final accumulators, encrypted.
#[derive(Serialize, Deserialize)]
pub struct EncryptedOutput {
    binding: Binding,
    logits: LweCiphertextListOwned<u64>,
}

impl EncryptedImage {
    /// Serialized, as uploaded.
    pub fn to_bytes(&self) -> Vec<u8> {
        wire::encode(wire::Kind::Image, self)
    }
    /// Parses an encrypted image of at most `limit` bytes.
    pub fn from_bytes(bytes: &[u8], limit: usize) -> Result<Self, FheError> {
        wire::decode(wire::Kind::Image, bytes, limit)
    }
    /// The client key it was encrypted under.
    pub fn key_id(&self) -> KeyId {
        self.binding.key
    }
}

impl EncryptedOutput {
    /// Serialized, as downloaded.
    pub fn to_bytes(&self) -> Vec<u8> {
        wire::encode(wire::Kind::Output, self)
    }
    /// Parses an encrypted result of at most `limit` bytes.
    pub fn from_bytes(bytes: &[u8], limit: usize) -> Result<Self, FheError> {
        wire::decode(wire::Kind::Output, bytes, limit)
    }
}

impl core::fmt::Debug for EncryptedImage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "EncryptedImage {{ {:?}, {} codes }}", self.binding, self.codes.entity_count())
    }
}

impl core::fmt::Debug for EncryptedOutput {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "EncryptedOutput {{ {:?}, {} accumulators }}", self.binding, self.logits.entity_count())
    }
}

fn check(what: &'static str, got: Binding, want: Binding) -> Result<(), FheError> {
    if got.key != want.key {
        return Err(FheError::ForeignKey { what, expected: want.key, actual: got.key });
    }
    if got.params != want.params || got.delta != want.delta {
        return Err(FheError::Mismatch(format!(
            "{what} was made for another model, rounding or parameter set (parameters {}, scale 2^{}; expected {}, 2^{})",
            got.params.name(),
            got.delta.trailing_zeros(),
            want.params.name(),
            want.delta.trailing_zeros()
        )));
    }
    Ok(())
}

impl ClientKey {
    /// Quantizes `image` (channel planes of pixels) with the model's input table and encrypts the
    /// codes under the big key, at the scale `plan` gives the first stage.
    pub fn encrypt_image(&self, model: &Model<'_>, plan: &Plan, image: &[u8]) -> Result<EncryptedImage, FheError> {
        if image.len() != model.image_len() {
            return Err(FheError::Mismatch(format!("image has {} bytes, the model takes {}", image.len(), model.image_len())));
        }
        if plan.params != self.params {
            return Err(FheError::Mismatch(format!("plan uses parameters {}, this key {}", plan.params.name(), self.params.name())));
        }
        let codes = reference::input_codes(model, image);
        let plain = PlaintextList::from_container(codes.iter().map(|&c| (c as i64 as u64).wrapping_mul(plan.input_delta)).collect::<Vec<_>>());
        let mut seeder = new_seeder();
        let big = self.big();
        let mut list = SeededLweCiphertextList::new(
            0u64,
            big.lwe_dimension().to_lwe_size(),
            LweCiphertextCount(codes.len()),
            seeder.seed().into(),
            CiphertextModulus::new_native(),
        );
        encrypt_seeded_lwe_ciphertext_list(&big, &mut list, &plain, self.params.big_noise(), seeder.as_mut());
        Ok(EncryptedImage { binding: Binding { key: self.id, params: self.params, delta: plan.input_delta }, codes: list })
    }

    /// Decrypts the final accumulators (one per class), as the simulator's `run` returns them.
    /// A result of another shape than the plan's is refused: it comes from the server, and its
    /// parsed dimensions are whatever the bytes said.
    pub fn decrypt(&self, plan: &Plan, out: &EncryptedOutput) -> Result<Vec<i32>, FheError> {
        check("encrypted result", out.binding, Binding { key: self.id, params: self.params, delta: plan.output_delta })?;
        let size = self.params.big_dimension().to_lwe_size().0;
        if out.logits.lwe_size().0 != size
            || out.logits.as_ref().len() != plan.outputs * size
            || out.logits.ciphertext_modulus() != CiphertextModulus::new_native()
        {
            return Err(FheError::Mismatch(format!(
                "encrypted result holds {} values in ciphertexts of size {} (modulus {}), the model gives {} ciphertexts of size {size} (native modulus)",
                out.logits.as_ref().len(),
                out.logits.lwe_size().0,
                out.logits.ciphertext_modulus(),
                plan.outputs
            )));
        }
        Ok(out.logits.iter().map(|ct| decode(self.decrypt_phase(ct), plan.output_delta)).collect())
    }

    /// The raw phase (message plus noise) of a big-key ciphertext.
    pub fn decrypt_phase(&self, ct: LweCiphertextView<'_, u64>) -> u64 {
        decrypt_lwe_ciphertext(&self.big(), &ct).0
    }

    /// Where the bootstrap of a lookup reads a key-switched ciphertext: its slot among `2N`,
    /// after the same centered modulus switch. For measuring the noise in tests and reports.
    pub fn lookup_slot(&self, switched: LweCiphertextView<'_, u64>) -> usize {
        let log = log_slots(self.params);
        let ms = batch::Switched::new(switched, log);
        let dot = ms.mask().zip(self.small.as_ref()).fold(0usize, |acc, (a, &s)| acc.wrapping_add(a * s as usize));
        ms.body().wrapping_sub(dot) & ((1 << log.0) - 1)
    }
}

/// The integer a phase encodes at scale `delta`: the nearest multiple, signed.
pub fn decode(phase: u64, delta: u64) -> i32 {
    (phase.wrapping_add(delta / 2) as i64 >> delta.trailing_zeros()) as i32
}

fn log_slots(params: super::ParamSet) -> CiphertextModulusLog {
    CiphertextModulusLog(params.polynomial_size().0.ilog2() as usize + 1)
}

/// Lookups bootstrapped together by one thread: enough that reading each key row once per batch
/// makes the bootstraps bound by arithmetic rather than memory (measured: 16, 32 and 64 at 2 threads,
/// all 1.4× faster per blind rotation than one at a time; BENCHMARKS.md), few enough to keep all
/// cores busy on the smallest stages.
const BATCH: usize = 16;

/// Progress of an evaluation: `(stage index, elements done, elements of the stage)`.
pub type Progress<'a> = &'a (dyn Fn(usize, usize, usize) + Sync);

/// What an evaluation shows an observer that holds the client key (tests and noise reports;
/// a server never has one). Called from all evaluation threads.
pub trait Trace: Sync {
    /// A lookup's input after its key switch, before the modulus switch and blind rotation.
    fn lookup_input(&self, stage: usize, element: usize, switched: LweCiphertextView<'_, u64>);
    /// Every output of a stage, under the big key, in the model's element order.
    fn stage_output(&self, stage: usize, outputs: LweCiphertextListView<'_, u64>);
}

/// The trace of a plain run: nothing is looked at.
struct NoTrace;

impl Trace for NoTrace {
    fn lookup_input(&self, _: usize, _: usize, _: LweCiphertextView<'_, u64>) {}
    fn stage_output(&self, _: usize, _: LweCiphertextListView<'_, u64>) {}
}

/// Runs a model on ciphertexts with one server key.
pub struct Evaluator<'k, 'm, 'a> {
    key: &'k ServerKey,
    model: &'m Model<'a>,
    plan: Plan,
}

impl<'k, 'm, 'a> Evaluator<'k, 'm, 'a> {
    /// Checks that `plan` is for this key's parameters.
    pub fn new(key: &'k ServerKey, model: &'m Model<'a>, plan: Plan) -> Result<Self, FheError> {
        if plan.params != key.params {
            return Err(FheError::Mismatch(format!("plan uses parameters {}, the server key {}", plan.params.name(), key.params.name())));
        }
        if plan.uses_fine() && key.bootstrap_key(Bootstrap::Fine).is_none() {
            return Err(FheError::Mismatch("the plan uses the fine bootstrap and the server key lacks its key: make the key for this plan".into()));
        }
        Ok(Evaluator { key, model, plan })
    }

    /// The plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The model.
    pub fn model(&self) -> &'m Model<'a> {
        self.model
    }

    /// Checks that `image` was encrypted under this key, for this model, rounding and parameter
    /// set, and has the model's shape: what [`Evaluator::run`] checks first, for servers that
    /// refuse a request before starting it.
    pub fn check_image(&self, image: &EncryptedImage) -> Result<(), FheError> {
        let want = Binding { key: self.key.id, params: self.key.params, delta: self.plan.input_delta };
        check("encrypted image", image.binding, want)?;
        let size = self.key.params.big_dimension().to_lwe_size().0;
        // The client's bytes set these; tfhe-rs asserts on them (a panic) rather than refuse.
        let codes = &image.codes;
        if codes.lwe_size().0 != size || codes.entity_count() != self.model.input_shape().len() || codes.ciphertext_modulus() != CiphertextModulus::new_native()
        {
            return Err(FheError::Mismatch(format!(
                "encrypted image holds {} ciphertexts of size {} (modulus {}), the model takes {} of size {size} (native modulus)",
                codes.entity_count(),
                codes.lwe_size().0,
                codes.ciphertext_modulus(),
                self.model.input_shape().len()
            )));
        }
        Ok(())
    }

    /// Evaluates every stage on the encrypted image.
    pub fn run(&self, image: &EncryptedImage, progress: Progress<'_>) -> Result<EncryptedOutput, FheError> {
        self.run_traced(image, progress, &NoTrace)
    }

    /// [`Evaluator::run`], showing `trace` every lookup input before its bootstrap and every
    /// stage's outputs (what [`super::measure`] decrypts to measure the noise).
    pub fn run_traced(&self, image: &EncryptedImage, progress: Progress<'_>, trace: &dyn Trace) -> Result<EncryptedOutput, FheError> {
        self.check_image(image)?;
        let size = self.key.params.big_dimension().to_lwe_size().0;
        let mut x = image.codes.as_view().par_decompress_into_lwe_ciphertext_list().into_container();
        let mut shape = self.model.input_shape();
        for (i, ((stage, info), sp)) in self.model.stages().iter().zip(self.model.info()).zip(&self.plan.stages).enumerate() {
            let mut out = vec![0u64; info.output.len() * size];
            match (stage, sp) {
                (Stage::Lookup(l), StagePlan::Lookup(lp)) => self.lookup(i, l, lp, info.output.c, &x, &mut out, progress, trace),
                (linear, StagePlan::Linear) => {
                    let taps = Taps::of_stage(linear, shape).expect("a linear stage");
                    out.par_chunks_mut(size).enumerate().for_each(|(o, acc)| {
                        taps.for_each(o, |j, w| slice_wrapping_add_scalar_mul_assign(acc, &x[j * size..][..size], w as i64 as u64));
                    });
                    progress(i, info.output.len(), info.output.len());
                }
                _ => return Err(FheError::Mismatch(format!("stage {i}: the plan was made for another model"))),
            }
            trace.stage_output(i, LweCiphertextList::from_container(&out[..], LweSize(size), CiphertextModulus::new_native()));
            x = out;
            shape = info.output;
        }
        let logits = LweCiphertextList::from_container(x, LweSize(size), CiphertextModulus::new_native());
        Ok(EncryptedOutput { binding: Binding { key: self.key.id, params: self.key.params, delta: self.plan.output_delta }, logits })
    }

    /// One bootstrap per element: offset, key switch, centered modulus switch, blind rotation of
    /// the channel's table, sample extraction, output offset; in batches of [`BATCH`] elements
    /// (see [`super::batch`]), the batches on all cores.
    #[allow(clippy::too_many_arguments)]
    fn lookup(
        &self,
        stage: usize,
        l: &crate::model::Lookup<'_>,
        lp: &LookupPlan,
        channels: usize,
        x: &[u64],
        out: &mut [u64],
        progress: Progress<'_>,
        trace: &dyn Trace,
    ) {
        let key = self.key;
        let p = key.params.tfhe();
        let (poly, glwe_size) = (p.polynomial_size, p.glwe_dimension.to_glwe_size());
        let modulus = CiphertextModulus::new_native();
        let tables: Vec<(GlweCiphertextOwned<u64>, u64)> = (0..channels)
            .map(|c| {
                let (coefs, after) = lp.table(l, c, channels, poly.0);
                let mut glwe = GlweCiphertext::new(0u64, glwe_size, poly, modulus);
                glwe.get_mut_body().as_mut().copy_from_slice(&coefs);
                (glwe, after)
            })
            .collect();
        let size = key.params.big_dimension().to_lwe_size().0;
        let small_size = key.params.small_dimension().to_lwe_size();
        let (offset, log) = (lp.input_offset(), log_slots(key.params));
        let fft = Fft::new(poly);
        let bsk = key.bootstrap_key(lp.bootstrap).expect("checked by Evaluator::new");
        let total = out.len() / size;
        let done = std::sync::atomic::AtomicUsize::new(0);
        out.par_chunks_mut(size * BATCH).enumerate().for_each_init(
            || {
                let mut buffers = ComputationBuffers::new();
                let count = CiphertextCount(BATCH);
                buffers.resize(batch_blind_rotate_assign_scratch::<u64>(glwe_size, poly, count, fft.as_view()).unaligned_bytes_required());
                (buffers, vec![0u64; BATCH * small_size.0], GlweCiphertextList::new(0u64, glwe_size, poly, GlweCiphertextCount(BATCH), modulus))
            },
            |(buffers, small, accs), (b, dst)| {
                let elements = b * BATCH..b * BATCH + dst.len() / size;
                let count = elements.len();
                let inputs: Vec<LweCiphertextOwned<u64>> = elements
                    .clone()
                    .map(|e| {
                        let mut input = LweCiphertext::from_container(x[e * size..][..size].to_vec(), modulus);
                        lwe_ciphertext_plaintext_add_assign(&mut input, Plaintext(offset));
                        input
                    })
                    .collect();
                let small = &mut small[..count * small_size.0];
                batch::keyswitch(&key.ksk, &inputs, small);
                let switched = LweCiphertextList::from_container(&*small, small_size, modulus);
                for (e, ct) in elements.clone().zip(switched.iter()) {
                    trace.lookup_input(stage, e, ct);
                }
                let msed: Vec<batch::Switched> = switched.iter().map(|ct| batch::Switched::new(ct, log)).collect();
                let mut accs = GlweCiphertextList::from_container(&mut accs.as_mut()[..count * glwe_size.0 * poly.0], glwe_size, poly, modulus);
                for (e, mut acc) in elements.clone().zip(accs.iter_mut()) {
                    acc.as_mut().copy_from_slice(tables[e % channels].0.as_ref());
                }
                bsk.as_view().batch_blind_rotate_assign(accs.as_mut_view(), &msed, fft.as_view(), buffers.stack());
                for ((e, acc), dst) in elements.zip(accs.iter()).zip(dst.chunks_exact_mut(size)) {
                    let mut result = LweCiphertext::from_container(dst, modulus);
                    extract_lwe_sample_from_glwe_ciphertext(&acc, &mut result, MonomialDegree(0));
                    lwe_ciphertext_plaintext_add_assign(&mut result, Plaintext(tables[e % channels].1));
                }
                let n = done.fetch_add(count, std::sync::atomic::Ordering::Relaxed) + count;
                progress(stage, n, total);
            },
        );
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::builder::ModelBuilder;
    use crate::fhe::ParamSet;
    use crate::model::Shape;
    use tfhe::core_crypto::commons::math::random::{CompressionSeed, Seed};

    /// An [`EncryptedOutput`] as a server could send it: bincode holds the list's length and
    /// ciphertext size as they were written, consistent or not.
    #[derive(Serialize)]
    struct ForgedOutput {
        binding: Binding,
        logits: ForgedList,
    }

    /// The fields of tfhe's `LweCiphertextList`, in its order.
    #[derive(Serialize)]
    struct ForgedList {
        data: Vec<u64>,
        lwe_size: LweSize,
        ciphertext_modulus: CiphertextModulus<u64>,
    }

    /// An [`EncryptedImage`] as a client could send it.
    #[derive(Serialize)]
    struct ForgedImage {
        binding: Binding,
        codes: (Vec<u64>, LweSize, CompressionSeed, CiphertextModulus<u64>),
    }

    #[test]
    fn an_image_of_another_shape_is_refused_not_a_panic() {
        let (bytes, plan, key) = two_classes();
        let model = Model::from_bytes(&bytes).unwrap();
        let server = key.server_key(&plan).unwrap().expand();
        let eval = Evaluator::new(&server, &model, plan.clone()).unwrap();
        let size = ParamSet::M1C1.big_dimension().to_lwe_size();
        let binding = Binding { key: key.id(), params: key.params(), delta: plan.input_delta };
        let run = |codes: usize, lwe_size: LweSize, modulus| {
            let forged = ForgedImage { binding, codes: (vec![0; codes], lwe_size, CompressionSeed::from(Seed(7)), modulus) };
            let image = EncryptedImage::from_bytes(&wire::encode(wire::Kind::Image, &forged), 1 << 20).unwrap();
            eval.run(&image, &|_, _, _| {})
        };
        let native = CiphertextModulus::new_native();
        assert!(run(3, size, native).is_ok(), "the shape the model takes is evaluated");
        let power_of_2 = CiphertextModulus::try_new_power_of_2(32).unwrap();
        for (codes, lwe_size, modulus) in
            [(2, size, native), (4, size, native), (3, LweSize(0), native), (3, LweSize(size.0 - 1), native), (3, size, power_of_2)]
        {
            let err = run(codes, lwe_size, modulus).unwrap_err();
            assert!(err.to_string().contains("the model takes 3"), "{codes} codes of size {lwe_size:?}, modulus {modulus}: {err}");
        }
    }

    /// A model of one linear stage and two classes, its plan under the smallest set, and a
    /// client key for it: what the tests of forged keys and ciphertexts start from.
    pub(crate) fn two_classes() -> (Vec<u8>, Plan, ClientKey) {
        let mut b = ModelBuilder::new("two classes", Shape { h: 1, w: 1, c: 3 }, &[[0; 256]; 3]);
        b.linear(&[1; 6], 2, Shape { h: 1, w: 1, c: 3 }).output(&[1.0; 2], &[0.0; 2]);
        let bytes = b.to_bytes();
        let plan = Plan::new(&Model::from_bytes(&bytes).unwrap(), ParamSet::M1C1, None).unwrap();
        (bytes, plan, ClientKey::generate(ParamSet::M1C1))
    }

    #[test]
    fn a_result_of_another_shape_is_refused_not_a_panic() {
        let (_, plan, key) = two_classes();
        let size = ParamSet::M1C1.big_dimension().to_lwe_size().0;
        let binding = Binding { key: key.id(), params: key.params(), delta: plan.output_delta };
        let decrypt = |values: usize, lwe_size: usize, ciphertext_modulus| {
            let forged = ForgedOutput { binding, logits: ForgedList { data: vec![0; values], lwe_size: LweSize(lwe_size), ciphertext_modulus } };
            let out = EncryptedOutput::from_bytes(&wire::encode(wire::Kind::Output, &forged), 1 << 20).unwrap();
            key.decrypt(&plan, &out)
        };
        let native = CiphertextModulus::new_native();
        assert_eq!(decrypt(2 * size, size, native).unwrap().len(), 2, "the shape the plan expects decrypts");
        let power_of_2 = CiphertextModulus::try_new_power_of_2(32).unwrap();
        for (values, lwe_size, modulus) in [
            (3 * size, size, native),
            (size, size, native),
            (2 * size + 1, size, native),
            (2 * size, 0, native),
            (2 * size, 2 * size, native),
            (2 * size, size / 2, native),
            (2 * size, size, power_of_2),
        ] {
            let err = decrypt(values, lwe_size, modulus).unwrap_err();
            assert!(err.to_string().contains("the model gives 2 ciphertexts"), "{values} values of size {lwe_size}, modulus {modulus}: {err}");
        }
    }
}
