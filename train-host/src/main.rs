//! `train-host`: the cifhe command line. Run `train-host --help`. The commands and their options
//! are defined in `cli.rs`; this file carries them out.
mod cli;

use cifhe_core::{Model, NoiseModel, RoundingMode, RunConfig};
use clap::Parser;
use cli::{Cli, Command, Mode, SimArgs, TrainArgs, FHE_P_ERROR};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use train_host::arch::{Arch, FloatNet};
use train_host::backend::Backend;
use train_host::cifar::{self, Kind, Split};
use train_host::{bench, bench_fhe, compile, compile_run, eval, inspect, model_file, paths, picture, report, run_folder, stop, train};

/// Replaces (or appends) the section `name` of the markdown `file`, if one was given.
fn write_section(file: Option<PathBuf>, name: &str, md: &str) -> Result<(), String> {
    if let Some(file) = file {
        let doc = std::fs::read_to_string(&file).unwrap_or_default();
        std::fs::write(&file, bench::replace_section(&doc, name, md)).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        eprintln!("updated {}", file.display());
    }
    Ok(())
}

fn run_config(model: &Model<'_>, a: &SimArgs) -> Result<RunConfig, String> {
    let rounding_bits = a.rounding_bits.map_or(model.rounding_bits(), |r| r.0);
    let base = RunConfig { rounding_bits, seed: a.seed, ..RunConfig::new(model) };
    if let Some(params) = a.fhe_params {
        let plan = cifhe_core::fhe::Plan::for_set(model, params, rounding_bits, a.p_error.unwrap_or(FHE_P_ERROR)).map_err(|e| e.to_string())?;
        return Ok(plan.simulation(base));
    }
    Ok(RunConfig {
        mode: match a.mode {
            Mode::Exact => RoundingMode::Exact,
            Mode::Approximate => RoundingMode::Approximate,
        },
        noise: NoiseModel::from_p_error(a.p_error.unwrap_or(cifhe_core::noise::DEFAULT_P_ERROR)).into(),
        ..base
    })
}

/// `train`: trains (or resumes) the run folder's network, then compiles it.
fn run_train(args: TrainArgs) -> Result<(), String> {
    let TrainArgs {
        arch,
        width,
        dataset,
        data,
        run_dir,
        float_epochs,
        qat_epochs,
        head_epochs,
        rotate,
        batch,
        lr,
        qat_lr,
        smoothing,
        schedule,
        batch_norm,
        imagenet_weights,
        seed,
        limit,
        eval_images,
        resume,
        restart_qat,
        out,
        rounding_bits,
        qat_rounding_bits,
        remeasure_every,
        centre_accumulators,
        qat_noise,
        weight_bits,
        act_bits,
        per_channel_weights,
        backend,
        bf16,
    } = args;
    let device = backend.device()?;
    let (mean, std) = dataset.normalization();
    let qat_rounding_bits = qat_rounding_bits.unwrap_or(rounding_bits).0.map(u32::from);
    let cfg = train::TrainConfig {
        arch: arch.clone(),
        width,
        classes: dataset.classes(),
        float_epochs,
        qat_epochs,
        batch,
        lr,
        qat_lr,
        smoothing,
        schedule,
        weight_bits,
        act_bits,
        per_channel_weights,
        qat_rounding_bits,
        remeasure_every,
        centre_accumulators,
        qat_noise,
        batch_norm,
        seed,
        mean,
        std,
        init: imagenet_weights.as_ref().map(|p| p.display().to_string()),
        head_epochs,
        rotation_degrees: rotate,
        limit,
        bf16,
        backend,
    };
    train_host::widths::fit(&Arch::by_name(&arch, dataset.classes(), width)?, &cfg.weight_bits, &cfg.act_bits)?;
    if imagenet_weights.is_some() && (arch != "vgg11" || width != 1.0) {
        return Err("--imagenet-weights needs --arch vgg11 at width 1".into());
    }
    // Locked first, so that a second `train` on this run is refused at once; a folder
    // made here is removed again if the data cannot be read.
    let made = !run_dir.exists();
    let _lock = run_folder::lock(&run_dir)?;
    let (train_set, mut test) = load_train_and_test(&data, dataset, limit).inspect_err(|_| {
        if made {
            let _ = std::fs::remove_dir_all(&run_dir);
        }
    })?;
    test.truncate(eval_images);
    if restart_qat {
        let k = run_folder::restart_qat(&run_dir, &cfg)?;
        eprintln!("restarting QAT from the float weights; the previous attempt is kept as *.qat-attempt-{k}.*");
    }
    let stop = stop::on_signals()?;
    let t = train::train_until(&cfg, &train_set, &test, &run_dir, resume || restart_qat, &stop, train::PARTIAL_EVERY)?;
    // Training is saved: from here on, Ctrl-C or SIGTERM quits at once.
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    compile_run::finished(&cfg, &t, &train_set, &test, rounding_bits.0, &run_dir, out.as_deref(), &device)?;
    Ok(())
}

