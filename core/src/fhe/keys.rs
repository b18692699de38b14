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

    /// Parses a server key, refusing anything longer than `limit` bytes or malformed.
    pub fn from_bytes(bytes: &[u8], limit: usize) -> Result<Self, FheError> {
        let key: Self = wire::decode(wire::Kind::ServerKey, bytes, limit)?;
        let p = key.params;
        let bsk_ok = |bsk: &SeededLweBootstrapKeyOwned<u64>, kind| {
            bsk.input_lwe_dimension() == p.small_dimension()
                && bsk.polynomial_size() == p.polynomial_size()
                && bsk.glwe_size() == p.tfhe().glwe_dimension.to_glwe_size()
                && (bsk.decomposition_base_log(), bsk.decomposition_level_count()) == p.pbs_decomposition(kind)
        };
        let shapes_ok = key.ksk.input_key_lwe_dimension() == p.big_dimension()
            && key.ksk.output_key_lwe_dimension() == p.small_dimension()
            && key.ksk.decomposition_level_count() == p.tfhe().ks_level
            && bsk_ok(&key.bsk, Bootstrap::Standard)
            && key.fine_bsk.as_ref().is_none_or(|b| bsk_ok(b, Bootstrap::Fine));
        if !shapes_ok {
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
