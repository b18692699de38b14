//! The browser crate in a real browser (`wasm-pack test --headless --chrome`): model loading,
//! image preparation, simulation and the TFHE client, with their errors.
#![cfg(target_arch = "wasm32")]
use cifhe_wasm::{Classifier, FheClient};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const MODEL: &[u8] = include_bytes!("../../models/tiny-w2.5-cifar10.cifhe");

fn classifier() -> Classifier {
    Classifier::new(MODEL.to_vec()).unwrap()
}

fn gradient_image(c: &Classifier) -> Vec<u8> {
    let rgba: Vec<u8> = (0..64 * 48 * 4).map(|i| (i * 7 % 251) as u8).collect();
    c.prepare_rgba(&rgba, 64, 48).unwrap()
}

/// The browser's SIMD kernel gives the portable kernel's accumulators, bit for bit, through every
/// stage of two trained models (strided and padded convolutions, 3 to 512 channels).
#[wasm_bindgen_test]
fn simd_convolutions_equal_the_portable_ones() {
    use cifhe_core::kernels::Isa;
    use cifhe_core::{Model, RunConfig, Simulator};
    assert_eq!(Isa::detect(), Isa::Simd128, "the wasm build enables simd128 (.cargo/config.toml)");
    for bytes in [MODEL, include_bytes!("../../models/small-w2-cifar10.cifhe").as_slice()] {
        let model = Model::from_bytes(bytes).unwrap();
        let mut scratch = vec![0u64; model.scratch_words()];
        let mut run = |isa: Isa, image: &[u8]| {
            let mut out = vec![0i32; model.classes()];
            let cfg = RunConfig { rounding_bits: None, isa, ..RunConfig::new(&model) };
            Simulator::new(&model, cfg).unwrap().run(image, 0, &mut scratch, &mut out).unwrap();
            out
        };
        for seed in 0..4u32 {
            let image: Vec<u8> = (0..model.image_len() as u32).map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed * 977) >> 13) as u8).collect();
            assert_eq!(run(Isa::Simd128, &image), run(Isa::Portable, &image));
        }
    }
}

#[wasm_bindgen_test]
fn corrupt_model_is_refused() {
    let mut bytes = MODEL.to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    assert!(Classifier::new(bytes).is_err());
    assert!(Classifier::new(MODEL[..100].to_vec()).is_err());
}

#[wasm_bindgen_test]
fn simulation_is_a_deterministic_distribution() {
    let mut c = classifier();
    assert_eq!(c.classes(), 10);
    let image = gradient_image(&c);
    assert_eq!(image.len(), 3 * 32 * 32);
    let p = c.simulate(&image, "2_2", 7).unwrap();
    assert_eq!(p.len(), 10);
    assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    assert_eq!(p, c.simulate(&image, "2_2", 7).unwrap());
    assert!(c.simulate(&image, "9_9", 0).is_err());
    assert!(c.simulate(&image[1..], "2_2", 0).is_err());
    assert!(c.prepare_rgba(&[0; 10], 2, 2).is_err());
}

#[wasm_bindgen_test]
fn batches_classify_each_image_with_its_own_noise_stream() {
    let mut c = classifier();
    let image = gradient_image(&c);
    let len = image.len();
    let argmax = |p: &[f32]| (0..p.len()).fold(0, |b, k| if p[k] > p[b] { k } else { b }) as u16;
    // Image k of a batch that starts at index i is classified with noise stream i + k: alone, at
    // index i + k, it gets the same class, and at index 0 the class of `simulate`.
    let images = image.repeat(6);
    let classes = c.classify_batch(&images, 5, "1_1", 3).unwrap();
    assert_eq!(classes.len(), 6);
    for (k, &class) in classes.iter().enumerate() {
        assert_eq!(class, c.classify_batch(&images[k * len..][..len], 5 + k as u64, "1_1", 3).unwrap()[0]);
    }
    assert_eq!(c.classify_batch(&image, 0, "1_1", 3).unwrap()[0], argmax(&c.simulate(&image, "1_1", 3).unwrap()));
    assert!(c.classify_batch(&images[1..], 0, "2_2", 0).is_err());
}

#[wasm_bindgen_test]
fn client_encrypts_and_refuses_what_is_not_its_own() {
    let c = classifier();
    let client = FheClient::new(&c, "2_2").unwrap();
    assert_eq!(client.params(), "2_2");
    let image = gradient_image(&c);
    let ct = client.encrypt(&c, &image).unwrap();
    assert!(ct.len() > image.len(), "one ciphertext body per input value");
    assert!(client.encrypt(&c, &image[..100]).is_err());
    // An encrypted image is not a result; garbage is not either.
    assert!(client.decrypt(&c, &ct).is_err());
    assert!(client.decrypt(&c, b"cifheCO2garbage").is_err());
}
