//! The TFHE evaluator on real ciphertexts (tfhe-rs): it must compute what the simulator computes,
//! and its lookup errors must follow the noise model the simulator injects.
use cifhe_core::builder::ModelBuilder;
use cifhe_core::fhe::plan::StagePlan;
use cifhe_core::fhe::{ClientKey, CompressedServerKey, EncryptedImage, Evaluator, FheError, ParamSet, Plan};
use cifhe_core::kernels::reference;
use cifhe_core::model::Shape;
use cifhe_core::noise::NoiseModel;
use cifhe_core::rng::Rng;
use cifhe_core::{Model, RunConfig, Simulator};
use std::sync::Mutex;

fn uniform(rng: &mut Rng, lo: i32, hi: i32) -> i32 {
    lo + (rng.next_u64() % (hi - lo + 1) as u64) as i32
}

fn ramp(channels: usize, levels: usize, from: i32, step: i32) -> Vec<Vec<i32>> {
    (0..channels).map(|c| (0..levels).map(|l| from + (c as i32 % 3) + step * l as i32).collect()).collect()
}

/// Input 3×4×4 with codes in {−1, 0, 1}; conv 1×1 → lookup (4-bit accumulators) → 2×2 sum-pool →
/// lookup (5 bits) → linear: every lookup keeps all its bits, so with the 2_2 set the bootstrap's
/// error probability is below 1e-10 and decryption must equal the exact circuit.
fn tiny_model(seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed, 7);
    let input = Shape { h: 4, w: 4, c: 3 };
    let table: Vec<[i8; 256]> = (0..3).map(|_| core::array::from_fn(|p| (p as i32 / 86 - 1) as i8)).collect();
    let mut b = ModelBuilder::new("fhe-test", input, &table);
    let w: Vec<i8> = (0..4 * 3).map(|_| uniform(&mut rng, -1, 1) as i8).collect();
    b.conv(&w, 4, 3, 1, 1, 1, 0);
    b.lookup(4, 0, 3, &ramp(4, 3, -1, 1), (-3, 3));
    b.sum_pool(2, 1);
    b.lookup(5, 0, 1, &ramp(4, 1, 4, 0), (0, 12));
    let flat = Shape { h: 3, w: 3, c: 4 };
    let w: Vec<i8> = (0..10 * flat.len()).map(|_| uniform(&mut rng, -3, 3) as i8).collect();
    b.linear(&w, 10, flat);
    b.output(&[0.1; 10], &[0.0; 10]);
    b.to_bytes()
}

#[test]
fn decrypted_output_equals_the_simulator_at_negligible_error() {
    let bytes = tiny_model(1);
    let model = Model::from_bytes(&bytes).unwrap();
    let plan = Plan::new(&model, ParamSet::M2C2, None).unwrap();
    assert!(plan.noise().max_p_error() < 1e-10, "p_error {}", plan.noise().max_p_error());
    let client = ClientKey::generate(ParamSet::M2C2);
    // The server key and the image travel as bytes.
    let sent = client.server_key().to_bytes();
    let server = CompressedServerKey::from_bytes(&sent, 1 << 30).unwrap().expand();
    let eval = Evaluator::new(&server, &model, plan.clone()).unwrap();
    let sim = Simulator::new(&model, RunConfig { rounding_bits: None, noise: NoiseModel::NONE.into(), ..RunConfig::new(&model) }).unwrap();
    let mut scratch = vec![0u64; model.scratch_words()];
    let mut rng = Rng::new(3, 3);
    for i in 0..3 {
        let image: Vec<u8> = (0..model.image_len()).map(|_| rng.next_u64() as u8).collect();
        let enc = EncryptedImage::from_bytes(&client.encrypt_image(&model, &plan, &image).unwrap().to_bytes(), 1 << 24).unwrap();
        let out = eval.run(&enc, &|_, _, _| {}).unwrap();
        let got = client.decrypt(&plan, &out).unwrap();
        let mut expect = vec![0i32; 10];
        sim.run(&image, i, &mut scratch, &mut expect).unwrap();
        assert_eq!(got, expect, "image {i}");
        assert_eq!(expect, reference::evaluate(&model, &image, None));
    }

    // Material from another client key is refused, clearly.
    let other = ClientKey::generate(ParamSet::M2C2);
    let foreign = other.encrypt_image(&model, &plan, &vec![0u8; model.image_len()]).unwrap();
    let err = eval.run(&foreign, &|_, _, _| {}).unwrap_err();
    assert!(matches!(err, FheError::ForeignKey { .. }), "{err}");
    assert!(err.to_string().contains("another") || err.to_string().contains("not under"), "{err}");
    // Wrong sizes, corrupt bytes, limits.
    assert!(client.encrypt_image(&model, &plan, &[0u8; 10]).unwrap_err().to_string().contains("image has 10 bytes"));
    let mut corrupt = sent.clone();
    corrupt.truncate(sent.len() / 2);
    assert!(CompressedServerKey::from_bytes(&corrupt, 1 << 30).is_err());
    assert!(matches!(CompressedServerKey::from_bytes(&sent, 1000), Err(FheError::TooLarge { .. })));
    assert!(EncryptedImage::from_bytes(&sent, 1 << 30).unwrap_err().to_string().contains("not a cifhe encrypted image"));
}

