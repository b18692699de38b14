//! Model files: round trip, zero-copy, and clear refusals of truncated, corrupt and invalid files.
mod common;

use cifhe_core::builder::ModelBuilder;
use cifhe_core::format::HEADER_LEN;
use cifhe_core::model::Shape;
use cifhe_core::{Model, ModelError};

fn model_bytes() -> Vec<u8> {
    common::random_model(7, Shape { h: 8, w: 8, c: 3 }, 10)
}

#[test]
fn round_trip_borrows_weights_from_the_buffer() {
    let bytes = model_bytes();
    let model = Model::from_bytes(&bytes).unwrap();
    let range = bytes.as_ptr_range();
    for stage in model.stages() {
        if let cifhe_core::Stage::Conv(c) = stage {
            assert!(range.contains(&c.weights.as_ptr()), "weights must point into the file bytes");
        }
    }
    // Re-encoding without an allocator gives the same bytes.
    let mut buf = vec![0u8; bytes.len() + 100];
    let n = model.file().encode_into(&mut buf).unwrap().len();
    assert_eq!(&buf[..n], &bytes[..]);
    assert!(matches!(model.file().encode_into(&mut [0u8; 64]), Err(ModelError::BufferTooSmall)));
}

/// A file of format version 1, written before lookups had a centre: the untrained VGG11 of the
/// speed benchmarks (`train-host init`), kept as it was written.
const VERSION_1_FILE: &[u8] = include_bytes!("../../models/vgg11-random-cifar10.cifhe");

#[test]
fn a_version_1_file_reads_as_lookups_about_zero_and_is_rewritten_as_the_current_version() {
    assert_eq!(u16::from_le_bytes([VERSION_1_FILE[8], VERSION_1_FILE[9]]), 1, "the test needs a version 1 file");
    let old = Model::from_bytes(VERSION_1_FILE).unwrap();
    let lookups = || old.stages().iter().filter_map(|s| if let cifhe_core::Stage::Lookup(l) = s { Some(l.clone()) } else { None });
    assert!(lookups().count() > 3 && lookups().all(|l| l.centre == 0));
    let rewritten = old.file().to_bytes();
    assert_eq!(u16::from_le_bytes([rewritten[8], rewritten[9]]), cifhe_core::format::FORMAT_VERSION);
    assert_eq!(Model::from_bytes(&rewritten).unwrap().file(), old.file(), "the same circuit in the current layout");
    // Centred, the pools' lookups (three of [0, 60], one of [0, 606]) need a bit less; nothing else
    // about the model changes.
    let centred = old.file().clone().with_centred_lookups();
    let pools: Vec<_> = lookups()
        .zip(centred.stages.iter().filter_map(|s| if let cifhe_core::Stage::Lookup(l) = s { Some(l) } else { None }))
        .filter(|(l, _)| l.calibrated.0 == 0)
        .collect();
    assert!(!pools.is_empty());
    for (before, after) in pools {
        assert_eq!((after.acc_bits, after.thresholds), (before.acc_bits - 1, before.thresholds), "{:?}", before.calibrated);
        assert!(after.centre > 0);
    }
}

#[test]
fn every_truncation_and_every_single_byte_flip_is_refused_without_panic() {
    let bytes = model_bytes();
    for n in 0..bytes.len() {
        assert!(Model::from_bytes(&bytes[..n]).is_err(), "truncated to {n} bytes was accepted");
    }
    let step = (bytes.len() / 997).max(1);
    for i in (0..bytes.len()).step_by(step) {
        let mut b = bytes.clone();
        b[i] ^= 0x5A;
        assert!(Model::from_bytes(&b).is_err(), "flipped byte {i} was accepted");
    }
}

