//! `train-host fhe`: a model on real TFHE ciphertexts, end to end in one process — key generation,
//! encryption, evaluation with a progress bar per stage, decryption — beside the simulator's
//! answer for the same image under the same noise model.
use cifhe_core::fhe::{Bootstrap, ClientKey, CompressedServerKey, EncryptedImage, Evaluator, ParamSet, Plan};
use cifhe_core::{Model, RoundingMode, RunConfig, Simulator};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::time::Instant;

/// How to run.
pub struct FheConfig {
    /// Parameter set (`None`: the cheapest meeting `p_error`).
    pub params: Option<ParamSet>,
    /// Bits kept before each lookup.
    pub rounding_bits: Option<u8>,
    /// Largest per-lookup error probability allowed when choosing the set and its per-stage
    /// bootstraps.
    pub p_error: f64,
    /// Simulator runs per image under the plan's noise (0: none).
    pub noise_draws: u64,
    /// Show progress bars.
    pub progress: bool,
}

/// An image to classify under TFHE: a test image or a user's picture.
pub struct Input {
    /// What the report calls it: `image 3`, or the picture's file.
    pub name: String,
    /// The model's input image.
    pub image: Vec<u8>,
    /// A test image's index in the test set and true class; `None` for a picture.
    pub test: Option<(usize, usize)>,
}

impl Input {
    /// Test image `index` of `data`.
    pub fn test_image(data: &crate::cifar::Dataset, index: usize) -> Input {
        Input { name: format!("image {index}"), image: data.image(index).to_vec(), test: Some((index, data.labels[index] as usize)) }
    }

    /// The picture at `path`, prepared for `model` as `classify FILE…` prepares it.
    pub fn picture(path: &std::path::Path, model: &Model<'_>) -> Result<Input, String> {
        Ok(Input { name: path.display().to_string(), image: crate::picture::load(path, model)?.planes, test: None })
    }
}

/// One image's result.
#[derive(Debug, Serialize)]
pub struct ImageResult {
    /// The input's name (`image 3`, or a picture's file).
    pub name: String,
    /// Index in the test set (`None` for a picture).
    pub index: Option<usize>,
    /// True class (`None` for a picture).
    pub label: Option<usize>,
    /// Class decrypted from TFHE.
    pub fhe_class: usize,
    /// Class of the simulator, exact rounding and no noise.
    pub simulator_class: usize,
    /// Whether the decrypted accumulators equal the noiseless simulator's.
    pub identical_accumulators: bool,
    /// The simulator's classes under the plan's noise (the errors TFHE's own noise follows),
    /// most frequent first: which answers TFHE can legitimately give for this image.
    pub noisy_simulator_classes: Vec<ClassCount>,
    /// Encryption seconds.
    pub encrypt_seconds: f64,
    /// Server evaluation seconds.
    pub evaluate_seconds: f64,
    /// Decryption seconds.
    pub decrypt_seconds: f64,
    /// Bytes uploaded (encrypted image).
    pub upload_bytes: usize,
    /// Bytes downloaded (encrypted result).
    pub download_bytes: usize,
}

/// How often the noisy simulator gave a class.
#[derive(Debug, Serialize)]
pub struct ClassCount {
    /// The class.
    pub class: usize,
    /// Noise draws that gave it.
    pub draws: u64,
}

/// The classes of `draws` simulator runs of `image` under the noise of `sim`'s configuration
/// (draw `d` reads noise stream `d`), most frequent first.
fn noisy_classes(sim: &Simulator<'_, '_>, image: &[u8], draws: u64, scratch: &mut [u64]) -> Result<Vec<ClassCount>, String> {
    let mut counts = vec![0u64; sim.model().classes()];
    let mut out = vec![0i32; sim.model().classes()];
    for d in 0..draws {
        let (class, _) = sim.classify(image, d, scratch, &mut out).map_err(|e| e.to_string())?;
        counts[class] += 1;
    }
    let mut classes: Vec<ClassCount> = counts.into_iter().enumerate().filter(|&(_, n)| n > 0).map(|(class, draws)| ClassCount { class, draws }).collect();
    classes.sort_by_key(|c| std::cmp::Reverse(c.draws));
    Ok(classes)
}

/// The whole run.
#[derive(Debug, Serialize)]
pub struct FheReport {
    /// Model name.
    pub model: String,
    /// Parameter set.
    pub params: String,
    /// Rounding.
    pub rounding_bits: Option<u8>,
    /// Largest modelled error probability of any lookup (exact-rounding equivalent).
    pub max_p_error: f64,
    /// Bootstraps per image.
    pub bootstraps: u64,
    /// Client key generation seconds.
    pub keygen_seconds: f64,
    /// Compressed server key generation seconds (client side).
    pub server_key_seconds: f64,
    /// Server key expansion seconds (server side).
    pub expand_seconds: f64,
    /// Compressed server key bytes, as sent.
    pub server_key_bytes: usize,
    /// Threads used by the evaluation.
    pub threads: usize,
    /// Per image.
    pub images: Vec<ImageResult>,
}

