//! Bit widths of the weight and activation codes: one width for the whole network, or one per
//! layer (`--weight-bits 8,5,5,5,5,5,5,5,8`), so that the layers most sensitive to quantization —
//! typically the first and the last — can keep more precision where it costs the least.
//!
//! Positions are named after the architecture (`conv1`, `pool1`, …, `linear`) so that a list of
//! the wrong length says which widths were expected.
use crate::arch::{Arch, Layer};
use crate::net::sites;
use std::fmt;
use std::str::FromStr;

/// The narrowest and widest codes: the circuit stores weight and activation codes as `i8`.
pub const RANGE: std::ops::RangeInclusive<u32> = 2..=8;

/// Bits of one family of codes: the same at every position, or one per position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Widths(Vec<u32>);

impl Widths {
    /// `bits` at every position.
    pub fn uniform(bits: u32) -> Widths {
        Widths(vec![bits])
    }

    /// Widths as a list: one for all positions, or one per position (none: invalid).
    pub fn from_list(list: Vec<u32>) -> Widths {
        assert!(!list.is_empty(), "a list of bit widths has at least one");
        Widths(list)
    }

    /// Bits at position `i` (see [`weight_positions`] and [`act_positions`]).
    pub fn at(&self, i: usize) -> u32 {
        match self.0.as_slice() {
            [bits] => *bits,
            list => list[i],
        }
    }

    /// The width of a uniform list, `None` for per-layer widths.
    pub fn as_uniform(&self) -> Option<u32> {
        match self.0.as_slice() {
            [bits] => Some(*bits),
            _ => None,
        }
    }

    /// The widths as a list, one per position or a single one for all.
    pub fn as_slice(&self) -> &[u32] {
        &self.0
    }

    /// Checks that a per-layer list has one width per position of `positions` (named in the
    /// error); a uniform width fits everything.
    pub fn fit(&self, positions: &[String], what: &str) -> Result<(), String> {
        if self.0.len() == 1 || self.0.len() == positions.len() {
            Ok(())
        } else {
            Err(format!("{} {what} widths given ({self}), but the network needs one or {}: {}", self.0.len(), positions.len(), positions.join(", ")))
        }
    }

    /// In words, for descriptions: `5-bit`, or `8,5,…,8-bit (per layer)`.
    pub fn describe(&self) -> String {
        match self.as_uniform() {
            Some(b) => format!("{b}-bit"),
            None => format!("{self}-bit (per layer)"),
        }
    }
}

impl fmt::Display for Widths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list: Vec<String> = self.0.iter().map(u32::to_string).collect();
        f.write_str(&list.join(","))
    }
}

impl FromStr for Widths {
    type Err = String;

