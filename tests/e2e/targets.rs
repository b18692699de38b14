//! The core builds where it must run: a microcontroller without `std` or an allocator. A real
//! cross-compilation, in its own target folder. (The browser build is `browser.rs`'s wasm-pack.)
use std::process::Command;

fn cargo_build(args: &[&str]) {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let target_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/cross-check");
    let out = Command::new(env!("CARGO"))
        .current_dir(root)
        .args(["build", "--target-dir", target_dir])
        .args(args)
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "cargo build {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn core_builds_for_a_microcontroller_without_std_or_alloc() {
    // thumbv7em has no `std`; `cifhe-core` declares no `extern crate alloc`, so nothing can allocate.
    cargo_build(&["-p", "cifhe-core", "--no-default-features", "--target", "thumbv7em-none-eabihf"]);
}