/// Runs `inputs` through TFHE.
pub fn run(model: &Model<'_>, inputs: &[Input], cfg: &FheConfig) -> Result<FheReport, String> {
    let plan = match cfg.params {
        Some(p) => Plan::for_set(model, p, cfg.rounding_bits, cfg.p_error),
        None => Plan::cheapest(model, cfg.rounding_bits, cfg.p_error),
    }
    .map_err(|e| e.to_string())?;
    let params = plan.params;
    let say = |s: String| {
        if cfg.progress {
            eprintln!("{s}");
        }
    };
    say(format!("parameters {params}, {} bootstraps per image, max p_error {:.2e}", plan.bootstraps(model), plan.noise().max_p_error()));
    let t = Instant::now();
    let client = ClientKey::generate(params);
    let keygen_seconds = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let sent = client.server_key(&plan).map_err(|e| e.to_string())?.to_bytes();
    let server_key_seconds = t.elapsed().as_secs_f64();
    say(format!("keys: client {keygen_seconds:.2} s, server key {server_key_seconds:.2} s, {:.1} MB compressed", sent.len() as f64 / 1e6));
    let t = Instant::now();
    let server = CompressedServerKey::from_bytes(&sent, usize::MAX).map_err(|e| e.to_string())?.expand();
    let expand_seconds = t.elapsed().as_secs_f64();
    let eval = Evaluator::new(&server, model, plan.clone()).map_err(|e| e.to_string())?;
    let exact = RunConfig { rounding_bits: cfg.rounding_bits, mode: RoundingMode::Exact, noise: cifhe_core::NoiseModel::NONE.into(), ..RunConfig::new(model) };
    let sim = Simulator::new(model, exact).map_err(|e| e.to_string())?;
    let noisy = Simulator::new(model, plan.simulation(RunConfig::new(model))).map_err(|e| e.to_string())?;
    let mut scratch = vec![0u64; model.scratch_words()];
    let mut results = Vec::new();
    for (position, input) in inputs.iter().enumerate() {
        let (name, image) = (&input.name, &input.image[..]);
        let t = Instant::now();
        let upload = client.encrypt_image(model, &plan, image).map_err(|e| e.to_string())?.to_bytes();
        let encrypt_seconds = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let received = EncryptedImage::from_bytes(&upload, usize::MAX).map_err(|e| e.to_string())?;
        let bar = stage_bar(cfg.progress, name);
        let out = eval
            .run(&received, &|stage, done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
                bar.set_message(format!("stage {stage}"));
            })
            .map_err(|e| e.to_string())?;
        bar.finish_and_clear();
        let evaluate_seconds = t.elapsed().as_secs_f64();
        let download = out.to_bytes();
        let t = Instant::now();
        let acc = client.decrypt(&plan, &out).map_err(|e| e.to_string())?;
        let decrypt_seconds = t.elapsed().as_secs_f64();
        let mut expect = vec![0i32; model.classes()];
        let (simulator_class, _) = sim.classify(image, position as u64, &mut scratch, &mut expect).map_err(|e| e.to_string())?;
        let r = ImageResult {
            name: name.clone(),
            index: input.test.map(|(i, _)| i),
            label: input.test.map(|(_, l)| l),
            fhe_class: cifhe_core::sim::argmax(model, &acc),
            simulator_class,
            identical_accumulators: acc == expect,
            noisy_simulator_classes: noisy_classes(&noisy, image, cfg.noise_draws, &mut scratch)?,
            encrypt_seconds,
            evaluate_seconds,
            decrypt_seconds,
            upload_bytes: upload.len(),
            download_bytes: download.len(),
        };
        say(format!(
            "{name}: {}TFHE {}, simulator without noise {}{}; encrypted in {encrypt_seconds:.2} s ({:.1} kB up), \
             evaluated in {evaluate_seconds:.1} s, decrypted in {decrypt_seconds:.3} s ({:.1} kB down)",
            r.label.map_or(String::new(), |l| format!("true {}, ", model.class_name(l))),
            model.class_name(r.fhe_class),
            model.class_name(r.simulator_class),
            if r.identical_accumulators { " (identical accumulators)" } else { "" },
            r.upload_bytes as f64 / 1e3,
            r.download_bytes as f64 / 1e3
        ));
        let noisy: Vec<String> = r
            .noisy_simulator_classes
            .iter()
            .map(|c| format!("{} {:.0}%", model.class_name(c.class), 100.0 * c.draws as f64 / cfg.noise_draws as f64))
            .collect();
        if !noisy.is_empty() {
            say(format!("{name}: simulator under the plan's noise, {} draws: {}", cfg.noise_draws, noisy.join(", ")));
        }
        results.push(r);
    }
    Ok(FheReport {
        model: model.file().name.to_string(),
        params: params.to_string(),
        rounding_bits: cfg.rounding_bits,
        max_p_error: plan.noise().max_p_error(),
        bootstraps: plan.bootstraps(model),
        keygen_seconds,
        server_key_seconds,
        expand_seconds,
        server_key_bytes: sent.len(),
        threads: rayon::current_num_threads(),
        images: results,
    })
}

