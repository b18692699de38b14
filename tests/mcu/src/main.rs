//! The FHE simulator on a microcontroller: a compiled model and some CIFAR test images built into
//! Cortex-M4 firmware, classified with `cifhe-core` alone — no `std`, no allocator, the scratch
//! arena a static buffer — and the classes printed through semihosting. `tests/e2e/targets.rs`
//! builds it with `CIFHE_MCU_MODEL` (a `.cifhe` file) and `CIFHE_MCU_IMAGES` (records of a label
//! byte then the image's RGB planes, as the web demo's `GET /api/test-set` sends them), runs it
//! in QEMU (`-machine mps2-an386`) and compares the classes with the native simulator's.
#![no_std]
#![no_main]

use cifhe_core::{Model, RunConfig, Simulator};
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use panic_semihosting as _;

static MODEL: &[u8] = include_bytes!(env!("CIFHE_MCU_MODEL"));
static IMAGES: &[u8] = include_bytes!(env!("CIFHE_MCU_IMAGES"));

/// Scratch arena, in 8-byte words: 1 MiB of the board's 4 MiB of RAM.
const SCRATCH_WORDS: usize = 128 * 1024;
/// Largest number of classes (CIFAR-100).
const MAX_CLASSES: usize = 100;

#[entry]
fn main() -> ! {
    static mut SCRATCH: [u64; SCRATCH_WORDS] = [0; SCRATCH_WORDS];
    let model = Model::from_bytes(MODEL).expect("a valid model");
    assert!(model.scratch_words() <= SCRATCH_WORDS && model.classes() <= MAX_CLASSES, "the model is too large for this board");
    let sim = Simulator::new(&model, RunConfig::new(&model)).expect("the model's own configuration");
    let mut out = [0i32; MAX_CLASSES];
    let record = 1 + model.image_len();
    let mut correct = 0;
    for (i, r) in IMAGES.chunks_exact(record).enumerate() {
        let (class, _) = sim.classify(&r[1..], i as u64, SCRATCH, &mut out[..model.classes()]).expect("a whole image");
        correct += (class == r[0] as usize) as usize;
        hprintln!("image {} class {}", i, class);
    }
    hprintln!("correct {} of {}", correct, IMAGES.len() / record);
    debug::exit(debug::EXIT_SUCCESS);
    panic!("semihosting exit returned: no debugger or emulator is attached")
}