/// One lookup stage reading conv accumulators of 8 bits kept to 6: with the small 1_1 set a step
/// is only 8 slots, so the bootstrap's errors are frequent enough to count.
fn noisy_model() -> Vec<u8> {
    let mut rng = Rng::new(11, 7);
    let input = Shape { h: 8, w: 8, c: 3 };
    let table: Vec<[i8; 256]> = (0..3).map(|_| core::array::from_fn(|p| (p as i32 / 16 - 8) as i8)).collect();
    let mut b = ModelBuilder::new("fhe-noise", input, &table);
    let w: Vec<i8> = (0..8 * 27).map(|_| uniform(&mut rng, -1, 1) as i8).collect();
    b.conv(&w, 8, 3, 3, 3, 1, 1);
    // An identity-like staircase, so the output code reveals the rounded input.
    let t: Vec<Vec<i32>> = (0..8).map(|_| (0..63).map(|l| -126 + 4 * l).collect()).collect();
    b.lookup(8, -32, 31, &t, (-128, 127));
    let flat = Shape { h: 8, w: 8, c: 8 };
    let w: Vec<i8> = (0..2 * flat.len()).map(|_| uniform(&mut rng, -1, 1) as i8).collect();
    b.linear(&w, 2, flat);
    b.output(&[1.0; 2], &[0.0; 2]);
    b.to_bytes()
}

#[test]
fn bootstrap_errors_follow_the_simulators_noise_model() {
    let bytes = noisy_model();
    let model = Model::from_bytes(&bytes).unwrap();
    let plan = Plan::new(&model, ParamSet::M1C1, Some(6)).unwrap();
    let StagePlan::Lookup(lp) = plan.stages[1].clone() else { panic!("stage 1 is the lookup") };
    let (n, k) = (ParamSet::M1C1.polynomial_size().0, lp.box_slots);
    assert_eq!(k, 8);
    let noise = NoiseModel::from_sigma(lp.sigma_steps);
    let client = ClientKey::generate(ParamSet::M1C1);
    let server = client.server_key().expand();
    let eval = Evaluator::new(&server, &model, plan.clone()).unwrap();
    let mut rng = Rng::new(5, 5);
    let (mut sq, mut count, mut flips, mut expected) = (0.0f64, 0usize, 0usize, 0.0f64);
    for _ in 0..4 {
        let image: Vec<u8> = (0..model.image_len()).map(|_| rng.next_u64() as u8).collect();
        // The clear accumulators of the conv: what each lookup input should encode.
        let x = reference::input_codes(&model, &image);
        let mut acc = vec![0i32; 8 * 8 * 8];
        reference::Taps::of_stage(&model.stages()[0], model.input_shape()).unwrap().apply(&x, &mut acc);
        let seen = Mutex::new(vec![0usize; acc.len()]);
        let enc = client.encrypt_image(&model, &plan, &image).unwrap();
        eval.run_traced(&enc, &|_, _, _| {}, &|stage, e, ct| {
            if stage == 1 {
                seen.lock().unwrap()[e] = client.lookup_slot(ct);
            }
        })
        .unwrap();
        for (e, &slot) in seen.into_inner().unwrap().iter().enumerate() {
            // Noiseless position in slots: (acc·Δ + offset)·2N/2^64, minus the centered switch's half slot.
            let y = (acc[e] as f64 * lp.delta_in as f64 + lp.input_offset() as f64) * (2 * n) as f64 / 2f64.powi(64) - 0.5;
            let d = (slot as f64 - y).rem_euclid((2 * n) as f64);
            let d = if d > n as f64 { d - (2 * n) as f64 } else { d };
            sq += d * d;
            count += 1;
            // Box read vs the exact round-half-up, and the model's probability of a difference.
            let exact = lp.rounding.round(acc[e]);
            let signed = if slot >= n { slot as i64 - 2 * n as i64 } else { slot as i64 };
            let read = signed.div_euclid(k as i64) as i32;
            flips += (read != exact) as usize;
            let f = (lp.rounding.low_bits(acc[e]) as f64 + 0.5) / (1u64 << lp.rounding.lsbs) as f64 - 0.5;
            expected += 1.0 - noise.p_offset(f, 0);
        }
    }
    let sigma = (sq / count as f64).sqrt() / k as f64;
    assert!((sigma / lp.sigma_steps - 1.0).abs() < 0.15, "measured σ {sigma:.4} steps, model {:.4}", lp.sigma_steps);
    let tol = 5.0 * expected.sqrt() + 3.0;
    assert!((flips as f64 - expected).abs() < tol, "{flips} off-by-one lookups, the model expects {expected:.1}");
    eprintln!("σ measured {sigma:.4} vs model {:.4} steps; {flips} flips vs {expected:.1} expected over {count} lookups", lp.sigma_steps);
}
