//! `cifhe-core`: the compiled-model format, the exact integer kernels and the FHE simulator of cifhe.
//!
//! A compiled model is an integer circuit: quantized input codes flow through *linear* stages
//! (convolution, sum-pool, linear: exact integer dot products that TFHE evaluates without
//! bootstrapping) and *lookup* stages (one univariate table per channel applied to the rounded
//! accumulator: one programmable bootstrap per element in TFHE). The last linear stage's
//! accumulators are decrypted and dequantized in the clear.
//!
//! The crate is `#![no_std]` and its inference path needs no allocator: a [`Model`] borrows its
//! weights zero-copy from the model bytes, and [`Simulator::run`] works in a scratch arena the caller
//! provides ([`Model::scratch_words`] says how large). The `std` feature adds run-time SIMD dispatch
//! and batch evaluation on all cores ([`batch`]).
//!
//! Module map, entities before algorithms (as in tfhe-rs's `core_crypto`):
//! - [`format`](mod@format): the file envelope (magic, version, length, CRC-32) around the postcard payload.
//! - [`model`]: the stages and their validation into a [`Model`] with shapes and code ranges.
//! - [`analysis`]: accumulator bounds, calibrated widths, MACs and PBS counts per stage.
//! - [`kernels`]: the integer kernels (naive reference, portable, AVX2, AVX-512 VNNI).
//! - [`rounding`]: the rounding of an accumulator before a lookup and the lookup itself.
//! - [`noise`]: the error model of a PBS, a function of its noise standard deviation.
//! - [`sim`]: the FHE simulator that runs a model on one image.
//! - [`image`]: any picture to a model's input (area-averaged RGB planes).
//! - `fhe` (feature `fhe`): the TFHE evaluator on tfhe-rs, with the parameters and noise formulas
//!   the simulator's noise comes from.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod analysis;
#[cfg(feature = "std")]
pub mod batch;
#[cfg(feature = "std")]
pub mod builder;
pub mod error;
#[cfg(feature = "fhe")]
pub mod fhe;
pub mod format;
pub mod image;
pub mod kernels;
pub mod model;
pub mod noise;
pub mod rng;
pub mod rounding;
pub mod sim;

pub use error::{ModelError, RunError};
pub use model::{Model, ModelFile, Stage};
pub use noise::NoiseModel;
pub use rounding::RoundingMode;
pub use sim::{RunConfig, RunStats, Simulator};
