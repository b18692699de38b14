//! Lookups in batches: the key switch and the modulus switch of many ciphertexts at once, for
//! tfhe-rs's batched blind rotation.
//!
//! Why: one bootstrap reads its whole key-switching key and its whole bootstrapping key (57 MB
//! each under the 2_2 set, the fine key twice that), far beyond the caches, so bootstrapping
//! one element at a time was bound by memory bandwidth, not arithmetic. A batch reads each row
//! of both keys once for all its elements. tfhe-rs batches the blind rotation
//! (`batch_blind_rotate_assign`); the key switch is batched here, with tfhe-rs's own
//! decomposition, so the results are bit for bit those of `keyswitch_lwe_ciphertext`.
use tfhe::core_crypto::algorithms::slice_algorithms::slice_wrapping_sub_scalar_mul_assign;
use tfhe::core_crypto::prelude::*;

/// Key-switches every ciphertext of `inputs` (each of the key's input size) into the
/// consecutive ciphertexts of `outputs` (each of its output size): what
/// `keyswitch_lwe_ciphertext` computes for each, reading the key once.
pub fn keyswitch(ksk: &LweKeyswitchKeyOwned<u64>, inputs: &[LweCiphertextOwned<u64>], outputs: &mut [u64]) {
    let size = ksk.output_key_lwe_dimension().to_lwe_size().0;
    assert_eq!(outputs.len(), inputs.len() * size, "one output ciphertext per input");
    for (out, input) in outputs.chunks_exact_mut(size).zip(inputs) {
        out.fill(0);
        out[size - 1] = *input.get_body().data;
    }
    let decomposer = SignedDecomposer::<u64>::new(ksk.decomposition_base_log(), ksk.decomposition_level_count());
    let levels = ksk.decomposition_level_count().0;
    let mut digits = vec![0u64; inputs.len() * levels];
    for (i, block) in ksk.iter().enumerate() {
        for (d, input) in digits.chunks_exact_mut(levels).zip(inputs) {
            for (digit, term) in d.iter_mut().zip(decomposer.decompose(input.get_mask().as_ref()[i])) {
                *digit = term.value();
            }
        }
        for (level, row) in block.iter().enumerate() {
            for (out, d) in outputs.chunks_exact_mut(size).zip(digits.chunks_exact(levels)) {
                slice_wrapping_sub_scalar_mul_assign(out, row.as_ref(), d[level]);
            }
        }
    }
}

/// A ciphertext after tfhe-rs's centered modulus switch to `2N`, kept as computed: the batched
/// blind rotation reads its mask element by element (`mask().nth(i)`), which tfhe-rs's lazy
/// form would recompute from the start for every element.
pub struct Switched {
    mask: Vec<usize>,
    body: usize,
    log: CiphertextModulusLog,
}

impl Switched {
    /// `ct` switched to the modulus `2^log` by `lwe_ciphertext_centered_binary_modulus_switch`.
    pub fn new(ct: LweCiphertextView<'_, u64>, log: CiphertextModulusLog) -> Switched {
        let ms = lwe_ciphertext_centered_binary_modulus_switch::<u64, usize, _>(ct, log);
        Switched { mask: ms.mask().collect(), body: ms.body(), log }
    }
}

impl ModulusSwitchedLweCiphertext<usize> for Switched {
    fn log_modulus(&self) -> CiphertextModulusLog {
        self.log
    }
    fn lwe_dimension(&self) -> LweDimension {
        LweDimension(self.mask.len())
    }
    fn body(&self) -> usize {
        self.body
    }
    fn mask(&self) -> impl ExactSizeIterator<Item = usize> + '_ {
        self.mask.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batched_key_switches_equal_tfhe_rs_one_by_one() {
        let mut seeder = new_seeder();
        let seeder = seeder.as_mut();
        let mut secret = SecretRandomGenerator::<DefaultRandomGenerator>::new(seeder.seed());
        let mut noise = EncryptionRandomGenerator::<DefaultRandomGenerator>::new(seeder.seed(), seeder);
        let big = allocate_and_generate_new_binary_lwe_secret_key::<u64, _>(LweDimension(96), &mut secret);
        let small = allocate_and_generate_new_binary_lwe_secret_key::<u64, _>(LweDimension(40), &mut secret);
        let distribution = DynamicDistribution::new_t_uniform(40);
        let modulus = CiphertextModulus::new_native();
        let ksk =
            allocate_and_generate_new_lwe_keyswitch_key(&big, &small, DecompositionBaseLog(4), DecompositionLevelCount(4), distribution, modulus, &mut noise);
        let inputs: Vec<_> = (0..7u64).map(|i| allocate_and_encrypt_new_lwe_ciphertext(&big, Plaintext(i << 60), distribution, modulus, &mut noise)).collect();
        let size = small.lwe_dimension().to_lwe_size().0;
        let mut batched = vec![7u64; inputs.len() * size];
        keyswitch(&ksk, &inputs, &mut batched);
        for (input, got) in inputs.iter().zip(batched.chunks_exact(size)) {
            let mut one = LweCiphertext::new(0u64, small.lwe_dimension().to_lwe_size(), modulus);
            keyswitch_lwe_ciphertext(&ksk, input, &mut one);
            assert_eq!(got, one.as_ref());
        }
    }
}
