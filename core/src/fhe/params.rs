//! TFHE parameter sets and the noise formulas: the one place where a lookup's error is derived.
//!
//! The sets are tfhe-rs's own `V1_8_PARAM_MESSAGE_{m}_CARRY_{m}_KS_PBS_TUNIFORM_2M128` (classic
//! KS-PBS, TUniform noise), whose keys we encrypt with the sets' own noise bounds. Their security
//! is tfhe-rs's: each bound is at least the one that tfhe-rs's lattice-estimator fit
//! (`noise_formulas::secure_noise`) gives for 132 bits of security at that key's dimension, which
//! [`ParamSet::check_security`] re-derives and a test checks for every set.
//! We use only their dimensions and decompositions: our encodings are our own (no padding bit,
//! accumulators of any width), so shortint's message/carry split and p_fail do not apply.
//!
//! Noise, as a variance on the torus (1 = the whole torus), from tfhe-rs's formulas
//! (`core_crypto::commons::noise_formulas`), which hold for keys encrypted with the minimal
//! secure noise (where a set's bound is above it, as the big keys of 3_3 and 4_4 at 2^3, the
//! formulas' own variance floor of 2^4.44 / q², that of TUniform(2^3), already covers it):
//! - a fresh input ciphertext (big key, GLWE noise): `V_fresh = Var(TUniform(b_glwe))`;
//! - a PBS output: `V_pbs = pbs_variance_132_bits_security_tuniform_fft_mul(n, k, N, B_pbs, ℓ_pbs)`,
//!   with the set's own decomposition or, for a [`Bootstrap::Fine`] key, one level more;
//! - a dot product with clear integer weights `w` over independent inputs: `‖w‖² · V_in`;
//! - the key switch to the small key: `V_ks = keyswitch_additive_variance_132_bits_security_tuniform`;
//! - the centered modulus switch to `2N`: `V_ms = centered_binary_shifted_modulus_switch_additive_variance`.
//!
//! The lookup reads `2N` slots of the torus; a rounded step owns `k = N / 2^R` of them, so the
//! error in rounded steps has `σ = 2N · √(‖w‖² V_in + V_ks + V_ms) / k`: the simulator's
//! [`NoiseModel`](crate::NoiseModel) of that stage.
use serde::{Deserialize, Serialize};
use tfhe::core_crypto::commons::noise_formulas::centered_mean_shifted_modulus_switch::centered_binary_shifted_modulus_switch_additive_variance;
use tfhe::core_crypto::commons::noise_formulas::lwe_keyswitch::keyswitch_additive_variance_132_bits_security_tuniform;
use tfhe::core_crypto::commons::noise_formulas::lwe_programmable_bootstrap::pbs_variance_132_bits_security_tuniform_fft_mul;
use tfhe::core_crypto::commons::noise_formulas::secure_noise::minimal_lwe_bound_for_132_bits_security_tuniform;
use tfhe::core_crypto::prelude::*;
use tfhe::shortint::parameters::v1_8 as sets;
use tfhe::shortint::ClassicPBSParameters;

/// The native torus modulus, as a float for the formulas.
const Q: f64 = 18_446_744_073_709_551_616.0;
/// Mantissa bits of the f64 FFT (tfhe-rs's value for its 64-bit FFT bootstrap).
const FFT_MANTISSA: f64 = 53.0;

/// A tfhe-rs parameter set, named by shortint's message and carry bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParamSet {
    /// `PARAM_MESSAGE_1_CARRY_1`: N = 512, k = 4.
    M1C1,
    /// `PARAM_MESSAGE_2_CARRY_2`: N = 2048.
    M2C2,
    /// `PARAM_MESSAGE_3_CARRY_3`: N = 8192.
    M3C3,
    /// `PARAM_MESSAGE_4_CARRY_4`: N = 65536.
    M4C4,
}

impl ParamSet {
    /// Every set, cheapest first.
    pub const ALL: [ParamSet; 4] = [ParamSet::M1C1, ParamSet::M2C2, ParamSet::M3C3, ParamSet::M4C4];

