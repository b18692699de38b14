//! The command line as a user meets it: the README's main command, JSON output, clear errors.
use serde_json::json;
use std::process::Command;

fn train_host(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_train-host")).args(args).output().expect("runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn classify_runs_on_the_shipped_model() {
    let (ok, out, err) = train_host(&["classify", "--images", "40", "--show", "3"]);
    assert!(ok, "{err}");
    assert!(out.contains("top-1 accuracy") && out.contains("images/s"), "{out}");
    // The default model is trained (91.81% on the full test set): on 40 images, chance is 10%.
    let line = out.lines().find(|l| l.starts_with("top-1 accuracy")).expect("an accuracy line");
    let correct: u32 = line.split('(').nth(1).and_then(|s| s.split('/').next()).and_then(|n| n.parse().ok()).expect("(correct/images)");
    assert!(correct >= 28, "the shipped model must classify, not guess: {line}");
    assert_eq!(out.lines().filter(|l| l.contains('✓') || l.contains('✗')).count(), 3);
}

#[test]
fn eval_json_reports_accuracy_and_speed() {
    let model = train_host::paths::default_model();
    let data = train_host::paths::default_data();
    let (ok, out, err) = train_host(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--limit",
        "100",
        "--json",
        "--rounding-bits",
        "5",
        "--p-error",
        "0.01",
        "--mode",
        "approximate",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(v["images"], 100);
    assert_eq!(v["rounding_bits"], 5);
    assert!(v["accuracy"].as_f64().unwrap() >= 0.0 && v["images_per_second"].as_f64().unwrap() > 0.0);
    assert!(v["noise_events"].as_u64().unwrap() > 0, "p_error 0.01 must move some lookups");
    let confusion: u64 = v["confusion"].as_array().unwrap().iter().flat_map(|r| r.as_array().unwrap()).map(|x| x.as_u64().unwrap()).sum();
    assert_eq!(confusion, 100);
}

#[test]
fn bad_inputs_give_clear_errors() {
    let dir = std::env::temp_dir().join(format!("cifhe-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = train_host::paths::default_data();
    let data = data.to_str().unwrap();

    let missing = dir.join("missing.cifhe");
    let (ok, _, err) = train_host(&["eval", "--model", missing.to_str().unwrap(), "--data", data]);
    assert!(!ok && err.contains("cannot read model"), "{err}");

    let shipped = std::fs::read(train_host::paths::default_model()).unwrap();
    let truncated = dir.join("truncated.cifhe");
    std::fs::write(&truncated, &shipped[..shipped.len() / 2]).unwrap();
    let (ok, _, err) = train_host(&["eval", "--model", truncated.to_str().unwrap(), "--data", data]);
    assert!(!ok && err.contains("truncated"), "{err}");

    let png = dir.join("picture.png");
    std::fs::write(&png, b"\x89PNG\r\n\x1a\n not a model at all").unwrap();
    let (ok, _, err) = train_host(&["inspect", "--model", png.to_str().unwrap()]);
    assert!(!ok && err.contains("not a cifhe model"), "{err}");

    let (ok, _, err) = train_host(&["classify", "--rounding-bits", "0"]);
    assert!(!ok && err.contains("rounding"), "{err}");
    let (ok, _, err) = train_host(&["classify", "--p-error", "1.5"]);
    assert!(!ok && err.contains("p_error"), "{err}");
    let (ok, _, err) = train_host(&["train", "--qat-noise", "5"]);
    assert!(!ok && err.contains("standard deviation in rounded steps"), "{err}");
    // Counts of nothing are refused up front (a batch of 0 images divided by zero; 0 test images
    // printed a report of 0/0).
    for args in [
        &["classify", "--images", "0"][..],
        &["eval", "--model", "m", "--data", data, "--limit", "0"],
        &["train", "--batch", "0", "--data", data, "--run-dir", "r"],
    ] {
        let (ok, _, err) = train_host(args);
        assert!(!ok && err.contains("'0'") && err.contains("must be at least 1"), "{args:?}: {err}");
    }
    for args in [&["train", "--lr", "nan", "--data", data, "--run-dir", "r"][..], &["init", "--width", "0", "--data", data, "--out", "x"]] {
        let (ok, _, err) = train_host(args);
        assert!(!ok && err.contains("must be a number above 0"), "{args:?}: {err}");
    }
    let (ok, _, err) = train_host(&["classify", "--data", dir.to_str().unwrap()]);
    assert!(!ok && err.contains("test_batch.bin not found"), "{err}");
    let (ok, _, err) = train_host(&["init", "--arch", "resnet", "--data", data, "--out", "x"]);
    assert!(!ok && err.contains("unknown architecture"), "{err}");
    let run = dir.join("run");
    let train = |extra: &[&str]| train_host(&[&["train", "--arch", "small", "--data", data, "--run-dir", run.to_str().unwrap()], extra].concat());
    let (ok, _, err) = train(&["--act-bits", "8,6"]);
    assert!(!ok && err.contains("input, conv1, pool1, conv2, pool2, conv3, pool3"), "{err}");
    let (ok, _, err) = train(&["--weight-bits", "9"]);
    assert!(!ok && err.contains("not a bit width"), "{err}");
    let (ok, _, err) = train(&["--rotate", "90"]);
    assert!(!ok && err.contains("not a rotation"), "{err}");
    assert!(!run.exists(), "refused settings start no run");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn init_compiles_a_small_network_that_inspect_and_eval_accept() {
    let dir = std::env::temp_dir().join(format!("cifhe-init-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("small.cifhe");
    let data = train_host::paths::default_data();
    let (ok, _, err) = train_host(&[
        "init",
        "--arch",
        "small",
        "--dataset",
        "cifar10",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--calibration",
        "32",
    ]);
    assert!(ok, "{err}");
    let (ok, text, err) = train_host(&["inspect", "--model", out.to_str().unwrap()]);
    assert!(ok && text.contains("lookup") && text.contains("10 classes"), "{text}{err}");
    assert!(!text.contains(" about "), "compiled about zero by default: {text}");
    // Re-declared about their centres, the pools' one-sided lookups need a bit less.
    let centred = dir.join("centred.cifhe");
    let (ok, text, err) = train_host(&["centre", "--model", out.to_str().unwrap(), "--out", centred.to_str().unwrap()]);
    assert!(ok && text.contains(" about ") && text.contains("Accumulators centred by `train-host centre`."), "{text}{err}");
    let (ok, _, err) = train_host(&["centre", "--model", dir.join("missing.cifhe").to_str().unwrap(), "--out", centred.to_str().unwrap()]);
    assert!(!ok && err.contains("missing.cifhe"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `fhe-noise` on the demo model's first lookup stage, on a crop, under real TFHE: one table row
/// whose measured error is that of the model (the 1_1 set at 6 bits is noisy enough to count).
#[test]
fn fhe_noise_measures_a_cropped_prefix_on_real_ciphertexts() {
    let args = ["fhe-noise", "--params", "1_1", "--stages", "1", "--crop", "16", "--image", "0,1"];
    let (ok, out, err) = train_host(&args);
    assert!(ok, "{err}");
    let rows: Vec<Vec<&str>> = out.lines().filter(|l| l.starts_with("| 1 |")).map(|l| l.split('|').map(str::trim).collect()).collect();
    assert_eq!(rows.len(), 1, "{out}");
    // Columns: stage, after, lookups, σ plan, σ model, σ measured, off, expected, …
    let (lookups, model, measured): (usize, f64, f64) = (rows[0][3].parse().unwrap(), rows[0][5].parse().unwrap(), rows[0][6].parse().unwrap());
    assert_eq!(lookups, 2 * 4 * 4 * 20, "two images of a 4×4×20 lookup stage: {out}");
    assert!((measured / model - 1.0).abs() < 0.2, "measured σ {measured} against the model's {model}: {out}");
    assert!(out.contains("whole 32×32 image"), "{out}");

    let (ok, _, err) = train_host(&["fhe-noise", "--stages", "1", "--crop", "2"]);
    assert!(!ok && err.contains("use a larger --crop"), "{err}");
    let (ok, _, err) = train_host(&["fhe-noise", "--stages", "9"]);
    assert!(!ok && err.contains("fewer than the 9"), "{err}");
}

/// `fhe --json` on test image 1 and on a picture made of it (three times its size): each decrypts
/// a class its noisy simulator gives, and the picture, being the same image once prepared, has the
/// same noise draws.
#[test]
fn fhe_json_decrypts_a_class_the_noisy_simulator_gives_for_test_images_and_pictures() {
    let dir = std::env::temp_dir().join(format!("cifhe-fhe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let picture = dir.join("ship.png");
    save_enlarged(&cifar10_test(), 1, &picture);
    let run = |what: &[&str]| -> serde_json::Value {
        let (ok, out, err) = train_host(&[&["fhe", "--noise-draws", "100", "--json"][..], what].concat());
        assert!(ok, "{err}");
        let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
        assert_eq!(v["bootstraps"], 1960, "{v}");
        let image = &v["images"][0];
        let classes = image["noisy_simulator_classes"].as_array().expect("noisy classes");
        assert_eq!(classes.iter().map(|c| c["draws"].as_u64().unwrap()).sum::<u64>(), 100, "{v}");
        assert!(classes.windows(2).all(|w| w[0]["draws"].as_u64() >= w[1]["draws"].as_u64()), "most frequent first: {v}");
        assert!(classes.iter().any(|c| c["class"] == image["fhe_class"]), "TFHE's class is not among the noisy simulator's: {v}");
        image.clone()
    };
    let test_image = run(&["--image", "1"]);
    assert_eq!((&test_image["name"], &test_image["index"], &test_image["label"]), (&json!("image 1"), &json!(1), &json!(8)));
    let from_picture = run(&[picture.to_str().unwrap()]);
    assert_eq!((&from_picture["name"], &from_picture["index"]), (&json!(picture.to_str().unwrap()), &serde_json::Value::Null));
    assert_eq!(from_picture["noisy_simulator_classes"], test_image["noisy_simulator_classes"]);
    let (ok, _, err) = train_host(&["fhe", "--image", "2", picture.to_str().unwrap()]);
    assert!(!ok && err.contains("cannot be used with"), "pictures or test images, not both: {err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_train_times_burn_and_says_when_python_is_missing() {
    let (ok, out, err) = train_host(&["bench-train", "--arch", "tiny", "--batch", "16", "--steps", "1"]);
    assert!(ok, "{err}");
    let row = out.lines().find(|l| l.starts_with("| cifhe (burn")).expect("a row for burn");
    assert!(row.contains("flex CPU backend, on ") && (row.contains(" thread) |") || row.contains(" threads) |")), "a row names its backend's threads: {row}");
    let ips: f64 = row.split('|').nth(2).unwrap().trim().parse().unwrap();
    assert!(ips > 0.0, "{row}");
    let (ok, _, err) = train_host(&["bench-train", "--arch", "tiny", "--batch", "16", "--steps", "1", "--torch", "/nonexistent/python3"]);
    assert!(!ok && err.contains("cannot run /nonexistent/python3"), "{err}");
    if !cfg!(feature = "libtorch") {
        let (ok, _, err) = train_host(&["bench-train", "--arch", "tiny", "--batch", "16", "--steps", "1", "--backend", "libtorch"]);
        assert!(!ok && err.contains("built without the LibTorch backend"), "{err}");
    }
}

#[test]
fn compile_recompiles_a_finished_run_and_refuses_an_unfinished_one() {
    let dir = std::env::temp_dir().join(format!("cifhe-compile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = train_host::paths::default_data();
    let (data, run) = (data.to_str().unwrap(), dir.join("run"));
    let run = run.to_str().unwrap();
    let small = ["--limit", "600", "--eval-images", "200"];
    // With another backend built in, the run resumes on it: checkpoints move between backends.
    use train_host::backend::Backend;
    let other = Backend::compiled().into_iter().find(|&b| b != Backend::Flex).unwrap_or(Backend::Flex);
    let resume_backend = train_host::value_name(&other);
    let train = |qat: &str, resume: bool| {
        let mut args = vec!["train", "--arch", "tiny", "--data", data, "--run-dir", run, "--float-epochs", "1", "--qat-epochs", qat];
        args.extend(small);
        if resume {
            args.extend(["--resume", "--backend", &resume_backend]);
        }
        train_host(&args)
    };
    let (ok, _, err) = train("0", false);
    assert!(!ok && err.contains("no quantization-aware epoch"), "{err}");
    let (ok, _, err) = train_host(&[&["compile", "--run-dir", run, "--data", data][..], &small].concat());
    assert!(!ok && err.contains("not finished"), "{err}");
    // ... unless quantized after training, as it stands.
    let (ok, _, err) = train_host(&[&["compile", "--per-channel-weights", "--run-dir", run, "--data", data][..], &small].concat());
    assert!(!ok && err.contains("--post-training"), "{err}");
    let post = ["compile", "--post-training", "--per-channel-weights", "--act-bits", "6", "--run-dir", run, "--data", data];
    let (ok, out, err) = train_host(&[&post[..], &small].concat());
    assert!(
        ok && out.contains("post-training quantization, 5-bit weights with one scale per output channel, 6-bit activations, on 200 test images"),
        "{out}{err}"
    );
    let (ok, out, err) = train_host(&["inspect", "--model", &format!("{run}/post-training.cifhe")]);
    assert!(ok && out.contains("no QAT") && out.contains("--act-bits 6"), "{out}{err}");
    // The float run takes a QAT phase it was not started with, then compiles at another rounding.
    let (ok, out, err) = train("1", true);
    assert!(ok, "{err}");
    assert!(out.contains("circuit = QAT argmax, 6-bit rounding: 100.00%"), "{out}");
    assert!(out.contains("under real TFHE: "), "the report says how the model runs in TFHE: {out}");
    let model = dir.join("m5.cifhe");
    let (ok, out, err) =
        train_host(&[&["compile", "--run-dir", run, "--data", data, "--rounding-bits", "5", "--out", model.to_str().unwrap()][..], &small].concat());
    assert!(ok, "{err}");
    assert!(out.contains("FHE simulation, 5-bit rounding"), "{out}");
    let (ok, out, err) = train_host(&["inspect", "--model", model.to_str().unwrap()]);
    assert!(ok && out.contains("5-bit rounding by default"), "{out}{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A run stopped mid-epoch by SIGTERM (`kill`, `timeout`, a service manager) or Ctrl-C saves where
/// it stands, and resumed, ends with the model file of the run that was never stopped, byte for
/// byte.
#[cfg(unix)]
#[test]
fn a_run_stopped_by_sigterm_and_ctrl_c_resumes_to_the_uninterrupted_model() {
    let dir = std::env::temp_dir().join(format!("cifhe-signals-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = train_host::paths::default_data();
    let (whole, stopped) = (dir.join("whole"), dir.join("stopped"));
    let args = |run: &std::path::Path, resume: bool| {
        let options = "train --arch tiny --float-epochs 1 --qat-epochs 1 --batch-norm --schedule one-cycle --limit 10000 --eval-images 500";
        let mut args: Vec<String> = options.split(' ').map(String::from).collect();
        args.extend(["--data".into(), data.display().to_string(), "--run-dir".into(), run.display().to_string()]);
        if resume {
            args.push("--resume".into());
        }
        args
    };
    let (ok, _, err) = train_host(&args(&whole, false).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok, "{err}");
    // Without a terminal, training reports every tenth of an epoch: the signal comes after the first.
    let status = |expected: &str| {
        let (ok, out, err) = train_host(&["status", "--run-dir", stopped.to_str().unwrap()]);
        assert!(ok && out.contains(expected), "{out}{err}");
        out
    };
    // While it trains, the run is locked: `status` names the process, and a second `train` on
    // the same folder is refused.
    let while_training = |pid: u32| {
        let training = format!("training now (process {pid})");
        let (ok, out, err) = train_host(&["status", "--run-dir", stopped.to_str().unwrap()]);
        assert!(ok && out.contains(&training) || err.contains(&format!("a training run (process {pid}) started there")), "{out}{err}");
        let (ok, _, err) = train_host(&args(&stopped, true).iter().map(String::as_str).collect::<Vec<_>>());
        assert!(!ok && err.contains(&format!("another process (pid {pid}) is training the run")), "{err}");
    };
    let (ok, err) = signalled_at(&args(&stopped, false), "float epoch 1/1: ", while_training, "-TERM");
    assert!(!ok && err.contains("interrupted in float epoch 1 at batch") && err.contains("--resume"), "{err}");
    status("0 of 2 epochs done; float epoch 1 of 1 in progress, ");
    status("; not training now");
    let (ok, err) = signalled_at(&args(&stopped, true), "qat epoch 1/1: ", |_| {}, "-INT");
    assert!(!ok && err.contains("resuming epoch 1 of 2 at batch") && err.contains("interrupted in qat epoch 1 at batch"), "{err}");
    // `status` gives the command that resumes the run (its options, --schedule and --limit among
    // them: a resume with other settings is refused; and the backend it ran on); given the data,
    // that command ends it.
    let out = status("1 of 2 epochs done; qat epoch 1 of 1 in progress");
    let command = out.lines().skip_while(|l| !l.starts_with("resume with")).nth(1).expect("a resume command");
    assert!(command.contains(" --backend flex "), "{command}");
    let command = command.trim().replace("<CIFAR data>", &data.display().to_string());
    let (ok, _, err) = train_host(&command.strip_prefix("train-host ").expect("a train-host command").split_whitespace().collect::<Vec<_>>());
    assert!(ok && err.contains("resuming epoch 2 of 2 at batch"), "{command}: {err}");
    status("progress: finished");
    let model = |run: &std::path::Path| std::fs::read(run.join("model.cifhe")).expect("a compiled model");
    assert!(model(&stopped) == model(&whole), "the resumed run's model must be the uninterrupted run's");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs train-host with `args`; once its stderr shows a line holding `mark`, pauses it (SIGSTOP),
/// calls `meanwhile` with its process id, lets it go on (SIGCONT) and sends it `signal` (an option
/// of `kill`); returns whether it succeeded and its stderr.
#[cfg(unix)]
fn signalled_at(args: &[String], mark: &str, meanwhile: impl FnOnce(u32), signal: &str) -> (bool, String) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_train-host"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    let mut lines = std::io::BufReader::new(child.stderr.take().expect("piped")).lines();
    let mut err = String::new();
    for line in &mut lines {
        let line = line.expect("text");
        err += &line;
        err.push('\n');
        if line.contains(mark) {
            let kill = |signal: &str| assert!(Command::new("kill").args([signal, &child.id().to_string()]).status().expect("kill runs").success());
            // Paused, a short run cannot end while `meanwhile` looks at it.
            kill("-STOP");
            meanwhile(child.id());
            kill("-CONT");
            kill(signal);
            break;
        }
    }
    for line in lines {
        err += &line.expect("text");
        err.push('\n');
    }
    (child.wait().expect("ends").success(), err)
}

#[test]
fn report_writes_the_table_and_both_plots() {
    let dir = std::env::temp_dir().join(format!("cifhe-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = "phase\tepoch\tloss\ttrain_accuracy\teval_accuracy\tseconds\timages_per_second\n\
               head\t1\t2.0\t0.30\t0.35\t1\t1\nfloat\t1\t1.5\t0.50\t0.55\t1\t1\nfloat\t2\t1.2\t0.60\t0.62\t1\t1\nqat\t1\t1.3\t0.58\t0.6125\t1\t1\n";
    std::fs::write(dir.join("log.tsv"), log).unwrap();
    let out = dir.join("new folder").join("r.md");
    let model = train_host::paths::demo_model();
    let data = train_host::paths::default_data();
    let args =
        ["report", "--model", model.to_str().unwrap(), "--data", data.to_str().unwrap(), "--run-dir", dir.to_str().unwrap(), "--out", out.to_str().unwrap()];
    let (ok, stdout, err) = train_host(&args);
    assert!(ok, "{err}");
    let md = std::fs::read_to_string(&out).unwrap();
    assert_eq!(md, stdout, "the report printed is the report written");
    assert!(md.contains("| float (burn), last float epoch, from the run log | 62.00% |"), "{md}");
    assert!(md.contains("FHE simulation, 6-bit exact rounding") && md.contains("PBS per image"), "{md}");
    assert!(md.contains("![accuracy against rounding bits](r.svg)") && md.contains("![accuracy per training epoch](r.training.svg)"), "{md}");
    // The TFHE rows: one per noise seed, then their mean.
    let percent = |l: &str| l.trim_end_matches(" |").rsplit("| ").next().unwrap().trim_end_matches('%').parse::<f64>().unwrap();
    let seeds: Vec<f64> = md.lines().filter(|l| l.contains("TFHE 2_2") && l.contains("noise seed ")).map(percent).collect();
    let mean = md.lines().find(|l| l.contains("TFHE 2_2") && l.contains("mean of the 3 noise seeds")).map(percent);
    assert_eq!(seeds.len(), 3, "{md}");
    assert!((mean.unwrap() - seeds.iter().sum::<f64>() / 3.0).abs() < 0.006, "{md}");
    let curves = std::fs::read_to_string(out.with_extension("training.svg")).unwrap();
    assert!(curves.contains(">all layers<") && curves.contains(">QAT<") && curves.contains("last test accuracy 61.25%"), "{curves}");
    assert!(std::fs::read_to_string(out.with_extension("svg")).unwrap().contains("simulated accuracy by rounding"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The CIFAR-100 path end to end (train, compile, report, classify with its 100 names), so that it
/// works the day the official training file arrives. Until then, the stand-in training file is
/// the first half of the CIFAR-100 test set, and the test set its second half: disjoint images,
/// 50 per class. (The records are rebuilt from the loaded images; their coarse-label byte, which
/// the loader does not read, is 0.)
#[test]
fn cifar100_trains_compiles_reports_and_classifies_on_a_stand_in_training_file() {
    use train_host::cifar::{load, Kind, Split};
    let dir = std::env::temp_dir().join(format!("cifhe-cifar100-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let folder = dir.join("data").join("cifar-100-binary");
    std::fs::create_dir_all(&folder).unwrap();
    let official = load(&train_host::paths::default_data(), Kind::Cifar100, Split::Test).expect("the CIFAR-100 test set");
    let records = |range: std::ops::Range<usize>| -> Vec<u8> {
        range.flat_map(|i| [0, official.labels[i] as u8].into_iter().chain(official.image(i).iter().copied())).collect()
    };
    std::fs::write(folder.join("test.bin"), records(5000..10000)).unwrap();
    std::fs::write(folder.join("fine_label_names.txt"), official.names.join("\n") + "\n").unwrap();
    let data = dir.join("data");
    let (data, run, model) = (data.to_str().unwrap(), dir.join("run"), dir.join("small-cifar100.cifhe"));
    let train = || {
        let args = ["train", "--arch", "small", "--dataset", "cifar100", "--data", data, "--run-dir", run.to_str().unwrap(), "--out", model.to_str().unwrap()];
        train_host(&[&args[..], &["--float-epochs", "3", "--qat-epochs", "1", "--batch-norm", "--eval-images", "2000"]].concat())
    };
    let (ok, _, err) = train();
    assert!(!ok && err.contains("train.bin not found"), "without a training file: {err}");

    std::fs::write(folder.join("train.bin"), records(0..5000)).unwrap();
    let (ok, out, err) = train();
    assert!(ok, "{err}");
    let accuracy = |what: &str| -> f64 {
        let line = out.lines().find(|l| l.trim_start().starts_with(what)).unwrap_or_else(|| panic!("no '{what}' line: {out}"));
        line.trim_end_matches('%').rsplit(' ').next().and_then(|a| a.parse().ok()).expect("an accuracy")
    };
    // Chance is 1%; on 2,000 images it stays below 1.5% nineteen times in twenty.
    let simulated = accuracy("FHE simulation, 6-bit rounding");
    assert!(simulated > 3.0, "short CIFAR-100 training should clearly beat chance (1%): {simulated}%\n{out}");
    let agreement = out.lines().find_map(|l| l.trim().strip_prefix("circuit = QAT argmax, 6-bit rounding: ")).expect("an agreement line");
    let agreement: f64 = agreement.split('%').next().and_then(|a| a.parse().ok()).expect("a percentage");
    assert!(agreement >= 99.0, "the 100-class circuit must give the QAT network's classes: {agreement}%\n{out}");

    let (ok, text, err) = train_host(&["inspect", "--model", model.to_str().unwrap()]);
    assert!(ok && text.contains("100 classes") && text.contains("--dataset cifar100"), "{text}{err}");
    let report = dir.join("report.md");
    let (ok, md, err) = train_host(&["report", "--model", model.to_str().unwrap(), "--data", data, "--out", report.to_str().unwrap()]);
    assert!(ok && md.contains("Accuracy on 5000 CIFAR-100 test images") && md.contains("| linear | 1×1×100 |"), "{md}{err}");
    let (ok, out, err) = train_host(&["classify", "--model", model.to_str().unwrap(), "--data", data, "--images", "20", "--show", "5"]);
    assert!(ok, "{err}");
    let shown: Vec<&str> = out.lines().filter(|l| l.ends_with('✓') || l.ends_with('✗')).collect();
    assert_eq!(shown.len(), 5, "{out}");
    for line in shown {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert!(official.names.iter().any(|n| n == words[1]) && official.names.iter().any(|n| n == words[2]), "CIFAR-100 names expected: {line}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `classify FILE…`: test images saved as pictures three times their size (PNG and BMP) come back
/// as exactly the test images, so they get the classes the test images get; a file that is no
/// picture is refused by name.
#[test]
fn classify_reads_pictures_as_the_test_images_they_were_made_from() {
    let dir = std::env::temp_dir().join(format!("cifhe-pictures-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let test = cifar10_test();
    let files: Vec<String> = (0..4)
        .map(|i| {
            let file = dir.join(format!("test-{i}.{}", if i % 2 == 0 { "png" } else { "bmp" }));
            save_enlarged(&test, i, &file);
            file.to_str().unwrap().to_owned()
        })
        .collect();
    let (ok, out, err) = train_host(&[&["classify"][..], &files.iter().map(String::as_str).collect::<Vec<_>>()].concat());
    assert!(ok, "{err}");
    let from_pictures: Vec<&str> = files
        .iter()
        .map(|f| {
            let line = out.lines().find(|l| l.starts_with(&format!("{f} (96×96): "))).unwrap_or_else(|| panic!("no line for {f}: {out}"));
            line.split(": ").nth(1).and_then(|c| c.split_whitespace().next()).expect("a class")
        })
        .collect();
    let (ok, out, err) = train_host(&["classify", "--images", "4", "--show", "4"]);
    assert!(ok, "{err}");
    let from_test_set: Vec<&str> = out.lines().filter(|l| l.ends_with('✓') || l.ends_with('✗')).map(|l| l.split_whitespace().nth(2).unwrap()).collect();
    assert_eq!(from_pictures, from_test_set);
    // As JSON, with every class: probabilities that sum to one, most probable first.
    let (ok, out, err) = train_host(&["classify", "--json", "--top", "10", &files[0]]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON array");
    let picture = &v[0];
    assert_eq!((&picture["file"], &picture["width"], &picture["height"]), (&json!(files[0]), &json!(96), &json!(96)));
    let p: Vec<f64> = picture["classes"].as_array().unwrap().iter().map(|c| c["probability"].as_f64().unwrap()).collect();
    assert!(p.len() == 10 && (p.iter().sum::<f64>() - 1.0).abs() < 1e-4 && p.windows(2).all(|w| w[0] >= w[1]), "{v}");
    assert_eq!(picture["classes"][0]["name"], json!(from_pictures[0]));

    let junk = dir.join("notes.png");
    std::fs::write(&junk, b"not a picture").unwrap();
    let (ok, _, err) = train_host(&["classify", junk.to_str().unwrap()]);
    assert!(!ok && err.contains("notes.png is not a picture this tool reads"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The CIFAR-10 test set.
fn cifar10_test() -> train_host::cifar::Dataset {
    use train_host::cifar::{load, Kind, Split};
    load(&train_host::paths::default_data(), Kind::Cifar10, Split::Test).expect("the CIFAR-10 test set")
}

/// Saves image `index` of `test` as a picture three times its size (each pixel a 3×3 block), in
/// the format `file`'s extension names: area-averaging brings it back exactly.
fn save_enlarged(test: &train_host::cifar::Dataset, index: usize, file: &std::path::Path) {
    let planes = test.image(index);
    let picture = image::RgbImage::from_fn(96, 96, |x, y| {
        let p = (y / 3 * 32 + x / 3) as usize;
        image::Rgb([planes[p], planes[1024 + p], planes[2048 + p]])
    });
    picture.save(file).unwrap();
}
