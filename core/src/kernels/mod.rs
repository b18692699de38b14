//! Exact integer kernels: convolution (and linear, a convolution over the whole input) and sum-pool.
//!
//! Operands: activations are `u8` (a code plus its stage's zero point) stored channels-last with
//! the consumer's zero padding already in place; weights are `i8` codes in the blocked layout of
//! [`crate::model::weight_index`]; accumulators are exact `i32`. Every implementation computes the
//! same sums bit for bit; [`reference`](mod@reference) is the naive definition the others are tested against.
//!
//! Which implementation runs is an [`Isa`]: AVX-512 VNNI or AVX2 where the CPU has them (detected
//! at run time in `std` builds, from the compile-time target features otherwise), WebAssembly SIMD
//! in wasm builds with `simd128` (the workspace's `.cargo/config.toml` enables it), else portable.
pub mod portable;
pub mod reference;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm;
#[cfg(target_arch = "x86_64")]
mod x86;

/// Instruction set used by the convolution kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Plain Rust, any target.
    Portable,
    /// x86-64 AVX2 (`vpmaddubsw` + `vpmaddwd`): exact while `2 · max u8 · max |w| ≤ 32767`.
    Avx2,
    /// x86-64 AVX-512 VNNI (`vpdpbusd`): exact for all u8 × i8 operands.
    Avx512Vnni,
    /// WebAssembly SIMD (`i32x4.dot_i16x8_s` on widened operands): exact for all u8 × i8 operands.
    Simd128,
}

impl Isa {
    /// The fastest instruction set this CPU offers.
    pub fn detect() -> Isa {
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        {
            if std::is_x86_feature_detected!("avx512vnni") && std::is_x86_feature_detected!("avx512bw") {
                return Isa::Avx512Vnni;
            }
            if std::is_x86_feature_detected!("avx2") {
                return Isa::Avx2;
            }
        }
        #[cfg(all(not(feature = "std"), target_arch = "x86_64", target_feature = "avx512vnni", target_feature = "avx512bw"))]
        return Isa::Avx512Vnni;
        #[cfg(all(not(feature = "std"), target_arch = "x86_64", target_feature = "avx2"))]
        return Isa::Avx2;
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        return Isa::Simd128;
        #[allow(unreachable_code)]
        Isa::Portable
    }

    /// Every instruction set this CPU can run (for tests and benchmarks that compare them).
    pub fn available() -> heapless::Vec<Isa, 3> {
        let mut v = heapless::Vec::new();
        let best = Isa::detect();
        let _ = v.push(Isa::Portable);
        if matches!(best, Isa::Avx2 | Isa::Avx512Vnni) {
            let _ = v.push(Isa::Avx2);
        }
        if matches!(best, Isa::Avx512Vnni | Isa::Simd128) {
            let _ = v.push(best);
        }
        v
    }

    /// Whether this instruction set computes exact sums for operands up to these magnitudes.
    pub fn exact_for(self, max_u8: i32, max_abs_w: i32) -> bool {
        match self {
            Isa::Avx2 => 2 * max_u8 * max_abs_w <= i16::MAX as i32,
            Isa::Portable | Isa::Avx512Vnni | Isa::Simd128 => true,
        }
    }
}

/// Geometry of one convolution over a padded channels-last `u8` buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeom {
    /// Rows of the (already padded) input buffer.
    pub in_h: usize,
    /// Columns of the (already padded) input buffer.
    pub in_w: usize,
    /// Channel stride of the input, a multiple of 4.
    pub c4: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Stride.
    pub stride: usize,
    /// Output rows.
    pub out_h: usize,
    /// Output columns.
    pub out_w: usize,
    /// Output channel stride, a multiple of 16 (the weight blocks).
    pub o16: usize,
}