    /// Short name (`2_2`), as the command line takes it.
    pub fn name(self) -> &'static str {
        match self {
            ParamSet::M1C1 => "1_1",
            ParamSet::M2C2 => "2_2",
            ParamSet::M3C3 => "3_3",
            ParamSet::M4C4 => "4_4",
        }
    }

    /// The set named `name` (`1_1` … `4_4`).
    pub fn by_name(name: &str) -> Option<ParamSet> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// tfhe-rs's parameters.
    pub fn tfhe(self) -> ClassicPBSParameters {
        match self {
            ParamSet::M1C1 => sets::V1_8_PARAM_MESSAGE_1_CARRY_1_KS_PBS_TUNIFORM_2M128,
            ParamSet::M2C2 => sets::V1_8_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128,
            ParamSet::M3C3 => sets::V1_8_PARAM_MESSAGE_3_CARRY_3_KS_PBS_TUNIFORM_2M128,
            ParamSet::M4C4 => sets::V1_8_PARAM_MESSAGE_4_CARRY_4_KS_PBS_TUNIFORM_2M128,
        }
    }

    /// Dimension of the small LWE key (what the bootstrap reads).
    pub fn small_dimension(self) -> LweDimension {
        self.tfhe().lwe_dimension
    }

    /// Dimension of the big LWE key (the GLWE key flattened: what ciphertexts live under between lookups).
    pub fn big_dimension(self) -> LweDimension {
        let p = self.tfhe();
        p.glwe_dimension.to_equivalent_lwe_dimension(p.polynomial_size)
    }

    /// Polynomial size `N`: the lookup table has `N` slots for half the torus.
    pub fn polynomial_size(self) -> PolynomialSize {
        self.tfhe().polynomial_size
    }

    /// Noise of the small key's encryptions (key-switching key): the set's own TUniform bound.
    pub fn small_noise(self) -> TUniform<u64> {
        tuniform(self.tfhe().lwe_noise_distribution)
    }

    /// Noise of the big key's encryptions (inputs, bootstrapping key): the set's own TUniform bound.
    pub fn big_noise(self) -> TUniform<u64> {
        tuniform(self.tfhe().glwe_noise_distribution)
    }

    /// Checks that the noise we encrypt with is at least the minimal bound that tfhe-rs's
    /// lattice-estimator fit gives for 132 bits of security at each key's dimension: the
    /// security argument of every key we make.
    pub fn check_security(self) -> Result<(), String> {
        for (what, ours, dimension) in [("small key", self.small_noise(), self.small_dimension()), ("big key", self.big_noise(), self.big_dimension())] {
            let secure = minimal_lwe_bound_for_132_bits_security_tuniform(dimension, Q);
            if ours.bound_log2() < secure {
                return Err(format!(
                    "set {}: {what} noise bound 2^{} below the secure 2^{secure} at dimension {}",
                    self.name(),
                    ours.bound_log2(),
                    dimension.0
                ));
            }
        }
        Ok(())
    }

    /// Variance of a freshly encrypted input (big key).
    pub fn fresh_variance(self) -> f64 {
        self.big_noise().variance(Q).0
    }

    /// The gadget decomposition (base log, levels) of a bootstrapping key: the set's own, or for
    /// [`Bootstrap::Fine`] one level more with the base that minimises the output variance.
    pub fn pbs_decomposition(self, bootstrap: Bootstrap) -> (DecompositionBaseLog, DecompositionLevelCount) {
        let p = self.tfhe();
        match bootstrap {
            Bootstrap::Standard => (p.pbs_base_log, p.pbs_level),
            Bootstrap::Fine => {
                let level = DecompositionLevelCount(p.pbs_level.0 + 1);
                let base = (1..=64 / level.0)
                    .map(DecompositionBaseLog)
                    .min_by(|&a, &b| self.pbs_variance_with(a, level).total_cmp(&self.pbs_variance_with(b, level)))
                    .expect("some base");
                (base, level)
            }
        }
    }

    /// Variance of a bootstrap's output.
    pub fn pbs_variance(self, bootstrap: Bootstrap) -> f64 {
        let (base, level) = self.pbs_decomposition(bootstrap);
        self.pbs_variance_with(base, level)
    }

    fn pbs_variance_with(self, base: DecompositionBaseLog, level: DecompositionLevelCount) -> f64 {
        let p = self.tfhe();
        pbs_variance_132_bits_security_tuniform_fft_mul(p.lwe_dimension, p.glwe_dimension, p.polynomial_size, base, level, FFT_MANTISSA, Q).0
    }

    /// Variance the key switch adds.
    pub fn ks_variance(self) -> f64 {
        let p = self.tfhe();
        keyswitch_additive_variance_132_bits_security_tuniform(self.big_dimension(), p.lwe_dimension, p.ks_base_log, p.ks_level, Q, Q).0
    }

    /// Variance the centered modulus switch to `2N` adds.
    pub fn ms_variance(self) -> f64 {
        centered_binary_shifted_modulus_switch_additive_variance(self.small_dimension(), Q, 2.0 * self.polynomial_size().0 as f64).0
    }

    /// Standard deviation, in slots of `2N`, of a lookup input whose dot product has variance `input`.
    pub fn lookup_sigma_slots(self, input: f64) -> f64 {
        2.0 * self.polynomial_size().0 as f64 * (input + self.ks_variance() + self.ms_variance()).sqrt()
    }

    /// Bytes of the server key (key switching and bootstrapping keys, one per kind in
    /// `bootstraps`), as sent (`compressed`) and as used.
    pub fn server_key_bytes(self, compressed: bool, bootstraps: &[Bootstrap]) -> u64 {
        let p = self.tfhe();
        let (n, big, glwe) = (p.lwe_dimension.0 as u64, self.big_dimension().0 as u64, p.glwe_dimension.to_glwe_size().0 as u64);
        let poly = p.polynomial_size.0 as u64;
        // Key switch: big × ℓ_ks LWE ciphertexts of size n + 1; bootstrap: n GGSW of ℓ_pbs·(k+1) GLWE.
        let ks_rows = big * p.ks_level.0 as u64;
        let bsk_rows: u64 = bootstraps.iter().map(|&b| n * self.pbs_decomposition(b).1 .0 as u64 * glwe).sum();
        if compressed {
            8 * (ks_rows + bsk_rows * poly)
        } else {
            8 * (ks_rows * (n + 1) + bsk_rows * glwe * poly)
        }
    }
}

