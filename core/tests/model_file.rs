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
