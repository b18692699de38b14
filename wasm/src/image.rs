//! Canvas pixels to model input: RGBA of any size, area-averaged to the model's size, as channel planes.

/// Resamples `rgba` (`w × h`, 4 bytes a pixel, alpha ignored) to `out_w × out_h` by averaging the
/// source area under each output pixel, and returns R, G and B planes.
pub fn rgba_to_planes(rgba: &[u8], w: usize, h: usize, out_w: usize, out_h: usize) -> Result<Vec<u8>, String> {
    if w == 0 || h == 0 {
        return Err("image has no pixels".into());
    }
    if rgba.len() != w * h * 4 {
        return Err(format!("RGBA buffer has {} bytes, a {w}×{h} image needs {}", rgba.len(), w * h * 4));
    }
    let mut planes = vec![0u8; 3 * out_w * out_h];
    for oy in 0..out_h {
        // Source rows [y0, y1) and columns [x0, x1) covered by this output pixel (at least one).
        let (y0, y1) = (oy * h / out_h, ((oy + 1) * h).div_ceil(out_h).max(oy * h / out_h + 1));
        for ox in 0..out_w {
            let (x0, x1) = (ox * w / out_w, ((ox + 1) * w).div_ceil(out_w).max(ox * w / out_w + 1));
            let mut sum = [0u64; 3];
            for y in y0..y1.min(h) {
                for x in x0..x1.min(w) {
                    let p = &rgba[(y * w + x) * 4..][..3];
                    for c in 0..3 {
                        sum[c] += p[c] as u64;
                    }
                }
            }
            let n = ((y1.min(h) - y0) * (x1.min(w) - x0)) as u64;
            for c in 0..3 {
                planes[c * out_w * out_h + oy * out_w + ox] = ((sum[c] + n / 2) / n) as u8;
            }
        }
    }
    Ok(planes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_is_a_relayout_and_downscale_averages() {
        let rgba: Vec<u8> = (0..4 * 4 * 4).map(|i| i as u8).collect();
        let planes = rgba_to_planes(&rgba, 4, 4, 4, 4).unwrap();
        assert_eq!(planes[0], 0);
        assert_eq!(planes[16], 1);
        assert_eq!(planes[32 + 5], rgba[5 * 4 + 2]);
        let half = rgba_to_planes(&rgba, 4, 4, 2, 2).unwrap();
        // Red of the top-left 2×2 block: pixels 0, 1, 4, 5 → bytes 0, 4, 16, 20.
        assert_eq!(half[0], ([0u32, 4, 16, 20].iter().sum::<u32>() as f32 / 4.0).round() as u8);
        assert!(rgba_to_planes(&rgba[..10], 4, 4, 2, 2).unwrap_err().contains("10 bytes"));
        assert!(rgba_to_planes(&[], 0, 0, 2, 2).is_err());
    }
}
