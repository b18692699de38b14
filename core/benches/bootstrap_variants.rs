//! Why the evaluator bootstraps with classic (one key bit per step) rather than multi-bit keys:
//! the blind rotation of a lookup, per lookup, under the 2_2 set's dimensions, classic as the
//! evaluator runs it (tfhe-rs's batched blind rotation) against multi-bit (groups of `g` key bits
//! per external product; tfhe-rs's GGSW preparation and external product, in batches that walk
//! the key once, as the classic one does).
//!
//! Multi-bit cuts the external products `g`-fold but builds each step's GGSW from `2^g − 1` key
//! terms, and at tfhe-rs's own 128-bit multi-bit set for 2_2 (`g = 3`) needs two decomposition
//! levels where classic needs one. tfhe-rs's CPU multi-bit bootstrap spreads one bootstrap over
//! threads; the evaluator's threads already run one batch each, so it is measured here on the
//! evaluator's terms. Every variant decrypts a batch of identity lookups first and must get it right.
//!
//! `cargo bench -p cifhe-core --features fhe,avx512 --bench bootstrap_variants` prints a markdown
//! table (BENCHMARKS.md, "Multi-bit bootstraps").
use cifhe_core::fhe::batch::Switched;
use cifhe_core::fhe::{Bootstrap, ParamSet};
use std::time::Instant;
use tfhe::core_crypto::algorithms::polynomial_algorithms::polynomial_wrapping_monic_monomial_div_assign;
use tfhe::core_crypto::fft_impl::common::modulus_switch;
use tfhe::core_crypto::fft_impl::fft64::crypto::bootstrap::batch_blind_rotate_assign_scratch;
use tfhe::core_crypto::fft_impl::fft64::crypto::ggsw::{add_external_product_assign, add_external_product_assign_scratch, FourierGgswCiphertext};
use tfhe::core_crypto::fft_impl::fft64::math::fft::{Fft, FftView};
use tfhe::core_crypto::fft_impl::fft64::math::polynomial::FourierPolynomial;
use tfhe::core_crypto::prelude::*;
use tfhe::shortint::parameters::v1_8::V1_8_PARAM_MULTI_BIT_GROUP_3_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128 as MULTI_BIT_3;

/// Lookups per batch, as the evaluator's.
const BATCH: usize = 16;
/// Batches per thread and measurement.
const ROUNDS: usize = 6;
/// Measurements per variant and thread count; the fastest is reported (the least disturbed by
/// whatever else the machine runs).
const REPEATS: usize = 3;

/// The keys and ciphertexts every variant shares.
struct Setup {
    params: ParamSet,
    small: LweSecretKeyOwned<u64>,
    glwe: GlweSecretKeyOwned<u64>,
    /// Messages `0..16` under the small key, with a padding bit.
    inputs: Vec<(u64, LweCiphertextOwned<u64>)>,
    /// The identity table.
    table: GlweCiphertextOwned<u64>,
    fft: Fft,
}

/// Scale of the messages: 16 values and a padding bit.
const DELTA: u64 = 1 << 59;

/// Encrypts the bootstrapping keys.
type Generator = EncryptionRandomGenerator<DefaultRandomGenerator>;

impl Setup {
    /// The setup, and the generator that encrypts the bootstrapping keys.
    fn new(params: ParamSet) -> (Setup, Generator) {
        let p = params.tfhe();
        let mut seeder = new_seeder();
        let seeder = seeder.as_mut();
        let mut secret = SecretRandomGenerator::<DefaultRandomGenerator>::new(seeder.seed());
        let mut generator = Generator::new(seeder.seed(), seeder);
        let small = allocate_and_generate_new_binary_lwe_secret_key(p.lwe_dimension, &mut secret);
        let glwe = allocate_and_generate_new_binary_glwe_secret_key(p.glwe_dimension, p.polynomial_size, &mut secret);
        let modulus = CiphertextModulus::new_native();
        let inputs = (0..BATCH as u64)
            .map(|i| {
                let m = i % 16;
                (m, allocate_and_encrypt_new_lwe_ciphertext(&small, Plaintext(m * DELTA), params.small_noise(), modulus, &mut generator))
            })
            .collect();
        let table = generate_programmable_bootstrap_glwe_lut(p.polynomial_size, p.glwe_dimension.to_glwe_size(), 16, modulus, DELTA, |x: u64| x);
        (Setup { params, small, glwe, inputs, table, fft: Fft::new(p.polynomial_size) }, generator)
    }