#[test]
fn semantic_errors_name_the_stage() {
    let table = [[0i8; 256]; 3];
    // Last stage a lookup: its output would never be dequantized.
    let mut b = ModelBuilder::new("bad", Shape { h: 1, w: 1, c: 3 }, &table);
    b.linear(&[1; 12], 4, Shape { h: 1, w: 1, c: 3 }).lookup(8, 0, 1, &vec![vec![0]; 4], (0, 0)).output(&[1.0; 4], &[0.0; 4]);
    let err = Model::from_bytes(&b.to_bytes()).unwrap_err();
    assert!(err.to_string().contains("last stage"), "{err}");
    // Decreasing thresholds.
    let mut b = ModelBuilder::new("bad", Shape { h: 2, w: 2, c: 3 }, &table);
    b.conv(&[1; 12], 1, 3, 2, 2, 1, 0).lookup(8, 0, 2, &[vec![5, 1]], (0, 0)).linear(&[1], 1, Shape { h: 1, w: 1, c: 1 }).output(&[1.0], &[0.0]);
    let err = Model::from_bytes(&b.to_bytes()).unwrap_err();
    assert_eq!(err, ModelError::Invalid { stage: 1, reason: "lookup thresholds must be non-decreasing" });
    assert_eq!(err.to_string(), "invalid model, stage 1: lookup thresholds must be non-decreasing");
    // Two linear stages in a row: the second would read accumulators, not codes.
    let mut b = ModelBuilder::new("bad", Shape { h: 1, w: 1, c: 3 }, &table);
    b.linear(&[1; 6], 2, Shape { h: 1, w: 1, c: 3 }).linear(&[1; 2], 1, Shape { h: 1, w: 1, c: 2 }).output(&[1.0], &[0.0]);
    assert!(Model::from_bytes(&b.to_bytes()).unwrap_err().to_string().contains("stage 1"));
    // Foreign bytes.
    assert_eq!(Model::from_bytes(b"\x89PNG\r\n\x1a\n0000000000000000").unwrap_err(), ModelError::BadMagic);
    assert!(Model::from_bytes(&[0u8; HEADER_LEN - 1]).is_err());
}

/// A model of every stage kind with as few weights as can be: nearly all of its bytes are
/// shapes, widths, ranges and thresholds.
fn tiny_model_bytes() -> Vec<u8> {
    let table = [core::array::from_fn(|p| (p / 32) as i8)];
    let mut b = ModelBuilder::new("tiny", Shape { h: 4, w: 4, c: 1 }, &table);
    let w: Vec<i8> = (0..18).map(|i| (i % 7) as i8 - 3).collect();
    b.conv(&w, 2, 1, 3, 3, 1, 1).lookup(9, 0, 3, &[vec![-20, 0, 20], vec![-5, 5, 60]], (-189, 189));
    b.sum_pool(2, 2).lookup(8, 0, 3, &[vec![1, 4, 9], vec![0, 2, 11]], (0, 12));
    let w: Vec<i8> = (0..16).map(|i| (i % 5) as i8 - 2).collect();
    b.linear(&w, 2, Shape { h: 2, w: 2, c: 2 }).output(&[0.1, 0.2], &[0.0, 0.5]).rounding_bits(Some(6));
    b.to_bytes()
}

/// The checksum catches accidents; a file altered on purpose can carry a valid one. Such a file
/// must still be refused by the circuit checks, or be a circuit the simulator runs without a
/// panic: no shape, width or threshold in it may send an index out of bounds or overflow (the
/// test profile keeps overflow checks, so an overflow is a panic here). Leaving out the check of a
/// pool window against its input, or of a lookup's accumulator width, makes it fail.
#[test]
fn payloads_altered_behind_a_valid_checksum_are_refused_or_run_without_panic() {
    for bytes in [tiny_model_bytes(), model_bytes()] {
        let (accepted, reshaped, refused) = alter_behind_a_valid_checksum(&bytes, 20_000);
        // Both kinds occur, and accepted circuits of other shapes and code ranges than the
        // original's, so the test exercises the checks and the runs.
        assert!(accepted > 1000 && refused > 1000 && reshaped > 100, "accepted {accepted} (reshaped {reshaped}), refused {refused}");
    }
}

