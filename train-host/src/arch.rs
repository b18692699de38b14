//! Network architectures as data, and float networks (weights) of them.
//!
//! The reference's adapted VGG11 and the small CNN are lists of [`Layer`]s, not code; training,
//! compiling and reporting all walk the same list.
use cifhe_core::rng::Rng;

/// One layer of a float network. Serialized (`{"kind": "conv", "out": …}`) for other frameworks
/// to build the same network (`bench-train --torch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Layer {
    /// 2-D convolution with bias.
    Conv { out: usize, k: usize, stride: usize, pad: usize },
    /// ReLU.
    Relu,
    /// Average pool (no padding).
    AvgPool { k: usize, stride: usize },
    /// Dense layer with bias over the flattened input.
    Linear { out: usize },
}

/// A named architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arch {
    /// Name, e.g. `vgg11`.
    pub name: String,
    /// Layers in order.
    pub layers: Vec<Layer>,
}

/// Architectures known by name.
pub const NAMES: [&str; 4] = ["vgg11", "small", "tiny", "mini"];

impl Arch {
    /// An architecture by name (`vgg11`, `small`, `tiny`), with `width` scaling the channel counts.
    pub fn by_name(name: &str, classes: usize, width: f32) -> Result<Arch, String> {
        let ch = |c: usize| ((c as f32 * width).round() as usize).max(1);
        let conv = |c| Layer::Conv { out: ch(c), k: 3, stride: 1, pad: 1 };
        let pool = |k, stride| Layer::AvgPool { k, stride };
        use Layer::Relu;
        let layers = match name {
            // The reference's VGG11 adapted to 32 × 32: spatial 32, 32, 31, 31, 15, 15, 7, 7, 7, 7, 1.
            "vgg11" => vec![
                conv(64),
                Relu,
                pool(2, 1),
                conv(128),
                Relu,
                pool(2, 2),
                conv(256),
                Relu,
                conv(256),
                Relu,
                pool(2, 2),
                conv(512),
                Relu,
                conv(512),
                Relu,
                pool(1, 1),
                conv(512),
                Relu,
                conv(512),
                Relu,
                pool(7, 1),
                Layer::Linear { out: classes },
            ],
            // A small CNN for tests and the real-FHE demo.
            "small" => vec![conv(16), Relu, pool(2, 2), conv(32), Relu, pool(2, 2), conv(64), Relu, pool(8, 1), Layer::Linear { out: classes }],
            // The real-TFHE demo: few activations, so few bootstraps (8·8·8 + 4·4·16 + 16 = 784 at
            // width 1). The first convolution is a 4 × 4 patch embedding with stride 4.
            "tiny" => vec![
                Layer::Conv { out: ch(8), k: 4, stride: 4, pad: 0 },
                Relu,
                Layer::Conv { out: ch(16), k: 3, stride: 2, pad: 1 },
                Relu,
                pool(4, 1),
                Layer::Linear { out: classes },
            ],
            // The tiny network with a 3 × 3 convolution at 8 × 8 and a pooled one at 4 × 4: more
            // accurate per bootstrap, but its wider convolutions need the fine key behind some
            // lookups (BENCHMARKS.md, "Demo networks").
            "mini" => vec![
                Layer::Conv { out: ch(8), k: 4, stride: 4, pad: 0 },
                Relu,
                conv(16),
                Relu,
                pool(2, 2),
                conv(32),
                Relu,
                pool(4, 1),
                Layer::Linear { out: classes },
            ],
            _ => return Err(format!("unknown architecture '{name}' (known: {})", NAMES.join(", "))),
        };
        Ok(Arch { name: name.into(), layers })
    }
}

/// Parameters of one layer: weights (PyTorch order) and bias.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// `[out][in][kh][kw]` for convolutions, `[out][in·h·w]` (channel-major) for linear layers.
    pub weight: Vec<f32>,
    /// One per output.
    pub bias: Vec<f32>,
}

/// A float network: an architecture, its input shape and its parameters.
#[derive(Debug, Clone)]
pub struct FloatNet {
    /// Architecture.
    pub arch: Arch,
    /// Input channels, height, width.
    pub input: (usize, usize, usize),
    /// Parameters of each layer (`None` for layers without).
    pub params: Vec<Option<Params>>,
}

/// Shape after each layer, starting from `(c, h, w)`.
pub fn shapes(arch: &Arch, input: (usize, usize, usize)) -> Vec<(usize, usize, usize)> {
    let mut s = input;
    arch.layers
        .iter()
        .map(|l| {
            s = match *l {
                Layer::Conv { out, k, stride, pad } => (out, (s.1 + 2 * pad - k) / stride + 1, (s.2 + 2 * pad - k) / stride + 1),
                Layer::Relu => s,
                Layer::AvgPool { k, stride } => (s.0, (s.1 - k) / stride + 1, (s.2 - k) / stride + 1),
                Layer::Linear { out } => (out, 1, 1),
            };
            s
        })
        .collect()
}

impl FloatNet {
    /// He-initialised weights and zero biases, from `seed`: an untrained network.
    pub fn random(arch: Arch, input: (usize, usize, usize), seed: u64) -> FloatNet {
        let mut rng = Rng::new(seed, 0);
        let mut normal = move || {
            // Box–Muller.
            let (u, v) = (rng.open01(), rng.open01());
            ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
        };
        let mut s = input;
        let mut params = Vec::new();
        for (layer, next) in arch.layers.iter().zip(shapes(&arch, input)) {
            let fan_in = match *layer {
                Layer::Conv { k, .. } => s.0 * k * k,
                Layer::Linear { .. } => s.0 * s.1 * s.2,
                _ => 0,
            };
            params.push((fan_in > 0).then(|| {
                let std = (2.0 / fan_in as f32).sqrt();
                Params { weight: (0..next.0 * fan_in).map(|_| normal() * std).collect(), bias: vec![0.0; next.0] }
            }));
            s = next;
        }
        FloatNet { arch, input, params }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_architecture_pools_a_cifar_image_to_one_pixel_before_its_classifier() {
        for name in NAMES {
            let arch = Arch::by_name(name, 100, 1.5).unwrap();
            let s = shapes(&arch, (3, 32, 32));
            assert_eq!((s[s.len() - 2].1, s[s.len() - 2].2), (1, 1), "{name}: {s:?}");
            assert_eq!(s[s.len() - 1], (100, 1, 1), "{name}: {s:?}");
        }
        let err = Arch::by_name("resnet", 10, 1.0).unwrap_err();
        assert!(NAMES.iter().all(|n| err.contains(n)), "{err}");
    }
}
