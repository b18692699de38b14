//! Building model files in memory from plain tensors (`std`): the trainer's compiler and the tests
//! describe a circuit stage by stage and get the encoded bytes, which [`crate::Model::from_bytes`]
//! then validates like any file.
use crate::model::{weight_index, weight_len, Conv, Dequant, InputQuant, Linear, Lookup, ModelFile, Shape, Stage, SumPool};

#[derive(Debug, Clone)]
enum OwnedStage {
    Conv { out_c: u16, kh: u8, kw: u8, stride: u8, pad: u8, weights: Vec<u8> },
    SumPool(SumPool),
    Linear { out_f: u16, weights: Vec<u8> },
    Lookup { acc_bits: u8, centre: i32, lo: i8, hi: i8, thresholds: Vec<u8>, calibrated: (i32, i32) },
}

/// A model under construction. Tensors are given in the usual (unblocked) orders.
#[derive(Debug, Clone)]
pub struct ModelBuilder {
    name: String,
    description: String,
    labels: String,
    input: Shape,
    input_table: Vec<u8>,
    stages: Vec<OwnedStage>,
    rounding_bits: Option<u8>,
    scale: Vec<u8>,
    offset: Vec<u8>,
}

fn pack(w: &[i8], out_c: usize, in_c: usize, kh: usize, kw: usize, at: impl Fn(usize, usize, usize, usize) -> usize) -> Vec<u8> {
    let mut packed = vec![0u8; weight_len(out_c, in_c, kh, kw)];
    for o in 0..out_c {
        for c in 0..in_c {
            for ky in 0..kh {
                for kx in 0..kw {
                    packed[weight_index(o, c, ky, kx, in_c, kh, kw)] = w[at(o, c, ky, kx)] as u8;
                }
            }
        }
    }
    packed
}

impl ModelBuilder {
    /// A model reading `channels × height × width` images; `table[c][pixel]` is the input code.
    pub fn new(name: &str, input: Shape, table: &[[i8; 256]]) -> Self {
        assert_eq!(table.len(), input.c, "one input table per channel");
        ModelBuilder {
            name: name.into(),
            description: String::new(),
            labels: String::new(),
            input,
            input_table: table.iter().flatten().map(|&v| v as u8).collect(),
            stages: Vec::new(),
            rounding_bits: None,
            scale: Vec::new(),
            offset: Vec::new(),
        }
    }

    /// Sets the provenance text.
    pub fn description(&mut self, d: &str) -> &mut Self {
        self.description = d.into();
        self
    }

    /// Sets the class names.
    pub fn labels<S: AsRef<str>>(&mut self, names: &[S]) -> &mut Self {
        self.labels = names.iter().map(|s| s.as_ref()).collect::<Vec<_>>().join("\n");
        self
    }

    /// Sets the default rounding.
    pub fn rounding_bits(&mut self, bits: Option<u8>) -> &mut Self {
        self.rounding_bits = bits;
        self
    }

    /// A convolution with weights `w[o][c][ky][kx]` (PyTorch's order).
    #[allow(clippy::too_many_arguments)]
    pub fn conv(&mut self, w: &[i8], out_c: usize, in_c: usize, kh: usize, kw: usize, stride: usize, pad: usize) -> &mut Self {
        assert_eq!(w.len(), out_c * in_c * kh * kw, "conv weight count");
        let weights = pack(w, out_c, in_c, kh, kw, |o, c, y, x| ((o * in_c + c) * kh + y) * kw + x);
        self.stages.push(OwnedStage::Conv { out_c: out_c as u16, kh: kh as u8, kw: kw as u8, stride: stride as u8, pad: pad as u8, weights });
        self
    }

    /// A linear stage over an input of shape `inp`, weights `w[o][c][y][x]` (PyTorch's flatten order).
    pub fn linear(&mut self, w: &[i8], out_f: usize, inp: Shape) -> &mut Self {
        assert_eq!(w.len(), out_f * inp.len(), "linear weight count");
        let weights = pack(w, out_f, inp.c, inp.h, inp.w, |o, c, y, x| ((o * inp.c + c) * inp.h + y) * inp.w + x);
        self.stages.push(OwnedStage::Linear { out_f: out_f as u16, weights });
        self
    }

