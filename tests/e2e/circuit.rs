//! Compiler → model file → simulator, on real CIFAR images: the simulator must equal the naive
//! evaluation of the compiled circuit at every rounding.
use cifhe_core::kernels::{reference, Isa};
use cifhe_core::{Model, NoiseModel, RunConfig, Simulator};
use train_host::arch::{Arch, FloatNet};
use train_host::cifar::{load, Kind, Split};
use train_host::compile::{compile, QuantConfig};
use train_host::paths::default_data;

#[test]
fn compiled_small_cnn_runs_identically_in_simulator_and_reference() {
    let data = load(&default_data(), Kind::Cifar10, Split::Test).expect("CIFAR-10 test set");
    let (mean, std) = Kind::Cifar10.normalization();
    let net = FloatNet::random(Arch::by_name("small", 10, 1.0).unwrap(), (3, 32, 32), 1);
    let calib = &data.images[..64 * 3072];
    let bytes = compile(&net, mean, std, QuantConfig::default(), calib, None, "t", "test", &data.names, &|_| {}).unwrap();
    let model = Model::from_bytes(&bytes).unwrap();
    let mut scratch = vec![0u64; model.scratch_words()];
    let mut out = vec![0i32; 10];
    for bits in [None, Some(8), Some(6), Some(4)] {
        for isa in Isa::available() {
            let cfg = RunConfig { rounding_bits: bits, noise: NoiseModel::NONE.into(), isa, ..RunConfig::new(&model) };
            let sim = Simulator::new(&model, cfg).unwrap();
            for i in 100..110 {
                sim.run(data.image(i), i as u64, &mut scratch, &mut out).unwrap();
                assert_eq!(out, reference::evaluate(&model, data.image(i), bits), "bits {bits:?} {isa:?} image {i}");
            }
        }
    }
}