fn stage_bar(show: bool, name: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(1);
    bar.set_style(
        ProgressStyle::with_template(&format!("{name} {{msg}} [{{bar:40}}] {{pos}}/{{len}} bootstraps, ETA {{eta}}"))
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

/// Cost of one parameter set, measured on real ciphertexts.
#[derive(Debug, Serialize)]
pub struct SetCost {
    /// The set.
    pub params: String,
    /// Client key generation plus compressed server key generation (standard key), seconds.
    pub keygen_seconds: f64,
    /// Compressed server key with the standard bootstrapping key, bytes (as sent).
    pub compressed_key_bytes: usize,
    /// The same with the fine bootstrapping key added.
    pub compressed_key_bytes_fine: usize,
    /// Expanded server key (standard), bytes (as held by the server).
    pub expanded_key_bytes: u64,
    /// Seconds per lookup (key switch + standard bootstrap) with all threads busy.
    pub seconds_per_lookup: f64,
    /// Seconds per lookup with the fine bootstrap.
    pub seconds_per_fine_lookup: f64,
}

impl SetCost {
    /// Seconds of the lookups of `plan` on `model`, at these measured rates.
    pub fn lookup_seconds(&self, plan: &Plan, model: &Model<'_>) -> f64 {
        plan.bootstraps_of(model, Bootstrap::Standard) as f64 * self.seconds_per_lookup
            + plan.bootstraps_of(model, Bootstrap::Fine) as f64 * self.seconds_per_fine_lookup
    }
}

/// Measures keygen, key sizes and lookup throughput of `params` on `lookups` bootstraps of each
/// kind, through the evaluator itself (a one-lookup-stage model).
pub fn measure_set(params: ParamSet, lookups: usize) -> Result<SetCost, String> {
    use cifhe_core::builder::ModelBuilder;
    use cifhe_core::model::Shape;
    let input = Shape { h: 1, w: lookups, c: 1 };
    let mut b = ModelBuilder::new("lookup-bench", input, &[core::array::from_fn(|p| (p as i32 / 64 - 2) as i8)]);
    b.conv(&[1], 1, 1, 1, 1, 1, 0).lookup(4, 0, 3, &[vec![-1, 0, 1]], (-2, 1)).linear(&vec![1; lookups], 1, input).output(&[1.0], &[0.0]);
    let bytes = b.to_bytes();
    let model = Model::from_bytes(&bytes).map_err(|e| e.to_string())?;
    let standard = Plan::new(&model, params, None).map_err(|e| e.to_string())?;
    let fine = Plan::with_bootstraps(&model, params, None, |_| Bootstrap::Fine).map_err(|e| e.to_string())?;
    let t = Instant::now();
    let client = ClientKey::generate(params);
    let sent = client.server_key(&standard).map_err(|e| e.to_string())?.to_bytes();
    let keygen_seconds = t.elapsed().as_secs_f64();
    let sent_fine = client.server_key(&fine).map_err(|e| e.to_string())?.to_bytes();
    let server = CompressedServerKey::from_bytes(&sent_fine, usize::MAX).map_err(|e| e.to_string())?.expand();
    let image: Vec<u8> = (0..lookups).map(|i| (i * 37 % 256) as u8).collect();
    let mut seconds = [0.0; 2];
    for (plan, s) in [standard, fine].into_iter().zip(&mut seconds) {
        let enc = client.encrypt_image(&model, &plan, &image).map_err(|e| e.to_string())?;
        let eval = Evaluator::new(&server, &model, plan).map_err(|e| e.to_string())?;
        let t = Instant::now();
        eval.run(&enc, &|_, _, _| {}).map_err(|e| e.to_string())?;
        *s = t.elapsed().as_secs_f64() / lookups as f64;
    }
    Ok(SetCost {
        params: params.to_string(),
        keygen_seconds,
        compressed_key_bytes: sent.len(),
        compressed_key_bytes_fine: sent_fine.len(),
        expanded_key_bytes: params.server_key_bytes(false, &[Bootstrap::Standard]),
        seconds_per_lookup: seconds[0],
        seconds_per_fine_lookup: seconds[1],
    })
}
