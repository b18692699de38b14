//! Random small models for the tests: every stage kind, signed and unsigned codes, odd shapes,
//! lookups declared about zero and about a centre.
use cifhe_core::analysis::signed_bits;
use cifhe_core::builder::ModelBuilder;
use cifhe_core::model::Shape;
use cifhe_core::rng::Rng;

pub fn uniform(rng: &mut Rng, lo: i32, hi: i32) -> i32 {
    lo + (rng.next_u64() % (hi - lo + 1) as u64) as i32
}

fn thresholds(rng: &mut Rng, channels: usize, levels: usize, spread: i32) -> Vec<Vec<i32>> {
    (0..channels)
        .map(|_| {
            let mut t: Vec<i32> = (0..levels).map(|_| uniform(rng, -spread, spread)).collect();
            t.sort();
            t
        })
        .collect()
}

/// A random model on `c × h × w` images with `classes` outputs; `seed` picks everything.
pub fn random_model(seed: u64, input: Shape, classes: usize) -> Vec<u8> {
    let mut rng = Rng::new(seed, 99);
    let table: Vec<[i8; 256]> = (0..input.c).map(|c| core::array::from_fn(|p| (((p as i32 - 128 + c as i32 * 7) / 8).clamp(-16, 15)) as i8)).collect();
    let mut b = ModelBuilder::new("random-test", input, &table);
    let c1 = uniform(&mut rng, 1, 20) as usize;
    let k = uniform(&mut rng, 1, 3) as usize;
    let w: Vec<i8> = (0..c1 * input.c * k * k).map(|_| uniform(&mut rng, -15, 15) as i8).collect();
    b.conv(&w, c1, input.c, k, k, 1, k / 2);
    let bound = 31 * 15 * (input.c * k * k) as i32;
    b.lookup(signed_bits(-bound as i64, bound as i64) as u8, 0, 15, &thresholds(&mut rng, c1, 15, bound / 3), (-bound, bound));
    b.sum_pool(2, 1);
    b.lookup(8, -8, 7, &thresholds(&mut rng, c1, 15, 60), (0, 60));
    if seed % 2 == 1 {
        // The pool's sums, [0, 60], declared 6 bits wide about their centre.
        b.centre(b.len() - 1, 32, 6);
    }
    let c2 = uniform(&mut rng, 1, 40) as usize;
    let w: Vec<i8> = (0..c2 * c1 * 9).map(|_| uniform(&mut rng, -15, 15) as i8).collect();
    b.conv(&w, c2, c1, 3, 3, 2, 1);
    let bound = 8 * 15 * (c1 * 9) as i32;
    b.lookup(signed_bits(-bound as i64, bound as i64) as u8, 0, 15, &thresholds(&mut rng, c2, 15, bound / 4), (-bound, bound));
    // conv k (pad k/2, stride 1), sum-pool 2/1, conv 3 (pad 1, stride 2)
    let side = |n: usize| ((n + 2 * (k / 2) - k + 1) - 1 + 2 - 3) / 2 + 1;
    let (h, wd) = (side(input.h), side(input.w));
    let flat = Shape { h, w: wd, c: c2 };
    let w: Vec<i8> = (0..classes * flat.len()).map(|_| uniform(&mut rng, -15, 15) as i8).collect();
    b.linear(&w, classes, flat);
    let scale: Vec<f32> = (0..classes).map(|k| 0.01 + 0.001 * k as f32).collect();
    let offset: Vec<f32> = (0..classes).map(|k| k as f32 * 0.1).collect();
    b.output(&scale, &offset).rounding_bits(Some(6));
    b.to_bytes()
}

#[allow(dead_code)] // not every test file uses it
pub fn random_image(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.next_u64() as u8).collect()
}