    /// `5`, or a comma-separated list `8,5,5`.
    fn from_str(s: &str) -> Result<Widths, String> {
        let list = s
            .split(',')
            .map(|b| match b.trim().parse::<u32>() {
                Ok(bits) if RANGE.contains(&bits) => Ok(bits),
                _ => Err(format!("'{b}' is not a bit width: give {} to {}, or a comma-separated list of them", RANGE.start(), RANGE.end())),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Widths(list))
    }
}

/// Each layer's name: `conv1`, `relu1`, `pool1`, `linear` (numbered per kind, from 1).
fn layer_names(arch: &Arch) -> Vec<String> {
    let mut counts = [0usize; 4];
    arch.layers
        .iter()
        .map(|l| {
            let (kind, name) = match l {
                Layer::Conv { .. } => (0, "conv"),
                Layer::Relu => (1, "relu"),
                Layer::AvgPool { .. } => (2, "pool"),
                Layer::Linear { .. } => (3, "linear"),
            };
            counts[kind] += 1;
            if kind == 3 {
                name.to_string()
            } else {
                format!("{name}{}", counts[kind])
            }
        })
        .collect()
}

/// The positions of weight widths: each layer with weights (convolutions, the final linear one).
pub fn weight_positions(arch: &Arch) -> Vec<String> {
    let names = layer_names(arch);
    arch.layers.iter().zip(names).filter(|(l, _)| matches!(l, Layer::Conv { .. } | Layer::Linear { .. })).map(|(_, n)| n).collect()
}

/// The positions of activation widths: the input, then each lookup site in circuit order.
pub fn act_positions(arch: &Arch) -> Vec<String> {
    let names = layer_names(arch);
    std::iter::once("input".to_string()).chain(sites(arch).iter().map(|s| names[s.layer].clone())).collect()
}

/// Checks both families of widths against `arch`.
pub fn fit(arch: &Arch, weights: &Widths, acts: &Widths) -> Result<(), String> {
    weights.fit(&weight_positions(arch), "weight")?;
    let positions = act_positions(arch);
    acts.fit(&positions, "activation")?;
    for (i, site) in sites(arch).iter().enumerate() {
        let bits = acts.at(i + 1);
        if act_codes(bits, site.nonneg).1 > i8::MAX as i32 {
            return Err(format!(
                "{}'s codes are unsigned (never negative) and the circuit stores codes as i8: give it at most 7 bits, not {bits}",
                positions[i + 1]
            ));
        }
    }
    Ok(())
}

/// The smallest and largest `bits`-bit activation code: unsigned `0..2^bits − 1` where values
/// are never negative (after a ReLU), signed `−2^(bits−1)..2^(bits−1) − 1` elsewhere (the input).
/// The reference quantizes every activation with a signed quantizer, so after a ReLU its 5-bit
/// codes use only 0..15; ours use 0..31 for the same bits — and the same bootstraps in TFHE, whose
/// cost follows the rounded accumulators, not the codes (BENCHMARKS.md, "The VGG11 run").
pub fn act_codes(bits: u32, nonneg: bool) -> (i32, i32) {
    if nonneg {
        (0, (1 << bits) - 1)
    } else {
        (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    }
}

/// The largest `bits`-bit weight code: weights are signed, symmetric and narrow-range, `±qmax`.
pub fn weight_qmax(bits: u32) -> i32 {
    (1 << (bits - 1)) - 1
}

/// The activation widths that reproduce what checkpoints written before unsigned codes meant by
/// `bits`: every code then spent a sign bit, so a never-negative site had one bit less.
pub fn signed_era_acts(arch: &Arch, bits: u32) -> Widths {
    Widths(std::iter::once(bits).chain(sites(arch).iter().map(|s| if s.nonneg { bits - 1 } else { bits })).collect())
}

/// Serde for a [`Widths`] field stored as one `u32`, as checkpoints written before per-layer
/// widths hold it: the first width is written there, and the full list after the checkpoint
/// (see `train::LaterSettings`).
pub mod as_first {
    use super::Widths;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the first width.
    pub fn serialize<S: Serializer>(w: &Widths, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(w.0[0])
    }

    /// Reads one width, uniform until the full list (if any) replaces it.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Widths, D::Error> {
        u32::deserialize(d).map(Widths::uniform)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_parse_check_and_name_the_positions_they_miss() {
        let vgg = Arch::by_name("vgg11", 10, 1.0).unwrap();
        assert_eq!(weight_positions(&vgg).join(","), "conv1,conv2,conv3,conv4,conv5,conv6,conv7,conv8,linear");
        // The identity pool (k = 1) is no lookup site.
        assert_eq!(act_positions(&vgg).join(","), "input,conv1,pool1,conv2,pool2,conv3,conv4,pool3,conv5,conv6,conv7,conv8,pool5");
        let w: Widths = "8,5,5,5,5,5,5,5,8".parse().unwrap();
        assert_eq!((w.at(0), w.at(4), w.at(8), w.as_uniform()), (8, 5, 8, None));
        assert_eq!("6".parse::<Widths>().unwrap().at(12), 6);
        assert!(fit(&vgg, &w, &Widths::uniform(6)).is_ok());
        let err = fit(&vgg, &Widths::uniform(5), &"8,6".parse().unwrap()).unwrap_err();
        assert!(err.contains("2 activation widths") && err.contains("input, conv1, pool1"), "{err}");
        assert!("9".parse::<Widths>().is_err() && "5,x".parse::<Widths>().is_err() && "".parse::<Widths>().is_err());
        // After a ReLU codes are unsigned: 8 bits would not fit the circuit's i8 codes.
        assert_eq!((act_codes(5, true), act_codes(5, false)), ((0, 31), (-16, 15)));
        let err = fit(&vgg, &w, &Widths::uniform(8)).unwrap_err();
        assert!(err.contains("conv1's codes are unsigned"), "{err}");
        assert!(fit(&vgg, &w, &"8,7,7,7,7,7,7,7,7,7,7,7,7".parse().unwrap()).is_ok());
        assert_eq!(signed_era_acts(&vgg, 5).to_string(), "5,4,4,4,4,4,4,4,4,4,4,4,4");
    }
}
