//! Training-time augmentation of CIFAR images, applied while normalising: random crop with
//! 4-pixel padding, horizontal flip, and optionally a small random rotation.
//!
//! Pixels from outside the image are the mean pixel (zero after normalisation), as the padding
//! of a random crop is.
use crate::cifar::IMAGE_LEN;
use cifhe_core::rng::Rng;

/// Side of a CIFAR image.
const SIDE: usize = 32;

/// One image's random transform: output pixel `(y, x)` reads the source at the point rotated by
/// the angle about the centre, shifted by `(dy, dx)`, then mirrored if `flip`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transform {
    dy: f32,
    dx: f32,
    flip: bool,
    cos: f32,
    sin: f32,
}

impl Transform {
    /// No change: what evaluation uses.
    pub const IDENTITY: Transform = Transform { dy: 0.0, dx: 0.0, flip: false, cos: 1.0, sin: 0.0 };

    /// Draws a transform: shifts in −4..=4 pixels and a coin for the flip from one random number,
    /// and with `max_degrees > 0` an angle uniform in ±`max_degrees` from a second one (so runs
    /// without rotation keep the random stream they always had).
    pub fn draw(rng: &mut Rng, max_degrees: f32) -> Transform {
        let v = rng.next_u64();
        let angle = if max_degrees > 0.0 { (2.0 * rng.open01() as f32 - 1.0) * max_degrees.to_radians() } else { 0.0 };
        Transform { dy: ((v % 9) as i32 - 4) as f32, dx: (((v >> 8) % 9) as i32 - 4) as f32, flip: (v >> 16) & 1 == 1, cos: angle.cos(), sin: angle.sin() }
    }

    /// Writes the transformed image `img` (channel planes, bytes) into `out`, normalised by
    /// `mean` and `std`. Rotated points are interpolated bilinearly; with no rotation every
    /// point is a whole pixel and reads it exactly.
    pub fn apply(&self, img: &[u8], mean: [f32; 3], std: [f32; 3], out: &mut [f32]) {
        assert!(img.len() == IMAGE_LEN && out.len() == IMAGE_LEN, "CIFAR images are 3 × 32 × 32");
        let centre = (SIDE as f32 - 1.0) / 2.0;
        for c in 0..3 {
            let plane = &img[c * SIDE * SIDE..][..SIDE * SIDE];
            let pixel = |y: isize, x: isize| -> f32 {
                if (0..SIDE as isize).contains(&y) && (0..SIDE as isize).contains(&x) {
                    (plane[y as usize * SIDE + x as usize] as f32 / 255.0 - mean[c]) / std[c]
                } else {
                    0.0
                }
            };
            for y in 0..SIDE {
                for x in 0..SIDE {
                    let (u, v) = (y as f32 - centre, x as f32 - centre);
                    let sy = self.cos * u - self.sin * v + centre + self.dy;
                    let mut sx = self.sin * u + self.cos * v + centre + self.dx;
                    if self.flip {
                        sx = (SIDE - 1) as f32 - sx;
                    }
                    let (y0, x0) = (sy.floor(), sx.floor());
                    let (fy, fx) = (sy - y0, sx - x0);
                    let (y0, x0) = (y0 as isize, x0 as isize);
                    let top = pixel(y0, x0) * (1.0 - fx) + if fx > 0.0 { pixel(y0, x0 + 1) * fx } else { 0.0 };
                    let bottom = if fy > 0.0 { pixel(y0 + 1, x0) * (1.0 - fx) + pixel(y0 + 1, x0 + 1) * fx } else { 0.0 };
                    out[c * SIDE * SIDE + y * SIDE + x] = top * (1.0 - fy) + bottom * fy;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> Vec<u8> {
        (0..IMAGE_LEN).map(|i| (i * 7 % 251) as u8).collect()
    }

    fn apply(t: &Transform, img: &[u8]) -> Vec<f32> {
        let mut out = vec![0.0; IMAGE_LEN];
        t.apply(img, [0.0; 3], [1.0; 3], &mut out);
        out.iter().map(|v| v * 255.0).collect()
    }

    #[test]
    fn shifts_and_flips_read_whole_pixels_and_pad_with_the_mean() {
        let img = image();
        let exact: Vec<f32> = img.iter().map(|&p| (p as f32 / 255.0) * 255.0).collect();
        assert_eq!(apply(&Transform::IDENTITY, &img), exact);
        let t = Transform { dy: 2.0, dx: -3.0, flip: true, ..Transform::IDENTITY };
        let out = apply(&t, &img);
        // Output (5, 10) reads row 7, column 31 − (10 − 3) = 24; rows past the bottom are padding.
        assert_eq!(out[5 * 32 + 10], exact[7 * 32 + 24]);
        assert_eq!(out[1024 + 31 * 32], 0.0);
    }

    #[test]
    fn rotations_turn_about_the_centre_and_interpolate() {
        let img = image();
        let quarter = Transform { cos: 0.0, sin: 1.0, ..Transform::IDENTITY };
        let out = apply(&quarter, &img);
        // A quarter turn maps whole pixels to whole pixels: output (y, x) reads (31 − x, y).
        let (y, x) = (3, 20);
        assert!((out[y * 32 + x] - img[(31 - x) * 32 + y] as f32).abs() < 1e-3);
        // Draws without rotation keep the stream; with it, angles stay within the bound.
        let (mut a, mut b) = (Rng::new(1, 0), Rng::new(1, 0));
        assert_eq!(Transform::draw(&mut a, 0.0).cos, 1.0);
        for _ in 0..100 {
            let t = Transform::draw(&mut b, 10.0);
            assert!(t.cos >= 10f32.to_radians().cos() - 1e-6);
        }
        // A small rotation moves values only by interpolation: every output lies within the
        // range of the image and the padding.
        let small = Transform::draw(&mut Rng::new(5, 0), 8.0);
        let max = *img.iter().max().unwrap() as f32;
        assert!(apply(&small, &img).iter().all(|&v| (0.0..=max + 1e-3).contains(&v)));
    }
}