    fn glwe_size(&self) -> GlweSize {
        self.glwe.glwe_dimension().to_glwe_size()
    }

    fn log_slots(&self) -> CiphertextModulusLog {
        CiphertextModulusLog(self.glwe.polynomial_size().0.ilog2() as usize + 1)
    }

    /// Lookups rotated wrong, out of a batch of identity lookups.
    fn errors(&self, rotate: &(dyn Fn(&mut [GlweCiphertextOwned<u64>]) + Sync)) -> usize {
        let mut accs = vec![self.table.clone(); BATCH];
        rotate(&mut accs);
        let big = self.glwe.as_lwe_secret_key();
        let mut out = LweCiphertext::new(0u64, big.lwe_dimension().to_lwe_size(), CiphertextModulus::new_native());
        self.inputs
            .iter()
            .zip(&accs)
            .filter(|((m, _), acc)| {
                extract_lwe_sample_from_glwe_ciphertext(*acc, &mut out, MonomialDegree(0));
                decrypt_lwe_ciphertext(&big, &out).0.wrapping_add(DELTA / 2) / DELTA != *m
            })
            .count()
    }

    /// Milliseconds per lookup with `threads` threads each rotating its own batches.
    fn ms_per_lookup(&self, threads: usize, rotate: &(dyn Fn(&mut [GlweCiphertextOwned<u64>]) + Sync)) -> f64 {
        let start = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    let mut accs = vec![self.table.clone(); BATCH];
                    for _ in 0..ROUNDS {
                        rotate(&mut accs);
                    }
                });
            }
        });
        start.elapsed().as_secs_f64() * 1e3 / (threads * ROUNDS * BATCH) as f64
    }
}

/// Blind-rotates a batch of accumulators, each by its input of [`Setup::inputs`].
type Rotate<'s> = Box<dyn Fn(&mut [GlweCiphertextOwned<u64>]) + Sync + 's>;

/// Classic: tfhe-rs's batched blind rotation, fed centered modulus switches, as the evaluator.
fn classic<'s>(setup: &'s Setup, generator: &mut Generator, base: DecompositionBaseLog, level: DecompositionLevelCount) -> Rotate<'s> {
    let (glwe_size, poly, n) = (setup.glwe_size(), setup.glwe.polynomial_size(), setup.small.lwe_dimension());
    let modulus = CiphertextModulus::new_native();
    let mut bsk = LweBootstrapKey::new(0u64, glwe_size, poly, base, level, n, modulus);
    par_generate_lwe_bootstrap_key(&setup.small, &setup.glwe, &mut bsk, setup.params.big_noise(), generator);
    let mut fourier = FourierLweBootstrapKey::new(n, glwe_size, poly, base, level);
    par_convert_standard_lwe_bootstrap_key_to_fourier(&bsk, &mut fourier);
    let log = setup.log_slots();
    let switched: Vec<Switched> = setup.inputs.iter().map(|(_, ct)| Switched::new(ct.as_view(), log)).collect();
    Box::new(move |accs| {
        let mut buffers = ComputationBuffers::new();
        let fft = setup.fft.as_view();
        buffers.resize(batch_blind_rotate_assign_scratch::<u64>(glwe_size, poly, CiphertextCount(BATCH), fft).unaligned_bytes_required());
        let mut list = GlweCiphertextList::new(0u64, glwe_size, poly, GlweCiphertextCount(BATCH), modulus);
        for (mut dst, acc) in list.iter_mut().zip(accs.iter()) {
            dst.as_mut().copy_from_slice(acc.as_ref());
        }
        fourier.as_view().batch_blind_rotate_assign(list.as_mut_view(), &switched, fft, buffers.stack());
        for (acc, src) in accs.iter_mut().zip(list.iter()) {
            acc.as_mut().copy_from_slice(src.as_ref());
        }
    })
}

