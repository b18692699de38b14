//! The core builds where it must run: a microcontroller without `std` or an allocator. A real
//! cross-compilation, in its own target folder, and firmware that runs the simulator on an
//! emulated Cortex-M4 (QEMU). (The browser build is `browser.rs`'s wasm-pack.)
use cifhe_core::{Model, RunConfig, Simulator};
use std::process::Command;
use train_host::{cifar, paths};

fn cargo_build(args: &[&str]) {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let target_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/cross-check");
    let out = Command::new(env!("CARGO")).current_dir(root).args(["build", "--target-dir", target_dir]).args(args).output().expect("cargo runs");
    assert!(out.status.success(), "cargo build {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn core_builds_for_a_microcontroller_without_std_or_alloc() {
    // thumbv7em has no `std`; `cifhe-core` declares no `extern crate alloc`, so nothing can allocate.
    cargo_build(&["-p", "cifhe-core", "--no-default-features", "--target", "thumbv7em-none-eabihf"]);
}

/// Test images the firmware classifies.
const MCU_IMAGES: usize = 500;

#[test]
fn simulator_on_an_emulated_cortex_m4_finds_the_native_classes() {
    // The trained small CNN (76.6% on CIFAR-10) and the first test images, built into the firmware
    // of `tests/mcu` as records of a label byte and the image.
    let model_file = paths::workspace().join("models/small-w2-cifar10.cifhe");
    let bytes = std::fs::read(&model_file).unwrap();
    let model = Model::from_bytes(&bytes).unwrap();
    let ds = cifar::test_set_for(&model, &paths::default_data(), Some(MCU_IMAGES)).expect("the CIFAR test set");
    let target_dir = paths::workspace().join("target/cross-check");
    std::fs::create_dir_all(&target_dir).unwrap();
    let images = target_dir.join("mcu-images.bin");
    std::fs::write(&images, ds.records()).unwrap();
    let out = Command::new(env!("CARGO"))
        .current_dir(paths::workspace().join("tests/mcu"))
        .args(["build", "--release", "--target", "thumbv7em-none-eabihf", "--target-dir"])
        .arg(&target_dir)
        .env("CIFHE_MCU_MODEL", &model_file)
        .env("CIFHE_MCU_IMAGES", &images)
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "the firmware does not build:\n{}", String::from_utf8_lossy(&out.stderr));

    let firmware = target_dir.join("thumbv7em-none-eabihf/release/cifhe-mcu");
    let run = Command::new("timeout")
        .args([
            "600",
            "qemu-system-arm",
            "-cpu",
            "cortex-m4",
            "-machine",
            "mps2-an386",
            "-nographic",
            "-semihosting-config",
            "enable=on,target=native",
            "-kernel",
        ])
        .arg(&firmware)
        .output()
        .expect("qemu-system-arm is installed (Debian package qemu-system-arm; .ci/run installs it)");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "the firmware failed:\n{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    let classes: Vec<u16> = stdout.lines().filter_map(|l| l.strip_prefix("image ")).map(|l| l.split(" class ").nth(1).unwrap().parse().unwrap()).collect();

    // The native simulator, same configuration (the model's exact rounding, 2^-40), same streams.
    let sim = Simulator::new(&model, RunConfig::new(&model)).unwrap();
    let native = cifhe_core::batch::classify_all(&sim, &ds.images, 0, |_| {}).unwrap().predictions;
    assert_eq!(classes, native, "the microcontroller found other classes than the native simulator");
    let correct = native.iter().zip(&ds.labels).filter(|(p, l)| p == l).count();
    println!("Cortex-M4 (QEMU mps2-an386): {correct} of {MCU_IMAGES} correct");
    assert!(stdout.contains(&format!("correct {correct} of {MCU_IMAGES}")), "{stdout}");
    assert!(correct > MCU_IMAGES / 2, "the small CNN beats chance (10%) clearly: {correct} of {MCU_IMAGES}");
}
