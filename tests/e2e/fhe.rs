//! The TFHE evaluator on real ciphertexts (tfhe-rs): it must compute what the simulator computes,
//! and its lookup errors must follow the noise model the simulator injects.
use cifhe_core::builder::ModelBuilder;
use cifhe_core::fhe::measure::{measure, LookupNoise};
use cifhe_core::fhe::plan::StagePlan;
use cifhe_core::fhe::{Bootstrap, ClientKey, CompressedServerKey, EncryptedImage, Evaluator, FheError, ParamSet, Plan};
use cifhe_core::kernels::reference;
use cifhe_core::model::Shape;
use cifhe_core::noise::NoiseModel;
use cifhe_core::rng::Rng;
use cifhe_core::{Model, RunConfig, Simulator};

fn uniform(rng: &mut Rng, lo: i32, hi: i32) -> i32 {
    lo + (rng.next_u64() % (hi - lo + 1) as u64) as i32
}

fn ramp(channels: usize, levels: usize, from: i32, step: i32) -> Vec<Vec<i32>> {
    (0..channels).map(|c| (0..levels).map(|l| from + (c as i32 % 3) + step * l as i32).collect()).collect()
}

/// Input 3×4×4 with codes in {−1, 0, 1}; conv 1×1 → lookup (`first_bits`-bit accumulators) → 2×2
/// sum-pool → lookup (4 bits about 6) → linear: every lookup keeps all its bits, so with the 2_2 set the
/// bootstrap's error probability is below 1e-10 and decryption must equal the exact circuit. The
/// conv's accumulators span [−3, 3]: 4 bits hold them, 2 bits do not (they wrap on the torus).
fn tiny_model(seed: u64, first_bits: u8) -> Vec<u8> {
    let mut rng = Rng::new(seed, 7);
    let input = Shape { h: 4, w: 4, c: 3 };
    let table: Vec<[i8; 256]> = (0..3).map(|_| core::array::from_fn(|p| (p as i32 / 86 - 1) as i8)).collect();
    let mut b = ModelBuilder::new("fhe-test", input, &table);
    let w: Vec<i8> = (0..4 * 3).map(|_| uniform(&mut rng, -1, 1) as i8).collect();
    b.conv(&w, 4, 3, 1, 1, 1, 0);
    b.lookup(first_bits, 0, 3, &ramp(4, 3, -1, 1), (-3, 3));
    b.sum_pool(2, 1);
    b.lookup(5, 0, 1, &ramp(4, 1, 4, 0), (0, 12));
    // The pool's sums, [0, 12], held by 4 bits about their centre, 6 (a plaintext subtraction).
    b.centre(b.len() - 1, 6, 4);
    let flat = Shape { h: 3, w: 3, c: 4 };
    let w: Vec<i8> = (0..10 * flat.len()).map(|_| uniform(&mut rng, -3, 3) as i8).collect();
    b.linear(&w, 10, flat);
    b.output(&[0.1; 10], &[0.0; 10]);
    b.to_bytes()
}