/// Changes a few payload bytes of `bytes` in each of `trials` copies, mostly outside the weights,
/// writes a valid header, loads it and runs what loads: (accepted, of which reshaped, refused).
fn alter_behind_a_valid_checksum(bytes: &[u8], trials: u64) -> (usize, usize, usize) {
    use cifhe_core::format::write_header;
    use cifhe_core::rng::Rng;
    use cifhe_core::{RunConfig, Simulator, Stage};
    let model = Model::from_bytes(bytes).unwrap();
    let shapes = |m: &Model<'_>| m.info().iter().map(|i| (i.input, i.output, i.codes)).collect::<Vec<_>>();
    let original = shapes(&model);
    // The weights are read in place from the file, so where they lie in it is known.
    let offset = |w: &[i8]| w.as_ptr() as usize - bytes.as_ptr() as usize;
    let weights: Vec<_> = model
        .stages()
        .iter()
        .filter_map(|stage| match stage {
            Stage::Conv(c) => Some(c.weights()),
            Stage::Linear(l) => Some(l.weights()),
            _ => None,
        })
        .map(|w| offset(w)..offset(w) + w.len())
        .collect();
    let structure: Vec<usize> = (HEADER_LEN..bytes.len()).filter(|i| !weights.iter().any(|w| w.contains(i))).collect();
    let mut rng = Rng::new(11, 0);
    let (mut accepted, mut reshaped, mut refused) = (0, 0, 0);
    for trial in 0..trials {
        let mut b = bytes.to_vec();
        // One to three bytes changed, three in four outside the weights: to a random value, or by
        // ±1 (a shape or count one off).
        for _ in 0..1 + trial % 3 {
            let i = match rng.next_u64() % 4 {
                0 => HEADER_LEN + rng.next_u64() as usize % (bytes.len() - HEADER_LEN),
                _ => structure[rng.next_u64() as usize % structure.len()],
            };
            b[i] = match rng.next_u64() % 3 {
                0 => rng.next_u64() as u8,
                1 => b[i].wrapping_add(1),
                _ => b[i].wrapping_sub(1),
            };
        }
        let (header, payload) = b.split_at_mut(HEADER_LEN);
        write_header(payload, header).unwrap();
        let Ok(model) = Model::from_bytes(&b) else {
            refused += 1;
            continue;
        };
        accepted += 1;
        reshaped += usize::from(shapes(&model) != original);
        cifhe_core::analysis::analyze(&model);
        let Ok(sim) = Simulator::new(&model, RunConfig::new(&model)) else { continue };
        let mut scratch = vec![0u64; model.scratch_words()];
        let mut out = vec![0; model.classes()];
        let image = common::random_image(&mut rng, model.image_len());
        let (class, _) = sim.classify(&image, trial, &mut scratch, &mut out).unwrap();
        assert!(class < model.classes());
        #[cfg(feature = "fhe")]
        tfhe_layout(&model, &image, &mut scratch, &mut out);
    }
    (accepted, reshaped, refused)
}

/// What the TFHE evaluator derives from an accepted model before any key exists: its layout
/// under the cheapest parameter set, lookup tables (of each lookup's first and last channels), and
/// the simulation of that layout.
#[cfg(feature = "fhe")]
fn tfhe_layout(model: &Model<'_>, image: &[u8], scratch: &mut [u64], out: &mut [i32]) {
    use cifhe_core::fhe::plan::{StagePlan, DEFAULT_P_ERROR_TARGET};
    use cifhe_core::fhe::Plan;
    use cifhe_core::{RunConfig, Simulator, Stage};
    let Ok(plan) = Plan::cheapest(model, model.rounding_bits(), DEFAULT_P_ERROR_TARGET) else { return };
    let n = plan.params.polynomial_size().0;
    for ((stage, stage_plan), info) in model.stages().iter().zip(&plan.stages).zip(model.info()) {
        if let (Stage::Lookup(l), StagePlan::Lookup(lp)) = (stage, stage_plan) {
            for ch in [0, info.output.c - 1] {
                assert_eq!(lp.table(l, ch, info.output.c, n).0.len(), n);
            }
        }
    }
    let sim = Simulator::new(model, plan.simulation(RunConfig::new(model))).unwrap();
    sim.classify(image, 0, scratch, out).unwrap();
}
