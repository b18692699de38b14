//! Keys. The client key (two secret keys) never leaves the client; the server gets the compressed
//! (seeded) key-switching and bootstrapping keys, which it expands once.
use super::params::{Bootstrap, ParamSet};
use super::plan::Plan;
use super::wire::{self, FheError};
use serde::{Deserialize, Serialize};
use tfhe::core_crypto::prelude::*;

/// Identifies a client key: every server key and ciphertext carries the id of the key it belongs
/// to, so material from another client is refused instead of decrypting to garbage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyId(pub u64);

impl core::fmt::Display for KeyId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The secret keys: the small LWE key the bootstrap reads, and the GLWE key whose flattening is
/// the big LWE key inputs and lookup outputs are encrypted under.
pub struct ClientKey {
    pub(super) id: KeyId,
    pub(super) params: ParamSet,
    pub(super) small: LweSecretKeyOwned<u64>,
    pub(super) glwe: GlweSecretKeyOwned<u64>,
}

impl core::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print secrets.
        write!(f, "ClientKey {{ id: {}, params: {} }}", self.id, self.params.name())
    }
}

/// The server key as sent: seeded, so masks are regenerated from seeds on the server.
#[derive(Serialize, Deserialize)]
pub struct CompressedServerKey {
    pub(super) id: KeyId,
    pub(super) params: ParamSet,
    pub(super) ksk: SeededLweKeyswitchKeyOwned<u64>,
    pub(super) bsk: SeededLweBootstrapKeyOwned<u64>,
    /// The [`Bootstrap::Fine`] key, when the plan it was made for uses it.
    pub(super) fine_bsk: Option<SeededLweBootstrapKeyOwned<u64>>,
}

/// The server key, expanded and with the bootstrapping key in the Fourier domain.
pub struct ServerKey {
    pub(super) id: KeyId,
    pub(super) params: ParamSet,
    pub(super) ksk: LweKeyswitchKeyOwned<u64>,
    pub(super) bsk: FourierLweBootstrapKeyOwned,
    pub(super) fine_bsk: Option<FourierLweBootstrapKeyOwned>,
}

impl core::fmt::Debug for CompressedServerKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "CompressedServerKey {{ id: {}, params: {} }}", self.id, self.params.name())
    }
}

impl core::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "ServerKey {{ id: {}, params: {} }}", self.id, self.params.name())
    }
}

impl ClientKey {
    /// Fresh secret keys for `params`, from the operating system's entropy.
    pub fn generate(params: ParamSet) -> ClientKey {
        let mut seeder = new_seeder();
        let mut secret = SecretRandomGenerator::<DefaultRandomGenerator>::new(seeder.seed());
        let p = params.tfhe();
        let small = allocate_and_generate_new_binary_lwe_secret_key(p.lwe_dimension, &mut secret);
        let glwe = allocate_and_generate_new_binary_glwe_secret_key(p.glwe_dimension, p.polynomial_size, &mut secret);
        let id = KeyId(seeder.seed().0 as u64);
        ClientKey { id, params, small, glwe }
    }

    /// The id of this key.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The parameter set.
    pub fn params(&self) -> ParamSet {
        self.params
    }

    /// The big LWE key (the GLWE key flattened).
    pub(super) fn big(&self) -> LweSecretKey<&[u64]> {
        self.glwe.as_lwe_secret_key()
    }

    /// The server key to send for `plan`: key switching big → small, bootstrapping small → GLWE
    /// (and the fine bootstrapping key if the plan uses it).
    pub fn server_key(&self, plan: &Plan) -> Result<CompressedServerKey, FheError> {
        if plan.params != self.params {
            return Err(FheError::Mismatch(format!("plan uses parameters {}, this key {}", plan.params.name(), self.params.name())));
        }
        let p = self.params.tfhe();
        let mut seeder = new_seeder();
        let ksk = allocate_and_generate_new_seeded_lwe_keyswitch_key(
            &self.big(),
            &self.small,
            p.ks_base_log,
            p.ks_level,
            self.params.small_noise(),
            CiphertextModulus::new_native(),
            seeder.as_mut(),
        );
        let bsk = self.bootstrap_key(Bootstrap::Standard, seeder.as_mut());
        let fine_bsk = plan.uses_fine().then(|| self.bootstrap_key(Bootstrap::Fine, seeder.as_mut()));
        Ok(CompressedServerKey { id: self.id, params: self.params, ksk, bsk, fine_bsk })
    }