#[test]
fn decrypted_output_equals_the_simulator_at_negligible_error() {
    let bytes = tiny_model(1, 4);
    let model = Model::from_bytes(&bytes).unwrap();
    let plan = Plan::new(&model, ParamSet::M2C2, None).unwrap();
    assert!(plan.noise().max_p_error() < 1e-10, "p_error {}", plan.noise().max_p_error());
    let client = ClientKey::generate(ParamSet::M2C2);
    // The server key and the image travel as bytes.
    let sent = client.server_key(&plan).unwrap().to_bytes();
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

    // Accumulators outside their declared width wrap on the torus, and the bootstrap reads the
    // table's mirror: the simulator must compute the same (and count them).
    let narrow_bytes = tiny_model(1, 2);
    let narrow = Model::from_bytes(&narrow_bytes).unwrap();
    let narrow_plan = Plan::new(&narrow, ParamSet::M2C2, None).unwrap();
    let narrow_eval = Evaluator::new(&server, &narrow, narrow_plan.clone()).unwrap();
    let narrow_sim = Simulator::new(&narrow, RunConfig { rounding_bits: None, noise: NoiseModel::NONE.into(), ..RunConfig::new(&narrow) }).unwrap();
    let mut overflows = 0;
    for i in 0..2 {
        let image: Vec<u8> = (0..narrow.image_len()).map(|_| rng.next_u64() as u8).collect();
        let out = narrow_eval.run(&client.encrypt_image(&narrow, &narrow_plan, &image).unwrap(), &|_, _, _| {}).unwrap();
        let mut expect = vec![0i32; 10];
        overflows += narrow_sim.run(&image, i, &mut scratch, &mut expect).unwrap().overflows;
        assert_eq!(client.decrypt(&narrow_plan, &out).unwrap(), expect, "narrow model, image {i}");
        assert_eq!(expect, reference::evaluate(&narrow, &image, None));
    }
    assert!(overflows > 0, "the narrow model's accumulators must leave their width, or this measures nothing");

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
    assert_eq!(lp.box_slots, 8);
    let client = ClientKey::generate(ParamSet::M1C1);
    let server = client.server_key(&plan).unwrap().expand();
    let eval = Evaluator::new(&server, &model, plan.clone()).unwrap();
    let mut rng = Rng::new(5, 5);
    let mut total: Option<LookupNoise> = None;
    for _ in 0..4 {
        let image: Vec<u8> = (0..model.image_len()).map(|_| rng.next_u64() as u8).collect();
        let stages = measure(&client, &eval, &image, &|_, _, _| {}).unwrap();
        assert_eq!(stages.len(), 1, "one lookup stage");
        assert_eq!((stages[0].stage, stages[0].lookups), (1, 8 * 8 * 8));
        match &mut total {
            Some(t) => t.merge(&stages[0]),
            None => total = Some(stages[0].clone()),
        }
    }
    let t = total.unwrap();
    let (measured, model_sigma) = (t.measured_sigma(), t.model_sigma());
    assert!((measured / model_sigma - 1.0).abs() < 0.15, "measured σ {measured:.4} steps, model {model_sigma:.4}");
    // The plan bounds every element by the worst channel's weights: never below the per-element model.
    assert!(t.plan_sigma >= model_sigma * 0.999, "plan σ {} below the per-element model {model_sigma}", t.plan_sigma);
    let tol = 5.0 * t.expected_off.sqrt() + 3.0;
    assert!((t.off as f64 - t.expected_off).abs() < tol, "{} off-by-one lookups, the model expects {:.1}", t.off, t.expected_off);
    assert!(t.off > 0, "the 1_1 set at 6 bits must show some errors, or this test measures nothing");
    eprintln!("σ measured {measured:.4} vs model {model_sigma:.4} steps; {} off vs {:.1} expected over {} lookups", t.off, t.expected_off, t.lookups);
}

/// Conv → lookup A → wide conv (144 taps of weights up to ±12) → lookup B → linear: under 2_2,
/// B's error is dominated by A's bootstrap noise grown through the wide dot product, which the fine
/// key cuts down to the modulus switch's floor.
fn wide_model() -> Vec<u8> {
    let mut rng = Rng::new(13, 7);
    let input = Shape { h: 8, w: 8, c: 3 };
    let table: Vec<[i8; 256]> = (0..3).map(|_| core::array::from_fn(|p| (p as i32 / 32 - 4) as i8)).collect();
    let mut b = ModelBuilder::new("fhe-wide", input, &table);
    let w: Vec<i8> = (0..16 * 27).map(|_| uniform(&mut rng, -1, 1) as i8).collect();
    b.conv(&w, 16, 3, 3, 3, 1, 1);
    b.lookup(8, 0, 7, &ramp(16, 7, -9, 3), (-40, 40));
    let w: Vec<i8> = (0..16 * 144).map(|_| uniform(&mut rng, -12, 12) as i8).collect();
    b.conv(&w, 16, 16, 3, 3, 1, 1);
    b.lookup(15, 0, 3, &ramp(16, 3, -400, 400), (-8000, 8000));
    let flat = Shape { h: 8, w: 8, c: 16 };
    let w: Vec<i8> = (0..2 * flat.len()).map(|_| uniform(&mut rng, -1, 1) as i8).collect();
    b.linear(&w, 2, flat);
    b.output(&[1.0; 2], &[0.0; 2]);
    b.to_bytes()
}

