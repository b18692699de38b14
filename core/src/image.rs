//! Any picture to a model's input image: RGBA pixels of any size, area-averaged to the model's
//! size, as R, G and B planes (the layout of CIFAR's files and of [`crate::Simulator::run`]'s
//! input). The browser client and the command line prepare a user's picture with this one
//! function, so both feed the circuit the same bytes; it needs no allocator.
use core::fmt;

/// Why a picture could not be prepared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageError {
    /// The picture has no pixels (a zero width or height).
    Empty,
    /// The RGBA buffer does not hold `width × height` pixels.
    Length {
        /// Bytes given.
        got: usize,
        /// Bytes of a `width × height` RGBA picture.
        need: usize,
    },
    /// The output buffer does not hold three planes of the output size.
    Output {
        /// Bytes given.
        got: usize,
        /// Bytes of three `out_w × out_h` planes.
        need: usize,
    },
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageError::Empty => write!(f, "the image has no pixels"),
            ImageError::Length { got, need } => write!(f, "the RGBA buffer has {got} bytes where the image's size needs {need}"),
            ImageError::Output { got, need } => write!(f, "the output buffer has {got} bytes where three planes need {need}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ImageError {}

/// Resamples `rgba` (`w × h`, 4 bytes a pixel, alpha ignored) to `out_w × out_h` by averaging the
/// source area under each output pixel (rounded to nearest), into R, G and B planes in `planes`
/// (`3 · out_w · out_h` bytes). A picture of the output size is only re-laid out; one enlarged
/// k times by repeating pixels comes back exactly.
pub fn rgba_to_planes(rgba: &[u8], w: usize, h: usize, out_w: usize, out_h: usize, planes: &mut [u8]) -> Result<(), ImageError> {
    if w == 0 || h == 0 {
        return Err(ImageError::Empty);
    }
    if rgba.len() != w * h * 4 {
        return Err(ImageError::Length { got: rgba.len(), need: w * h * 4 });
    }
    if planes.len() != 3 * out_w * out_h {
        return Err(ImageError::Output { got: planes.len(), need: 3 * out_w * out_h });
    }
    // Source rows (columns) [lo, hi) under output row (column) `o` of `n`: at least one.
    let span = |o: usize, src: usize, n: usize| {
        let lo = o * src / n;
        (lo, ((o + 1) * src).div_ceil(n).max(lo + 1).min(src))
    };
    for oy in 0..out_h {
        let (y0, y1) = span(oy, h, out_h);
        for ox in 0..out_w {
            let (x0, x1) = span(ox, w, out_w);
            let mut sum = [0u64; 3];
            for y in y0..y1 {
                for p in rgba[(y * w + x0) * 4..(y * w + x1) * 4].chunks_exact(4) {
                    for c in 0..3 {
                        sum[c] += p[c] as u64;
                    }
                }
            }
            let n = ((y1 - y0) * (x1 - x0)) as u64;
            for c in 0..3 {
                planes[c * out_w * out_h + oy * out_w + ox] = ((sum[c] + n / 2) / n) as u8;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_is_a_relayout_and_downscale_averages() {
        let rgba: [u8; 64] = core::array::from_fn(|i| i as u8);
        let mut planes = [0u8; 48];
        rgba_to_planes(&rgba, 4, 4, 4, 4, &mut planes).unwrap();
        assert_eq!((planes[0], planes[16], planes[32 + 5]), (0, 1, rgba[5 * 4 + 2]));
        let mut half = [0u8; 12];
        rgba_to_planes(&rgba, 4, 4, 2, 2, &mut half).unwrap();
        // Red of the top-left 2×2 block: pixels 0, 1, 4, 5 → bytes 0, 4, 16, 20 (mean 10).
        assert_eq!(half[0], 10);
        assert_eq!(rgba_to_planes(&rgba[..10], 4, 4, 2, 2, &mut half), Err(ImageError::Length { got: 10, need: 64 }));
        assert_eq!(rgba_to_planes(&[], 0, 0, 2, 2, &mut half), Err(ImageError::Empty));
        assert_eq!(rgba_to_planes(&rgba, 4, 4, 2, 2, &mut planes), Err(ImageError::Output { got: 48, need: 12 }));
    }

    #[test]
    fn an_image_enlarged_by_repeating_pixels_comes_back_exactly_and_odd_sizes_cover_every_pixel() {
        // A 3×2 image enlarged 3 times (9×6), then brought back to 3×2.
        let small: [[u8; 4]; 6] = core::array::from_fn(|i| [i as u8 * 40, 255 - i as u8 * 30, i as u8 * 7 + 1, 0]);
        let mut big = [0u8; 9 * 6 * 4];
        for y in 0..6 {
            for x in 0..9 {
                big[(y * 9 + x) * 4..][..4].copy_from_slice(&small[(y / 3) * 3 + x / 3]);
            }
        }
        let (mut back, mut direct) = ([0u8; 18], [0u8; 18]);
        rgba_to_planes(&big, 9, 6, 3, 2, &mut back).unwrap();
        rgba_to_planes(small.as_flattened(), 3, 2, 3, 2, &mut direct).unwrap();
        assert_eq!(back, direct);
        // Enlarging (2×1 → 5×3): every output pixel reads at least one source pixel.
        let mut up = [0u8; 45];
        rgba_to_planes(&[10, 20, 30, 0, 50, 60, 70, 0], 2, 1, 5, 3, &mut up).unwrap();
        assert!(up[..15].iter().all(|&r| r == 10 || r == 30 || r == 50), "{up:?}");
    }
}