    fn bootstrap_key(&self, kind: Bootstrap, seeder: &mut dyn Seeder) -> SeededLweBootstrapKeyOwned<u64> {
        let (base, level) = self.params.pbs_decomposition(kind);
        par_allocate_and_generate_new_seeded_lwe_bootstrap_key(
            &self.small,
            &self.glwe,
            base,
            level,
            self.params.big_noise(),
            CiphertextModulus::new_native(),
            seeder,
        )
    }
}

impl CompressedServerKey {
    /// The id of the client key this belongs to.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The parameter set.
    pub fn params(&self) -> ParamSet {
        self.params
    }

    /// Serialized, as sent to the server.
    pub fn to_bytes(&self) -> Vec<u8> {
        wire::encode(wire::Kind::ServerKey, self)
    }

    /// Parses a server key, refusing anything longer than `limit` bytes or malformed. The bytes
    /// come from a client: every dimension in them, and the length of every key, must be what its
    /// parameter set makes, or expanding and using the key could fail inside tfhe-rs.
    pub fn from_bytes(bytes: &[u8], limit: usize) -> Result<Self, FheError> {
        let key: Self = wire::decode(wire::Kind::ServerKey, bytes, limit)?;
        let (p, tp) = (key.params, key.params.tfhe());
        let native = CiphertextModulus::new_native();
        // Only fields are compared, then lengths: tfhe-rs derives the key dimensions by dividing
        // the length by sizes that a forged key could set to zero.
        let ksk = &key.ksk;
        let ksk_ok = (ksk.decomposition_base_log(), ksk.decomposition_level_count()) == (tp.ks_base_log, tp.ks_level)
            && ksk.output_lwe_size() == p.small_dimension().to_lwe_size()
            && ksk.ciphertext_modulus() == native
            && ksk.as_ref().len() == p.big_dimension().0 * tp.ks_level.0;
        let bsk_ok = |bsk: &SeededLweBootstrapKeyOwned<u64>, kind| {
            let (base, level) = p.pbs_decomposition(kind);
            let glwe_size = tp.glwe_dimension.to_glwe_size();
            (bsk.decomposition_base_log(), bsk.decomposition_level_count()) == (base, level)
                && (bsk.glwe_size(), bsk.polynomial_size()) == (glwe_size, p.polynomial_size())
                && bsk.ciphertext_modulus() == native
                && bsk.as_ref().len() == p.small_dimension().0 * seeded_ggsw_ciphertext_size(glwe_size, p.polynomial_size(), level)
        };
        if !(ksk_ok && bsk_ok(&key.bsk, Bootstrap::Standard) && key.fine_bsk.as_ref().is_none_or(|b| bsk_ok(b, Bootstrap::Fine))) {
            return Err(FheError::Malformed("server key dimensions do not match its parameter set".into()));
        }
        Ok(key)
    }

    /// Expands the seeds and moves the bootstrapping keys to the Fourier domain (on all cores).
    pub fn expand(self) -> ServerKey {
        let ksk = self.ksk.par_decompress_into_lwe_keyswitch_key();
        ServerKey { id: self.id, params: self.params, ksk, bsk: fourier(self.bsk), fine_bsk: self.fine_bsk.map(fourier) }
    }
}

fn fourier(seeded: SeededLweBootstrapKeyOwned<u64>) -> FourierLweBootstrapKeyOwned {
    let bsk = seeded.par_decompress_into_lwe_bootstrap_key();
    let mut fourier = FourierLweBootstrapKey::new(
        bsk.input_lwe_dimension(),
        bsk.glwe_size(),
        bsk.polynomial_size(),
        bsk.decomposition_base_log(),
        bsk.decomposition_level_count(),
    );
    par_convert_standard_lwe_bootstrap_key_to_fourier(&bsk, &mut fourier);
    fourier
}