#[test]
fn the_fine_bootstrap_cuts_the_noise_it_is_chosen_for() {
    let bytes = wide_model();
    let model = Model::from_bytes(&bytes).unwrap();
    let params = ParamSet::M2C2;
    let standard = Plan::new(&model, params, Some(6)).unwrap();
    // The per-stage choice puts the fine key on lookup A (stage 1), which feeds the wide conv.
    let chosen = Plan::for_set(&model, params, Some(6), 0.05).unwrap();
    let fine = Plan::with_bootstraps(&model, params, Some(6), |_| Bootstrap::Fine).unwrap();
    let sigma_b = |p: &Plan| if let StagePlan::Lookup(l) = &p.stages[3] { l.sigma_steps } else { unreachable!() };
    assert!(chosen.uses_fine(), "lookup B σ: standard {}, fine {}", sigma_b(&standard), sigma_b(&fine));
    let kinds: Vec<_> = chosen.stages.iter().filter_map(|s| if let StagePlan::Lookup(l) = s { Some(l.bootstrap) } else { None }).collect();
    assert_eq!(kinds, [Bootstrap::Fine, Bootstrap::Standard]);
    let client = ClientKey::generate(params);
    // A key made for the standard plan lacks the fine key: the evaluator says so.
    let lean = client.server_key(&standard).unwrap().expand();
    let Err(refused) = Evaluator::new(&lean, &model, chosen.clone()) else { panic!("a key without the fine bootstrapping key was accepted") };
    assert!(refused.to_string().contains("fine"), "{refused}");
    let server = CompressedServerKey::from_bytes(&client.server_key(&chosen).unwrap().to_bytes(), 1 << 30).unwrap().expand();
    let mut rng = Rng::new(21, 1);
    let image: Vec<u8> = (0..model.image_len()).map(|_| rng.next_u64() as u8).collect();
    let mut sigma = Vec::new();
    for plan in [standard, chosen] {
        let stages = measure(&client, &Evaluator::new(&server, &model, plan).unwrap(), &image, &|_, _, _| {}).unwrap();
        let (a, b) = (&stages[0], &stages[1]);
        assert_eq!((a.stage, b.stage), (1, 3));
        // The bootstrap's own output noise is tfhe-rs's formula, for either key.
        let (out, formula) = (a.output_variance().sqrt(), a.output_model_variance.sqrt());
        eprintln!("lookup A outputs: σ 2^{:.2} measured, 2^{:.2} by the formula", out.log2(), formula.log2());
        assert!((out / formula - 1.0).abs() < 0.15, "bootstrap output σ 2^{:.2}, formula 2^{:.2}", out.log2(), formula.log2());
        let (measured, modelled) = (b.measured_sigma(), b.model_sigma());
        assert!((measured / modelled - 1.0).abs() < 0.15, "lookup B: measured σ {measured:.4}, model {modelled:.4}");
        sigma.push((measured, modelled));
    }
    eprintln!("lookup B: σ standard {:.4} (model {:.4}), fine {:.4} (model {:.4})", sigma[0].0, sigma[0].1, sigma[1].0, sigma[1].1);
    assert!(sigma[1].1 < 0.7 * sigma[0].1, "the model must see the fine key's gain: {sigma:?}");
    assert!(sigma[1].0 < 0.7 * sigma[0].0, "real ciphertexts must show it: {sigma:?}");
}