/// `report`: measures `model`'s accuracy table on the test set of `data` and prints it as markdown;
/// with `out`, writes it there with its plots beside it.
fn run_report(model: &Path, data: &Path, run_dir: Option<&Path>, out: Option<&Path>) -> Result<(), String> {
    let bytes = model_file::read(model)?;
    let m = model_file::open(model, &bytes)?;
    let ds = cifar::test_set_for(&m, data, None)?;
    let log = match run_dir {
        Some(d) => Some(std::fs::read_to_string(d.join("log.tsv")).map_err(|e| format!("{}: {e}", d.join("log.tsv").display()))?),
        None => None,
    };
    // The folder first: a typo should not cost the measurements.
    if let Some(dir) = out.and_then(|o| o.parent()).filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let rows = report::measure(&m, &ds, log.as_deref(), &|s| eprintln!("measuring: {s}"))?;
    let name = &m.file().name;
    // Plots beside the markdown: `R.svg` (accuracy by rounding), `R.training.svg` (curves).
    let mut plots = Vec::new();
    if let Some(o) = out {
        plots.push(("accuracy against rounding bits", o.with_extension("svg"), report::svg(&rows, &format!("{name}: simulated accuracy by rounding"))));
        if let Some(svg) = log.as_deref().and_then(|l| report::training_svg(l, &format!("{name}: accuracy per training epoch"))) {
            plots.push(("accuracy per training epoch", o.with_extension("training.svg"), svg));
        }
    }
    let file_name = |p: &Path| p.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned());
    let links: Vec<(&str, String)> = plots.iter().map(|(alt, p, _)| (*alt, file_name(p))).collect();
    let md = report::markdown(&m, &ds, &rows, &links);
    print!("{md}");
    if let Some(o) = out {
        std::fs::write(o, &md).map_err(|e| format!("cannot write {}: {e}", o.display()))?;
        for (_, p, svg) in &plots {
            std::fs::write(p, svg).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
        }
        let written: Vec<String> = std::iter::once(o).chain(plots.iter().map(|p| p.1.as_path())).map(|p| p.display().to_string()).collect();
        eprintln!("wrote {}", written.join(", "));
    }
    Ok(())
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Classify { files, top, json, model, data, images, show, sim } => {
            let path = model.unwrap_or_else(paths::default_model);
            let bytes = model_file::read(&path)?;
            let m = model_file::open(&path, &bytes)?;
            if !json {
                println!("model {} — {}", m.file().name, m.file().description);
            }
            if !files.is_empty() {
                let results = picture::classify(&m, run_config(&m, &sim)?, &files, top)?;
                if json {
                    println!("{}", serde_json::to_string(&results).map_err(|e| e.to_string())?);
                } else {
                    print!("{}", picture::text(&results));
                }
                return Ok(());
            }
            let ds = cifar::test_set_for(&m, &data.unwrap_or_else(paths::default_data), Some(images))?;
            let r = eval::evaluate(&m, &ds, run_config(&m, &sim)?, true)?;
            println!("\n{:>6}  {:<12} {:<12}", "image", "true", "predicted");
            for (i, &p) in r.predictions.iter().enumerate().take(show) {
                let (t, p) = (ds.labels[i] as usize, p as usize);
                println!("{i:>6}  {:<12} {:<12} {}", ds.names[t], ds.names[p], if t == p { "✓" } else { "✗" });
            }
            println!("\n{}", r.to_text().lines().take(4).collect::<Vec<_>>().join("\n"));
        }
        Command::Fhe { files, images, params, rounding_bits, p_error, noise_draws, json } => {
            let (path, bytes) = images.read_model()?;
            let m = model_file::open(&path, &bytes)?;
            let inputs = if files.is_empty() {
                let ds = images.test_set(&m)?;
                images.image.iter().map(|&i| train_host::fhe::Input::test_image(&ds, i)).collect()
            } else {
                files.iter().map(|f| train_host::fhe::Input::picture(f, &m)).collect::<Result<Vec<_>, String>>()?
            };
            let cfg =
                train_host::fhe::FheConfig { params, rounding_bits: rounding_bits.map_or(m.rounding_bits(), |r| r.0), p_error, noise_draws, progress: !json };
            let r = train_host::fhe::run(&m, &inputs, &cfg)?;
            if json {
                println!("{}", serde_json::to_string(&r).map_err(|e| e.to_string())?);
            } else {
                let n = r.images.len();
                let agree = r.images.iter().filter(|i| i.fhe_class == i.simulator_class).count();
                let possible = r.images.iter().filter(|i| i.noisy_simulator_classes.iter().any(|c| c.class == i.fhe_class)).count();
                // With --noise-draws 0 the noisy simulator did not run: nothing to compare with.
                let noisy = if noise_draws > 0 { format!(", one of the noisy simulator's on {possible}/{n}") } else { String::new() };
                let mean = r.images.iter().map(|i| i.evaluate_seconds).sum::<f64>() / n.max(1) as f64;
                println!(
                    "{}: {} bootstraps per image under {}; TFHE class = noiseless simulator's on {agree}/{n} images{noisy}; \
                     {mean:.1} s per image on {} threads",
                    r.model, r.bootstraps, r.params, r.threads
                );
            }
        }
        Command::FheNoise { images, params, rounding_bits, stages, p_error, crop, write } => {
            let (path, bytes) = images.read_model()?;
            let m = model_file::open(&path, &bytes)?;
            let ds = images.test_set(&m)?;
            let cfg = train_host::fhe_noise::NoiseConfig {
                params,
                rounding_bits: rounding_bits.map_or(m.rounding_bits(), |r| r.0),
                lookup_stages: stages,
                p_error,
                crop,
                images: images.image.clone(),
            };
            let report = train_host::fhe_noise::run(&m, &ds, &cfg, true)?;
            let indices = images.image.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
            let command = format!(
                "cargo run --release -p train-host -- fhe-noise --model {} --params {} --p-error {p_error} --stages {stages} --image {indices}{}{}",
                path.display(),
                params.name(),
                crop.map_or(String::new(), |c| format!(" --crop {c}")),
                rounding_bits.map_or(String::new(), |r| format!(" --rounding-bits {}", r.0.map_or("none".into(), |b| b.to_string())))
            );
            let md = train_host::fhe_noise::markdown(&report, &m, &cfg, &command);
            print!("{md}");
            write_section(write, "fhe-noise", &md)?;
        }
        Command::Serve { model, data, addr, web, params, max_sessions, idle_timeout, key_limit_mb, samples, accuracy_model } => {
            train_host::serve::run(train_host::serve::ServeConfig {
                model: model.unwrap_or_else(paths::demo_model),
                data: Some(data.unwrap_or_else(paths::default_data)),
                web_root: web.unwrap_or_else(paths::web_root),
                addr,
                params,
                max_sessions,
                idle_timeout: std::time::Duration::from_secs(idle_timeout),
                key_limit: key_limit_mb << 20,
                samples,
                accuracy_models: if accuracy_model.is_empty() { vec![paths::default_model()] } else { accuracy_model },
            })?;
        }
        Command::Eval { model, data, limit, json, sim } => {
            let bytes = model_file::read(&model)?;
            let m = model_file::open(&model, &bytes)?;
            let ds = cifar::test_set_for(&m, &data, limit)?;
            let r = eval::evaluate(&m, &ds, run_config(&m, &sim)?, !json)?;
            if json {
                println!("{}", serde_json::to_string(&r).map_err(|e| e.to_string())?);
            } else {
                print!("{}", r.to_text());
            }
        }
        Command::Init { arch, width, dataset, data, out, seed, calibration, rounding_bits } => {
            let a = Arch::by_name(&arch, dataset.classes(), width)?;
            let net = FloatNet::random(a, (3, 32, 32), seed);
            eprintln!("loading {dataset} training images for calibration…");
            let mut train = cifar::load(&data, dataset, Split::Train).map_err(|e| e.to_string())?;
            train.truncate(calibration);
            let (mean, std) = dataset.normalization();
            let name = format!("{arch}-random-{}", dataset.arg());
            let desc = format!(
                "UNTRAINED: random He-initialised {arch} (width {width}, seed {seed}), 5-bit weights and activations, \
                 calibrated on {} training images; for measuring the simulator, not for accuracy. \
                 Made by `train-host init --arch {arch} --width {width} --dataset {} --seed {seed} --calibration {calibration}`.",
                train.len(),
                dataset.arg()
            );
            let cfg = compile::QuantConfig { rounding_bits: rounding_bits.0, ..Default::default() };
            let bytes = compile::compile(&net, mean, std, cfg, &train.images, None, &name, &desc, &train.names, &|s| eprintln!("{s}"))?;
            std::fs::write(&out, &bytes).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
            println!("wrote {} ({} bytes)", out.display(), bytes.len());
        }
        Command::Train(args) => run_train(args)?,
        Command::Compile {
            run_dir,
            data,
            limit,
            eval_images,
            rounding_bits,
            out,
            backend,
            post_training: true,
            per_channel_weights,
            weight_bits,
            act_bits,
        } => {
            let (cfg, net, log) = run_folder::latest(&run_dir, &backend.device()?)?;
            let cfg = train::TrainConfig {
                per_channel_weights: per_channel_weights || cfg.per_channel_weights,
                weight_bits: weight_bits.unwrap_or(cfg.weight_bits),
                act_bits: act_bits.unwrap_or(cfg.act_bits),
                ..cfg
            };
            let (cfg, train_set, test) = run_data(cfg, limit, &data, eval_images)?;
            let rounding = rounding_bits.map_or(Some(6), |r| r.0);
            let out = out.unwrap_or_else(|| run_dir.join("post-training.cifhe"));
            compile_run::post_training(&cfg, &net, &log, &train_set, &test, rounding, &run_dir, &out)?;
        }
        Command::Compile { run_dir, data, limit, eval_images, rounding_bits, out, backend, .. } => {
            let device = backend.device()?;
            let (cfg, t) = run_folder::finished(&run_dir)?;
            let (cfg, train_set, test) = run_data(cfg, limit, &data, eval_images)?;
            let rounding = rounding_bits.map_or(Some(cfg.qat_rounding_bits.map_or(6, |b| b as u8)), |r| r.0);
            compile_run::finished(&cfg, &t, &train_set, &test, rounding, &run_dir, out.as_deref(), &device)?;
        }
        Command::Report { model, data, run_dir, out } => run_report(&model, &data, run_dir.as_deref(), out.as_deref())?,
        Command::Adapt { weights, classes } => {
            let net = train_host::adapt::adapt(&weights, classes, 0)?;
            let convs = net.arch.layers.iter().zip(&net.params).filter(|(l, _)| matches!(l, train_host::arch::Layer::Conv { .. }));
            for ((layer, p), index) in convs.zip(train_host::adapt::TORCHVISION_CONVS) {
                let p = p.as_ref().expect("parameters");
                println!("features.{index:<2} -> {layer:?}: {} weights, {} biases", p.weight.len(), p.bias.len());
            }
            println!("classifier dropped; new Linear(512, {classes}). Train with: train --arch vgg11 --imagenet-weights {} --head-epochs 2", weights.display());
        }
        Command::Status { run_dir } => print!("{}", train_host::status::text(&run_dir)?),
        Command::Inspect { model } => {
            let bytes = model_file::read(&model)?;
            let m = model_file::open(&model, &bytes)?;
            print!("{}", inspect::text(&m, bytes.len()));
        }
        Command::Centre { model, out } => {
            let bytes = model_file::read(&model)?;
            let m = model_file::open(&model, &bytes)?;
            let description = format!("{} Accumulators centred by `train-host centre`.", m.file().description);
            let centred = cifhe_core::ModelFile { description: &description, ..m.file().clone() }.with_centred_lookups().to_bytes();
            std::fs::write(&out, &centred).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
            print!("{}", inspect::text(&model_file::open(&out, &centred)?, centred.len()));
            println!("wrote {}", out.display());
        }
        Command::BenchFhe { models, sets, lookups, p_error, write } => {
            let md = bench_fhe::markdown(&models, &sets, lookups, p_error)?;
            print!("{md}");
            write_section(write, "fhe-costs", &md)?;
        }
        Command::BenchTrain { arch, width, batch, steps, batch_norm, torch, bf16, backend, data, write } => {
            let backends = if backend.is_empty() { Backend::compiled() } else { backend };
            let cfg = train::TrainConfig {
                arch: arch.clone(),
                width,
                batch,
                batch_norm,
                float_epochs: 1,
                qat_epochs: 0,
                ..train::TrainConfig::recipe(Kind::Cifar10)
            };
            let mut ds = cifar::load(&data.unwrap_or_else(paths::default_data), Kind::Cifar10, Split::Train).map_err(|e| e.to_string())?;
            ds.truncate(batch);
            let speeds = train_host::bench_train::measure(&cfg, &ds, steps, &backends, bf16, torch.as_deref())?;
            let mut features: Vec<&str> = backends.iter().filter_map(|b| b.feature()).collect();
            features.sort_unstable();
            features.dedup();
            let command = format!(
                "cargo run --release -p train-host{} -- bench-train --arch {arch} --width {width} --batch {batch} --steps {steps} --backend {}{}{}{}",
                if features.is_empty() { String::new() } else { format!(" --features {}", features.join(",")) },
                backends.iter().map(train_host::value_name).collect::<Vec<_>>().join(","),
                if batch_norm { " --batch-norm" } else { "" },
                if bf16 { " --bf16" } else { "" },
                torch.as_ref().map_or(String::new(), |p| format!(" --torch {}", p.display()))
            );
            let md = train_host::bench_train::markdown(&cfg, steps, &speeds, &command);
            print!("{md}");
            write_section(write, &format!("training-{arch}{}", if bf16 { "-bf16" } else { "" }), &md)?;
        }
        Command::Bench { model, data, images, write } => {
            let path = model.unwrap_or_else(paths::default_model);
            let bytes = model_file::read(&path)?;
            let m = model_file::open(&path, &bytes)?;
            let ds = cifar::test_set_for(&m, &data.unwrap_or_else(paths::default_data), Some(images))?;
            let (rows, peak) = bench::run_all(&m, &ds.images, &|s| eprintln!("benchmarking: {s}"))?;
            let command = format!("cargo run --release -p train-host -- bench --images {images}");
            let md = bench::markdown(&rows, peak, &m, &command);
            print!("{md}");
            write_section(write, "simulator", &md)?;
        }
    }
    Ok(())
}