    /// A sum-pool.
    pub fn sum_pool(&mut self, kernel: usize, stride: usize) -> &mut Self {
        self.stages.push(OwnedStage::SumPool(SumPool { kernel: kernel as u8, stride: stride as u8 }));
        self
    }

    /// A lookup with `thresholds[ch][level]` (`hi − lo` per channel), its accumulator `acc_bits`
    /// wide about zero (see [`Self::centre`]).
    pub fn lookup(&mut self, acc_bits: u8, lo: i8, hi: i8, thresholds: &[Vec<i32>], calibrated: (i32, i32)) -> &mut Self {
        let levels = (hi as i32 - lo as i32) as usize;
        let ch = thresholds.len();
        let mut t = Vec::with_capacity(4 * levels * ch);
        for lv in 0..levels {
            for row in thresholds {
                assert_eq!(row.len(), levels, "thresholds per channel");
                t.extend_from_slice(&row[lv].to_le_bytes());
            }
        }
        self.stages.push(OwnedStage::Lookup { acc_bits, centre: 0, lo, hi, thresholds: t, calibrated });
        self
    }

    /// Replaces lookup number `stage` (an index into the stages) — used by calibration.
    pub fn set_lookup(&mut self, stage: usize, acc_bits: u8, lo: i8, hi: i8, thresholds: &[Vec<i32>], calibrated: (i32, i32)) {
        let mut tmp = self.clone();
        tmp.stages.clear();
        tmp.lookup(acc_bits, lo, hi, thresholds, calibrated);
        self.stages[stage] = tmp.stages.pop().expect("just pushed");
    }

    /// Declares the accumulator of lookup number `stage` `acc_bits` wide about `centre`.
    pub fn centre(&mut self, stage: usize, centre: i32, acc_bits: u8) -> &mut Self {
        match &mut self.stages[stage] {
            OwnedStage::Lookup { acc_bits: b, centre: c, .. } => (*b, *c) = (acc_bits, centre),
            other => panic!("stage {stage} is not a lookup: {other:?}"),
        }
        self
    }

    /// Number of stages so far.
    pub fn len(&self) -> usize {
        self.stages.len()
    }

    /// Whether no stage was added yet.
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// Dequantization of the final accumulators.
    pub fn output(&mut self, scale: &[f32], offset: &[f32]) -> &mut Self {
        self.scale = scale.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.offset = offset.iter().flat_map(|v| v.to_le_bytes()).collect();
        self
    }

    /// The encoded model file (not yet validated: pass it to [`crate::Model::from_bytes`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let stages = self
            .stages
            .iter()
            .map(|s| match s {
                OwnedStage::Conv { out_c, kh, kw, stride, pad, weights } => {
                    Stage::Conv(Conv { out_channels: *out_c, kernel_h: *kh, kernel_w: *kw, stride: *stride, padding: *pad, weights })
                }
                OwnedStage::SumPool(p) => Stage::SumPool(*p),
                OwnedStage::Linear { out_f, weights } => Stage::Linear(Linear { out_features: *out_f, weights }),
                OwnedStage::Lookup { acc_bits, centre, lo, hi, thresholds, calibrated } => {
                    Stage::Lookup(Lookup { acc_bits: *acc_bits, centre: *centre, out_lo: *lo, out_hi: *hi, thresholds, calibrated: *calibrated })
                }
            })
            .collect::<heapless::Vec<_, { crate::model::MAX_STAGES }>>();
        let file = ModelFile {
            name: &self.name,
            description: &self.description,
            labels: &self.labels,
            input: InputQuant { channels: self.input.c as u16, height: self.input.h as u16, width: self.input.w as u16, table: &self.input_table },
            stages,
            rounding_bits: self.rounding_bits,
            output: Dequant { scale: &self.scale, offset: &self.offset },
        };
        file.to_bytes()
    }
}
