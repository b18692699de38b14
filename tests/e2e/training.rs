//! Training → compiled model → simulator, on a short budget: the path of `train-host train` must
//! learn (clearly above chance), and the integer circuit must reproduce the QAT network's classes.
use cifhe_core::{Model, NoiseModel, RunConfig};
use train_host::arch::Arch;
use train_host::cifar::{load, Kind, Split};
use train_host::compile::compile;
use train_host::eval::evaluate;
use train_host::net::{Net, Rounding};
use train_host::paths::default_data;
use train_host::train::{accuracy, circuit_rounding, train, TrainConfig};

#[test]
fn short_training_beats_chance_and_the_circuit_matches_qat() {
    let mut train_set = load(&default_data(), Kind::Cifar10, Split::Train).expect("CIFAR-10 training set");
    train_set.truncate(4000);
    let mut test = load(&default_data(), Kind::Cifar10, Split::Test).expect("CIFAR-10 test set");
    test.truncate(1000);
    let cfg = TrainConfig {
        float_epochs: 3,
        qat_epochs: 1,
        // Per-layer widths (wider first and last layers), so that the circuit is checked to
        // quantize each layer as QAT did.
        weight_bits: "6,5,5,6".parse().unwrap(),
        act_bits: "7,5,5,5,5,5,5".parse().unwrap(),
        per_channel_weights: true,
        batch_norm: true,
        seed: 7,
        ..TrainConfig::recipe(Kind::Cifar10)
    };
    let device = burn::tensor::Device::flex();
    let run = std::env::temp_dir().join(format!("cifhe-train-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&run);
    let t = train(&cfg, &train_set, &test, &run, false).expect("training runs");
    assert_eq!(t.log.len(), 4);
    assert!(run.join("checkpoint.bin").exists() && run.join("log.tsv").exists());
    // A finished run resumes to the same result without training again; a fresh start is refused.
    let again = train(&cfg, &train_set, &test, &run, true).expect("resume");
    assert_eq!(again.scales, t.scales);
    assert!(train(&cfg, &train_set, &test, &run, false).unwrap_err().contains("--resume"));

    let compiled = |cfg: &TrainConfig| {
        let calibration = &train_set.images[..512 * 3072];
        compile(&t.net, cfg.mean, cfg.std, cfg.compile_quant(Some(6)), calibration, Some(&t.scales), "t", "test", &train_set.names, &|_| {}).expect("compiles")
    };
    let bytes = compiled(&cfg);
    let model = Model::from_bytes(&bytes).unwrap();
    let exact = RunConfig { rounding_bits: None, noise: NoiseModel::NONE.into(), ..RunConfig::new(&model) };
    let circuit = evaluate(&model, &test, exact, false).unwrap();
    assert!(circuit.accuracy > 0.25, "short training should clearly beat chance (10%): {}", circuit.accuracy);

    let arch = Arch::by_name("small", 10, 1.0).unwrap();
    let net = Net::from_float(&t.net, &device).set_scales(&t.scales, &device);
    let quant = cfg.quant();
    let (_, qat) = accuracy(&net, &arch, &test, &cfg, Some(&quant));
    let agree = circuit.predictions.iter().zip(&qat).filter(|(a, b)| a == b).count();
    assert!(agree >= 990, "integer circuit and QAT forward agree on only {agree}/1000 images");
    // Rounding-aware training's forward rounds as the circuit does (6 bits, the model's widths).
    let rounded = evaluate(&model, &test, RunConfig { rounding_bits: Some(6), ..exact }, false).unwrap();
    let (_, qat) = accuracy(&net, &arch, &test, &cfg, Some(&quant.clone().with_rounding(Some(Rounding::of_model(&model, 6)))));
    let agree = rounded.predictions.iter().zip(&qat).filter(|(a, b)| a == b).count();
    assert!(agree >= 990, "rounded circuit and rounding-aware QAT forward agree on only {agree}/1000 images");
    // Centred accumulators: the trainer measures the centres and widths the compiler declares,
    // and its rounding about them is the circuit's.
    let centred_cfg = TrainConfig { centre_accumulators: true, ..cfg.clone() };
    let centred_bytes = compiled(&centred_cfg);
    let centred = Model::from_bytes(&centred_bytes).unwrap();
    let declared = Rounding::of_model(&centred, 6);
    assert!(declared.centres.iter().any(|&c| c != 0), "the pools' one-sided ranges are centred: {declared:?}");
    assert_eq!(circuit_rounding(&net, &arch, &train_set, &centred_cfg, &quant, 6), declared, "QAT centres as the compiler does");
    let rounded = evaluate(&centred, &test, RunConfig { rounding_bits: Some(6), ..exact }, false).unwrap();
    let (_, qat) = accuracy(&net, &arch, &test, &cfg, Some(&quant.clone().with_rounding(Some(declared))));
    let agree = rounded.predictions.iter().zip(&qat).filter(|(a, b)| a == b).count();
    assert!(agree >= 990, "centred circuit and QAT forward agree on only {agree}/1000 images");
    let _ = std::fs::remove_dir_all(&run);
}