/// The training set (its first `limit` images) and the test set.
/// A saved run's training images (the ones it trained on) and `eval_images` test images, for
/// `compile`; runs saved before 2026-12-01 do not know their --limit, which `limit` may give.
fn run_data(
    cfg: train::TrainConfig,
    limit: Option<usize>,
    data: &Path,
    eval_images: usize,
) -> Result<(train::TrainConfig, cifar::Dataset, cifar::Dataset), String> {
    let cfg = train::TrainConfig { limit: limit.or(cfg.limit), ..cfg };
    let dataset = Kind::for_classes(cfg.classes).ok_or_else(|| format!("the run has {} classes: not a CIFAR run", cfg.classes))?;
    let (train_set, mut test) = load_train_and_test(data, dataset, cfg.limit)?;
    test.truncate(eval_images);
    Ok((cfg, train_set, test))
}

fn load_train_and_test(data: &Path, dataset: Kind, limit: Option<usize>) -> Result<(cifar::Dataset, cifar::Dataset), String> {
    eprintln!("loading {dataset}…");
    let mut train_set = cifar::load(data, dataset, Split::Train).map_err(|e| e.to_string())?;
    if let Some(n) = limit {
        train_set.truncate(n);
    }
    let test = cifar::load(data, dataset, Split::Test).map_err(|e| e.to_string())?;
    Ok((train_set, test))
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