impl ConvGeom {
    /// Input bytes read.
    pub fn input_len(&self) -> usize {
        self.in_h * self.in_w * self.c4
    }
    /// Accumulators written.
    pub fn output_len(&self) -> usize {
        self.out_h * self.out_w * self.o16
    }
    /// Weight bytes read.
    pub fn weight_len(&self) -> usize {
        self.o16 * self.kh * self.kw * self.c4
    }
    /// Byte offset, in the input, of the window of output position `p` (raster order).
    #[inline(always)]
    pub fn window(&self, p: usize) -> usize {
        let (oy, ox) = (p / self.out_w, p % self.out_w);
        (oy * self.stride * self.in_w + ox * self.stride) * self.c4
    }
    /// Byte offset of kernel tap `t` (raster order over the kernel) from a window's origin.
    #[inline(always)]
    pub fn tap(&self, t: usize) -> usize {
        ((t / self.kw) * self.in_w + t % self.kw) * self.c4
    }

    /// What output position `p`'s 16-channel block `b` sums, tap by tap: the tap's `c4` input
    /// bytes and its `c4 · 16` weight bytes, groups of 4 input channels by 64 weights (16 output
    /// channels × those 4) in the blocked layout.
    #[inline(always)]
    pub fn taps<'a>(&self, input: &'a [u8], w: &'a [i8], p: usize, b: usize) -> impl Iterator<Item = (&'a [u8], &'a [i8])> + 'a {
        let (g, win, tap_len) = (*self, self.window(p), self.c4 * 16);
        let block = &w[b * g.kh * g.kw * tap_len..][..g.kh * g.kw * tap_len];
        (0..g.kh * g.kw).zip(block.chunks_exact(tap_len)).map(move |(t, wt)| (&input[win + g.tap(t)..][..g.c4], wt))
    }
}

/// `out[p · o16 + o] = Σ_{tap, c} input[window(p) + tap + c] · w[o, tap, c]` for every output position
/// `p` and channel `o < o16`.
///
/// # Panics
/// If a buffer is shorter than the geometry needs, or if `isa` is not supported by this CPU.
pub fn conv(isa: Isa, g: &ConvGeom, input: &[u8], w: &[i8], out: &mut [i32]) {
    assert!(input.len() >= g.input_len() && w.len() >= g.weight_len() && out.len() >= g.output_len());
    assert!(g.c4.is_multiple_of(4) && g.o16.is_multiple_of(16));
    assert!(g.out_h == 0 || (g.out_h - 1) * g.stride + g.kh <= g.in_h);
    assert!(g.out_w == 0 || (g.out_w - 1) * g.stride + g.kw <= g.in_w);
    match isa {
        Isa::Portable => portable::conv(g, input, w, out),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 | Isa::Avx512Vnni if Isa::available().contains(&isa) => {
            // SAFETY: bounds asserted above; the CPU supports `isa` (checked just now).
            unsafe { x86::conv(isa, g, input, w, out) }
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        Isa::Simd128 => wasm::conv(g, input, w, out),
        _ => panic!("{isa:?} is not supported by this CPU"),
    }
}

/// Window sums of a channels-last `u8` buffer (`in_h × in_w × c4`), `k × k` windows, stride `s`:
/// `out[p · o16 + c] = Σ_window input[…]` for `c < c4`.
#[allow(clippy::too_many_arguments)]
pub fn sum_pool(input: &[u8], in_w: usize, c4: usize, k: usize, s: usize, out_h: usize, out_w: usize, out: &mut [i32], o16: usize) {
    let ch = c4.min(o16);
    for oy in 0..out_h {
        for ox in 0..out_w {
            let acc = &mut out[(oy * out_w + ox) * o16..][..o16];
            acc.fill(0);
            for ky in 0..k {
                for kx in 0..k {
                    let row = &input[((oy * s + ky) * in_w + ox * s + kx) * c4..][..ch];
                    for (a, &x) in acc.iter_mut().zip(row) {
                        *a += x as i32;
                    }
                }
            }
        }
    }
}