impl ServerKey {
    /// The id of the client key this belongs to.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The parameter set.
    pub fn params(&self) -> ParamSet {
        self.params
    }

    /// The bootstrapping key of `kind`, if this key holds it.
    pub(super) fn bootstrap_key(&self, kind: Bootstrap) -> Option<&FourierLweBootstrapKeyOwned> {
        match kind {
            Bootstrap::Standard => Some(&self.bsk),
            Bootstrap::Fine => self.fine_bsk.as_ref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fhe::eval::tests::two_classes;
    use tfhe::core_crypto::commons::math::random::CompressionSeed;

    /// The fields of a [`CompressedServerKey`] as bincode writes them, in tfhe-rs's order, so that
    /// a test can forge any of them, as a client could.
    #[derive(Serialize, Deserialize, Clone)]
    struct Forged {
        id: KeyId,
        params: ParamSet,
        ksk: (Vec<u64>, DecompositionBaseLog, DecompositionLevelCount, LweSize, CompressionSeed, CiphertextModulus<u64>),
        bsk: ForgedBsk,
        fine_bsk: Option<ForgedBsk>,
    }

    #[derive(Serialize, Deserialize, Clone)]
    struct ForgedBsk {
        data: Vec<u64>,
        glwe_size: GlweSize,
        polynomial_size: PolynomialSize,
        base_log: DecompositionBaseLog,
        level: DecompositionLevelCount,
        seed: CompressionSeed,
        modulus: CiphertextModulus<u64>,
    }

    #[test]
    fn forged_server_key_dimensions_are_refused_not_a_panic() {
        let (_, plan, client) = two_classes();
        let sent = client.server_key(&plan).unwrap().to_bytes();
        let limit = 1 << 30;
        let parse = |key: &Forged| CompressedServerKey::from_bytes(&wire::encode(wire::Kind::ServerKey, key), limit);
        let key: Forged = wire::decode(wire::Kind::ServerKey, &sent, limit).unwrap();
        assert_eq!(wire::encode(wire::Kind::ServerKey, &key), sent, "the stand-in writes the key's bytes");
        parse(&key).unwrap().expand();
        type Forgery = (&'static str, fn(&mut Forged));
        let forgeries: [Forgery; 14] = [
            ("ksk without levels", |k| k.ksk.2 = DecompositionLevelCount(0)),
            ("ksk with a level more", |k| k.ksk.2 .0 += 1),
            ("ksk with another base", |k| k.ksk.1 .0 += 1),
            ("ksk output size 0", |k| k.ksk.3 = LweSize(0)),
            ("ksk output one larger", |k| k.ksk.3 .0 += 1),
            ("ksk one value short", |k| k.ksk.0.truncate(k.ksk.0.len() - 1)),
            ("ksk an input element more", |k| k.ksk.0.extend(vec![0; k.ksk.2 .0])),
            ("ksk on a 2^32 modulus", |k| k.ksk.5 = CiphertextModulus::try_new_power_of_2(32).unwrap()),
            ("bsk GLWE size 0", |k| k.bsk.glwe_size = GlweSize(0)),
            ("bsk polynomial size 0", |k| k.bsk.polynomial_size = PolynomialSize(0)),
            ("bsk without levels", |k| k.bsk.level = DecompositionLevelCount(0)),
            ("bsk half the polynomial", |k| k.bsk.polynomial_size.0 /= 2),
            ("bsk one value more", |k| k.bsk.data.push(0)),
            ("bsk an input element short", |k| {
                let n = k.bsk.data.len() / ParamSet::M1C1.small_dimension().0;
                k.bsk.data.truncate(k.bsk.data.len() - n);
            }),
        ];
        for (what, forge) in forgeries {
            let mut forged = key.clone();
            forge(&mut forged);
            let err = parse(&forged).unwrap_err();
            assert!(err.to_string().contains("dimensions do not match"), "{what}: {err}");
        }
    }
}
