//! The simulator against the naive evaluation of the whole circuit, and its noise against the model.
mod common;

use cifhe_core::kernels::{reference, Isa};
use cifhe_core::model::Shape;
use cifhe_core::rng::Rng;
use cifhe_core::{Model, NoiseModel, RoundingMode, RunConfig, Simulator};

fn exact_config(model: &Model<'_>, bits: Option<u8>, isa: Isa) -> RunConfig {
    RunConfig { rounding_bits: bits, noise: NoiseModel::NONE.into(), isa, ..RunConfig::new(model) }
}

#[test]
fn simulator_equals_the_naive_circuit_on_random_models() {
    let mut rng = Rng::new(5, 5);
    for seed in 0..40 {
        let input = Shape { h: 5 + seed as usize % 6, w: 4 + seed as usize % 7, c: 1 + seed as usize % 4 };
        let bytes = common::random_model(seed, input, 1 + seed as usize % 12);
        let model = Model::from_bytes(&bytes).expect("random model is valid");
        let mut scratch = vec![0u64; model.scratch_words()];
        let mut out = vec![0i32; model.classes()];
        for bits in [None, Some(8), Some(6), Some(3), Some(1)] {
            for isa in Isa::available() {
                let sim = Simulator::new(&model, exact_config(&model, bits, isa)).unwrap();
                for i in 0..3 {
                    let image = common::random_image(&mut rng, model.image_len());
                    sim.run(&image, i, &mut scratch, &mut out).unwrap();
                    let expect = reference::evaluate(&model, &image, bits);
                    assert_eq!(out, expect, "seed {seed} bits {bits:?} {isa:?} image {i}");
                }
            }
        }
    }
}

#[test]
fn approximate_rounding_without_noise_is_exact_rounding() {
    let bytes = common::random_model(3, Shape { h: 8, w: 8, c: 3 }, 10);
    let model = Model::from_bytes(&bytes).unwrap();
    let mut scratch = vec![0u64; model.scratch_words()];
    let image = common::random_image(&mut Rng::new(1, 1), model.image_len());
    let (mut a, mut b) = (vec![0; 10], vec![0; 10]);
    let exact = exact_config(&model, Some(5), Isa::detect());
    Simulator::new(&model, exact).unwrap().run(&image, 0, &mut scratch, &mut a).unwrap();
    let approx = RunConfig { mode: RoundingMode::Approximate, ..exact };
    Simulator::new(&model, approx).unwrap().run(&image, 0, &mut scratch, &mut b).unwrap();
    assert_eq!(a, b);
}

#[test]
fn injected_error_rate_matches_p_error_and_runs_are_reproducible() {
    let bytes = common::random_model(11, Shape { h: 12, w: 12, c: 3 }, 10);
    let model = Model::from_bytes(&bytes).unwrap();
    let mut scratch = vec![0u64; model.scratch_words()];
    let mut out = vec![0; 10];
    let p = 0.02;
    let cfg = RunConfig { noise: NoiseModel::from_p_error(p).into(), seed: 42, ..RunConfig::new(&model) };
    let sim = Simulator::new(&model, cfg).unwrap();
    let image = common::random_image(&mut Rng::new(2, 2), model.image_len());
    let (mut lookups, mut events) = (0u64, 0u64);
    for i in 0..200 {
        let s = sim.run(&image, i, &mut scratch, &mut out).unwrap();
        lookups += s.lookups;
        events += s.noise_events;
    }
    let rate = events as f64 / lookups as f64;
    let tol = 5.0 * (p * (1.0 - p) / lookups as f64).sqrt();
    assert!((rate - p).abs() < tol, "measured {rate}, expected {p} ± {tol}");
    // Same seed and index: same result; another index: another noise draw.
    let mut again = vec![0; 10];
    let s1 = sim.run(&image, 7, &mut scratch, &mut out).unwrap();
    let s2 = sim.run(&image, 7, &mut scratch, &mut again).unwrap();
    assert_eq!((out.clone(), s1), (again, s2));
}

#[test]
fn bad_inputs_are_refused_with_errors() {
    use cifhe_core::RunError;
    let bytes = common::random_model(1, Shape { h: 6, w: 6, c: 3 }, 4);
    let model = Model::from_bytes(&bytes).unwrap();
    let sim = Simulator::new(&model, RunConfig::new(&model)).unwrap();
    let mut scratch = vec![0u64; model.scratch_words()];
    let mut out = vec![0; 4];
    let err = sim.run(&[0u8; 10], 0, &mut scratch, &mut out).unwrap_err();
    assert_eq!(err, RunError::ImageSize { expected: 108, actual: 10 });
    assert!(err.to_string().contains("108"));
    let image = vec![0u8; 108];
    assert!(matches!(sim.run(&image, 0, &mut scratch[..3], &mut out), Err(RunError::ScratchTooSmall { .. })));
    assert!(matches!(sim.run(&image, 0, &mut scratch, &mut [0; 2]), Err(RunError::OutputTooSmall { needed: 4, actual: 2 })));
    let cfg = RunConfig { rounding_bits: Some(0), ..RunConfig::new(&model) };
    assert!(matches!(Simulator::new(&model, cfg), Err(RunError::BadRounding { bits: 0 })));
}