/// Which bootstrapping key a lookup uses. Both are made under the same secret keys, so both have
/// the set's security: the estimate depends on the keys' dimensions and noise, not on the gadget
/// decomposition. `Fine` takes about 1.5× the time of `Standard` and twice its bootstrapping key
/// (`bench-fhe`) for 10× (4_4) to over 10,000× (2_2) less output variance: what a lookup
/// whose outputs feed a wide dot product needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Bootstrap {
    /// The set's own decomposition (fastest).
    Standard,
    /// One level more, base chosen to minimise the output variance.
    Fine,
}

impl Bootstrap {
    /// The key's name in tables: `standard` or `fine`.
    pub fn name(self) -> &'static str {
        match self {
            Bootstrap::Standard => "standard",
            Bootstrap::Fine => "fine",
        }
    }
}

/// The TUniform distribution of a tfhe-rs set; every `V1_8 … TUNIFORM` set uses TUniform only.
fn tuniform(d: DynamicDistribution<u64>) -> TUniform<u64> {
    match d {
        DynamicDistribution::TUniform(t) => t,
        DynamicDistribution::Gaussian(_) => unreachable!("the TUNIFORM parameter sets have TUniform noise"),
    }
}

impl core::fmt::Display for ParamSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let p = self.tfhe();
        write!(f, "{} (n = {}, N = {}, k = {})", self.name(), p.lwe_dimension.0, p.polynomial_size.0, p.glwe_dimension.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_set_meets_the_132_bit_noise_bound() {
        for p in ParamSet::ALL {
            p.check_security().unwrap();
            assert_eq!(ParamSet::by_name(p.name()), Some(p));
        }
    }

    #[test]
    fn noise_grows_with_the_torus_slots() {
        // The 2_2 set: a PBS output is far below the modulus switch's noise, which dominates.
        let p = ParamSet::M2C2;
        let ms = 2.0 * 2048.0 * p.ms_variance().sqrt();
        assert!((3.0..6.0).contains(&ms), "modulus switch σ = {ms} slots");
        assert!(p.pbs_variance(Bootstrap::Standard) < p.ms_variance());
        assert!(p.lookup_sigma_slots(100.0 * p.pbs_variance(Bootstrap::Standard)) > p.lookup_sigma_slots(0.0));
    }

    #[test]
    fn the_fine_bootstrap_is_far_less_noisy() {
        for p in ParamSet::ALL {
            let (base, level) = p.pbs_decomposition(Bootstrap::Fine);
            assert!(base.0 * level.0 <= 64, "{p}: {base:?} × {level:?}");
            let gain = p.pbs_variance(Bootstrap::Standard) / p.pbs_variance(Bootstrap::Fine);
            assert!(gain > 10.0, "{p}: fine bootstrap only {gain}× less variance");
        }
    }
}