/// Multi-bit with grouping `g`: for each group of key bits, every lookup of the batch builds
/// its GGSW from the group's keys (still in cache) and multiplies its accumulator by it.
fn multi_bit<'s>(setup: &'s Setup, generator: &mut Generator, g: usize, base: DecompositionBaseLog, level: DecompositionLevelCount) -> Rotate<'s> {
    let (glwe_size, poly, n) = (setup.glwe_size(), setup.glwe.polynomial_size(), setup.small.lwe_dimension());
    let modulus = CiphertextModulus::new_native();
    let grouping = LweBskGroupingFactor(g);
    let mut bsk = LweMultiBitBootstrapKey::new(0u64, glwe_size, poly, base, level, n, grouping, modulus);
    par_generate_lwe_multi_bit_bootstrap_key(&setup.small, &setup.glwe, &mut bsk, setup.params.big_noise(), generator);
    let mut fourier = FourierLweMultiBitBootstrapKey::new(n, glwe_size, poly, base, level, grouping);
    par_convert_standard_lwe_multi_bit_bootstrap_key_to_fourier(&bsk, &mut fourier);
    let log = setup.log_slots();
    Box::new(move |accs| {
        let fft: FftView<'_> = setup.fft.as_view();
        let per_group = grouping.ggsw_per_multi_bit_element().0;
        let ggsws: Vec<_> = fourier.ggsw_iter().collect();
        let mut buffers = ComputationBuffers::new();
        buffers.resize(add_external_product_assign_scratch::<u64>(glwe_size, poly, fft).unaligned_bytes_required());
        let mut ggsw = FourierGgswCiphertext::new(glwe_size, poly, base, level);
        let mut monomial = FourierPolynomial::new(poly);
        let mut product = GlweCiphertext::new(0u64, glwe_size, poly, modulus);
        for ((_, ct), acc) in setup.inputs.iter().zip(accs.iter_mut()) {
            let body = modulus_switch(*ct.get_body().data, log);
            for mut p in acc.as_mut_polynomial_list().iter_mut() {
                polynomial_wrapping_monic_monomial_div_assign(&mut p, MonomialDegree(body as usize));
            }
        }
        for (group, keys) in ggsws.chunks_exact(per_group).enumerate() {
            for ((_, ct), acc) in setup.inputs.iter().zip(accs.iter_mut()) {
                let mask = &ct.as_ref()[group * g..(group + 1) * g];
                prepare_multi_bit_ggsw_mem_optimized(&mut ggsw, keys, modulus_switch_multi_bit(log, grouping, mask), &mut monomial, fft);
                product.as_mut().fill(0);
                add_external_product_assign(product.as_mut_view(), ggsw.as_view(), acc.as_view(), fft, buffers.stack());
                acc.as_mut().copy_from_slice(product.as_ref());
            }
        }
    })
}

fn main() {
    let params = ParamSet::M2C2;
    let p = params.tfhe();
    let (fine_base, fine_level) = params.pbs_decomposition(Bootstrap::Fine);
    let one = DecompositionLevelCount(1);
    let multi = (MULTI_BIT_3.pbs_base_log, MULTI_BIT_3.pbs_level);
    println!("Blind rotation per lookup, set {params}, batches of {BATCH}, fastest of {REPEATS}:\n");
    println!("| bootstrap | grouping | base, levels | ms per lookup, 1 thread | ms per lookup, 2 threads |");
    println!("|---|---|---|---|---|");
    let variants: [(&str, usize, DecompositionBaseLog, DecompositionLevelCount); 5] = [
        ("classic, the set's (standard)", 1, p.pbs_base_log, p.pbs_level),
        ("classic, fine", 1, fine_base, fine_level),
        ("multi-bit, tfhe-rs's 128-bit 2_2 set", 3, multi.0, multi.1),
        ("multi-bit, one level (noisier than the set allows)", 3, p.pbs_base_log, one),
        ("multi-bit, one level (noisier than the set allows)", 2, p.pbs_base_log, one),
    ];
    let (setup, mut generator) = Setup::new(params);
    let rotators: Vec<Rotate<'_>> = variants
        .iter()
        .map(|&(name, g, base, level)| {
            let rotate = if g == 1 { classic(&setup, &mut generator, base, level) } else { multi_bit(&setup, &mut generator, g, base, level) };
            let errors = setup.errors(&*rotate);
            assert_eq!(errors, 0, "{name}: {errors} of {BATCH} lookups wrong");
            rotate
        })
        .collect();
    // Round robin, so that a slow spell of the machine does not land on one variant only.
    let mut best = vec![[f64::MAX; 2]; variants.len()];
    for _ in 0..REPEATS {
        for (rotate, best) in rotators.iter().zip(&mut best) {
            for (threads, best) in [1, 2].into_iter().zip(best.iter_mut()) {
                *best = best.min(setup.ms_per_lookup(threads, &**rotate));
            }
        }
    }
    for ((name, g, base, level), [one, two]) in variants.iter().zip(best) {
        println!("| {name} | {g} | {}, {} | {one:.2} | {two:.2} |", base.0, level.0);
    }
}
