//! A training run's folder: `checkpoint.bin` (weights, learned scales, optimizer state, position,
//! log; written atomically after every epoch, and readable by every later version of the tool),
//! `partial.bin` (the same within an epoch, with the epoch's position: written every few minutes
//! and on Ctrl-C or SIGTERM, removed when the epoch ends), `float.bin` (the checkpoint as the float
//! phase ended, for another QAT), `log.tsv` (one line per epoch), `lock` (held by the process
//! training the run, [`lock`]) and, at the end, `model.cifhe`; and
//! what can be done with a run as a whole: check that it may resume with given settings, restart
//! its QAT, take its finished or latest network.
use crate::arch::{Arch, FloatNet, Params};
use crate::net::{self, Net};
use crate::schedule::Schedule;
use crate::train::TrainConfig;
use crate::widths::{signed_era_acts, Widths};
use burn::tensor::Device;
use cifhe_core::rng::Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One line of the log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EpochLog {
    /// `head` (classifier only), `float` or `qat`.
    pub phase: String,
    /// Epoch within the phase, from 1.
    pub epoch: usize,
    /// Mean training loss.
    pub loss: f64,
    /// Training accuracy (augmented images, running model).
    pub train_accuracy: f64,
    /// Accuracy on the held-out evaluation images.
    pub eval_accuracy: f64,
    /// Wall-clock seconds of the epoch.
    pub seconds: f64,
    /// Training images per second.
    pub images_per_second: f64,
    /// What the epoch ran on ([`TrainConfig::ran_on`]: `libtorch bf16`, `flex`…; `flex, then
    /// libtorch` for an epoch interrupted and resumed on other settings), since the speed
    /// settings are free to change at each resume. Empty in runs logged before 2026-12-02. Stored
    /// after the checkpoint's other additions (`LaterSettings5` in this module).
    #[serde(skip)]
    pub ran_on: String,
}

/// What an epoch's label says it ran on last: the settings after its last `, then` (the whole
/// label for an epoch never resumed on other settings).
pub(crate) fn last_ran_on(label: &str) -> &str {
    label.rsplit(", then ").next().unwrap_or(label)
}

/// The label of an epoch resumed on `now` after running on `before` (empty: an epoch started
/// afresh, or one begun by a version that did not record it).
pub(crate) fn resumed_on(before: &str, now: String) -> String {
    if before.is_empty() {
        now
    } else if last_ran_on(before) == now {
        before.to_string()
    } else {
        format!("{before}, then {now}")
    }
}

/// What a run's epochs ran on, in words: `epochs 1–20 on libtorch bf16, 21–23 on libtorch`
/// (consecutive epochs alike counted together; epochs logged before it was recorded: `not
/// recorded`).
pub fn ran_on_words(log: &[EpochLog]) -> String {
    let mut spans: Vec<(usize, usize, &str)> = Vec::new();
    for (k, e) in log.iter().enumerate() {
        match spans.last_mut() {
            Some((_, last, on)) if *on == e.ran_on => *last = k + 1,
            _ => spans.push((k + 1, k + 1, &e.ran_on)),
        }
    }
    let words: Vec<String> = spans
        .iter()
        .enumerate()
        .map(|(i, &(first, last, on))| {
            let epochs = match (i, first == last) {
                (0, true) => format!("epoch {first}"),
                (0, false) => format!("epochs {first}–{last}"),
                (_, true) => format!("{first}"),
                (_, false) => format!("{first}–{last}"),
            };
            format!("{epochs} {}", if on.is_empty() { "not recorded".to_string() } else { format!("on {on}") })
        })
        .collect();
    words.join(", ")
}

/// What `checkpoint.bin` holds first (the settings added later follow it: [`LaterSettings`]).
#[derive(Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    pub(crate) config: TrainConfig,
    /// Epochs completed (float epochs, then QAT epochs).
    pub(crate) done: usize,
    pub(crate) params: Vec<Option<(Vec<f32>, Vec<f32>)>>,
    pub(crate) scales: Vec<f32>,
    /// Batch normalisations, while training in float with them.
    pub(crate) norms: Vec<net::NormState>,
    pub(crate) log: Vec<EpochLog>,
    /// What resuming needs beyond the weights. Written after the later settings.
    #[serde(skip)]
    pub(crate) trainer: TrainerState,
}

/// Settings added to [`TrainConfig`] after the first checkpoints were written. Postcard is not
/// self-describing, so they follow the checkpoint in the file: older files end before them and
/// mean the defaults, which were the only behaviour then. (A later addition appends the same way.)
#[derive(Serialize, Deserialize, Default)]
struct LaterSettings {
    per_channel_weights: bool,
    head_epochs: usize,
}

/// The settings added after [`LaterSettings`], appended after it. Its presence also marks
/// unsigned codes at never-negative sites: older checkpoints spent a sign bit on every
/// activation code, and [`load`] converts their widths to what they meant.
#[derive(Serialize, Deserialize, Default)]
struct LaterSettings2 {
    /// The full lists of bit widths, of which the checkpoint proper holds only the first entries.
    weight_bits: Vec<u32>,
    act_bits: Vec<u32>,
    rotation_degrees: f32,
}

/// The settings added after [`LaterSettings2`], appended after it.
#[derive(Serialize, Deserialize, Default)]
struct LaterSettings3 {
    limit: Option<usize>,
}

/// The settings added after [`LaterSettings3`]: appended after the [`TrainerState`], which
/// came between them.
#[derive(Serialize, Deserialize, Default)]
struct LaterSettings4 {
    schedule: Schedule,
}

/// The setting added after [`LaterSettings4`], appended after it: what each epoch of the log ran
/// on ([`EpochLog::ran_on`]), and in a partial file, then what the epoch in progress has run on
/// so far.
#[derive(Serialize, Deserialize, Default)]
struct LaterSettings5 {
    ran_on: Vec<String>,
}

/// The setting added after [`LaterSettings5`], appended after it.
#[derive(Serialize, Deserialize, Default)]
struct LaterSettings6 {
    remeasure_every: usize,
}

/// The setting added after [`LaterSettings6`], appended after it, and in a partial file the
/// centres the epoch in progress rounds about ([`TrainerState::centres`]).
#[derive(Serialize, Deserialize, Default)]
struct LaterSettings7 {
    centre_accumulators: bool,
    centres: Vec<i32>,
}

/// The setting added after [`LaterSettings7`], appended after it.
#[derive(Serialize, Deserialize, Default)]
struct LaterSettings8 {
    qat_noise: f32,
}

/// What a resume needs beyond the weights to go on exactly as the uninterrupted run would have
/// (the same weights to the bit, on a deterministic backend). Written after [`LaterSettings3`]
/// since 2026-12-01; older files resume with a fresh optimizer and re-measured rounding widths,
/// as every resume did then.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct TrainerState {
    /// The phase the optimizer state belongs to (`head`, `float`, `qat`; empty: none). Each phase
    /// starts with a fresh optimizer, so a resume takes this one only to continue its phase.
    pub(crate) phase: String,
    /// Adam's moments and step counts: burn's optimizer record as burnpack bytes, keyed by the
    /// parameters' positions ([`Net::numbered`]).
    pub(crate) optimizer: Vec<u8>,
    /// The natural logs of the lookup sites' scales as learned (the checkpoint's `scales` are
    /// their exponentials).
    pub(crate) log_scales: Vec<f32>,
    /// In the partial file of a QAT epoch with rounding: the accumulator widths the epoch rounds
    /// to at its position (measured at its start, or last re-measured: `remeasure_every`; empty
    /// otherwise).
    pub(crate) acc_bits: Vec<u32>,
    /// The centres that go with `acc_bits` (empty: 0). Stored in [`LaterSettings7`].
    #[serde(skip)]
    pub(crate) centres: Vec<i32>,
    /// In the partial file of an epoch: what it has run on so far. Stored in [`LaterSettings5`]
    /// (this structure's place in the file is followed by [`LaterSettings4`]).
    #[serde(skip)]
    pub(crate) ran_on: String,
}

/// The result of a finished run.
#[derive(Debug)]
pub struct Trained {
    /// The float network (weights after QAT).
    pub net: FloatNet,
    /// Learned scales of the lookup sites.
    pub scales: Vec<f32>,
    /// The per-epoch log.
    pub log: Vec<EpochLog>,
    /// Total training seconds (all sessions of the run).
    pub seconds: f64,
}

pub(crate) fn checkpoint_path(run: &Path) -> PathBuf {
    run.join("checkpoint.bin")
}

pub(crate) fn save(run: &Path, ck: &Checkpoint) -> Result<(), String> {
    write_atomically(&checkpoint_path(run), checkpoint_bytes(ck)?)
}

/// Writes `bytes` to `path` (in the run folder) through a temporary file beside it, so that an
/// interruption leaves the previous file whole.
fn write_atomically(path: &Path, bytes: Vec<u8>) -> Result<(), String> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("saving {}: {e}", path.display()))
}

/// The checkpoint as its file holds it: the checkpoint proper, then the later settings, then the
/// trainer state, then the settings added after it ([`LaterSettings4`] to [`LaterSettings8`]).
fn checkpoint_bytes(ck: &Checkpoint) -> Result<Vec<u8>, String> {
    let c = &ck.config;
    let later = LaterSettings { per_channel_weights: c.per_channel_weights, head_epochs: c.head_epochs };
    let later2 =
        LaterSettings2 { weight_bits: c.weight_bits.as_slice().to_vec(), act_bits: c.act_bits.as_slice().to_vec(), rotation_degrees: c.rotation_degrees };
    let mut bytes = postcard::to_stdvec(ck).map_err(|e| e.to_string())?;
    bytes.extend(postcard::to_stdvec(&later).map_err(|e| e.to_string())?);
    bytes.extend(postcard::to_stdvec(&later2).map_err(|e| e.to_string())?);
    bytes.extend(postcard::to_stdvec(&LaterSettings3 { limit: c.limit }).map_err(|e| e.to_string())?);
    bytes.extend(postcard::to_stdvec(&ck.trainer).map_err(|e| e.to_string())?);
    bytes.extend(postcard::to_stdvec(&LaterSettings4 { schedule: c.schedule }).map_err(|e| e.to_string())?);
    let in_progress = (!ck.trainer.ran_on.is_empty()).then(|| ck.trainer.ran_on.clone());
    let ran_on = ck.log.iter().map(|e| e.ran_on.clone()).chain(in_progress).collect();
    bytes.extend(postcard::to_stdvec(&LaterSettings5 { ran_on }).map_err(|e| e.to_string())?);
    bytes.extend(postcard::to_stdvec(&LaterSettings6 { remeasure_every: c.remeasure_every }).map_err(|e| e.to_string())?);
    let later7 = LaterSettings7 { centre_accumulators: c.centre_accumulators, centres: ck.trainer.centres.clone() };
    bytes.extend(postcard::to_stdvec(&later7).map_err(|e| e.to_string())?);
    bytes.extend(postcard::to_stdvec(&LaterSettings8 { qat_noise: c.qat_noise }).map_err(|e| e.to_string())?);
    Ok(bytes)
}

pub(crate) fn load(run: &Path) -> Result<Option<Checkpoint>, String> {
    let path = checkpoint_path(run);
    if path.exists() {
        read_checkpoint(&path).map(Some)
    } else {
        Ok(None)
    }
}

/// The checkpoint in the file `path`.
pub(crate) fn read_checkpoint(path: &Path) -> Result<Checkpoint, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    parse_checkpoint(&bytes, path)
}

/// The checkpoint in `bytes`, read from `path`.
fn parse_checkpoint(bytes: &[u8], path: &Path) -> Result<Checkpoint, String> {
    let invalid = |e: postcard::Error| format!("{} is not a cifhe checkpoint: {e}", path.display());
    let (mut ck, rest) = postcard::take_from_bytes::<Checkpoint>(bytes).map_err(invalid)?;
    // Each later addition follows the one before; a file ends where its version stopped, and
    // what it lacks takes the defaults.
    fn then<'a, T: Default + Deserialize<'a>>(rest: &'a [u8]) -> Result<(T, &'a [u8]), postcard::Error> {
        if rest.is_empty() {
            Ok((T::default(), rest))
        } else {
            postcard::take_from_bytes(rest)
        }
    }
    let (later, rest) = then::<LaterSettings>(rest).map_err(invalid)?;
    // Files that end before the second additions predate unsigned codes.
    let signed_era = rest.is_empty();
    let (later2, rest) = then::<LaterSettings2>(rest).map_err(invalid)?;
    let (later3, rest) = then::<LaterSettings3>(rest).map_err(invalid)?;
    let (trainer, rest) = then::<TrainerState>(rest).map_err(invalid)?;
    let (later4, rest) = then::<LaterSettings4>(rest).map_err(invalid)?;
    let (later5, rest) = then::<LaterSettings5>(rest).map_err(invalid)?;
    let (later6, rest) = then::<LaterSettings6>(rest).map_err(invalid)?;
    let (later7, rest) = then::<LaterSettings7>(rest).map_err(invalid)?;
    let (later8, _) = then::<LaterSettings8>(rest).map_err(invalid)?;
    ck.trainer = TrainerState { centres: later7.centres, ..trainer };
    let mut ran_on = later5.ran_on.into_iter();
    for e in &mut ck.log {
        e.ran_on = ran_on.next().unwrap_or_default();
    }
    ck.trainer.ran_on = ran_on.next().unwrap_or_default();
    let c = &mut ck.config;
    c.per_channel_weights = later.per_channel_weights;
    c.head_epochs = later.head_epochs;
    c.rotation_degrees = later2.rotation_degrees;
    c.limit = later3.limit;
    c.schedule = later4.schedule;
    c.remeasure_every = later6.remeasure_every;
    c.centre_accumulators = later7.centre_accumulators;
    c.qat_noise = later8.qat_noise;
    // Without the lists, the widths read in place stand (uniform).
    for (widths, list) in [(&mut c.weight_bits, later2.weight_bits), (&mut c.act_bits, later2.act_bits)] {
        if !list.is_empty() {
            *widths = Widths::from_list(list);
        }
    }
    if signed_era {
        let arch = Arch::by_name(&c.arch, c.classes, c.width)?;
        c.act_bits = signed_era_acts(&arch, c.act_bits.at(0));
    }
    Ok(ck)
}

/// Where an interrupted epoch stood: batches done, the running sums of its log line, and the
/// augmentation stream's state (the batch order is the epoch's seed's, drawn again).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct EpochPosition {
    pub(crate) batches: usize,
    pub(crate) loss_sum: f64,
    pub(crate) correct: usize,
    pub(crate) seen: usize,
    pub(crate) seconds: f64,
    pub(crate) rng: Rng,
}

fn partial_path(run: &Path) -> PathBuf {
    run.join("partial.bin")
}

/// Saves the network in the middle of an epoch: `ck` as after the epochs done, with the weights as
/// they are, and where the epoch stands.
pub(crate) fn save_partial(run: &Path, position: &EpochPosition, ck: &Checkpoint) -> Result<(), String> {
    let mut bytes = postcard::to_stdvec(position).map_err(|e| e.to_string())?;
    bytes.extend(checkpoint_bytes(ck)?);
    write_atomically(&partial_path(run), bytes)
}

/// The newest state saved of the run in `run`: its interrupted epoch with the epoch's position, if
/// it has one newer than its checkpoint, else its checkpoint; `None` if the folder holds neither.
/// (A partial file left from an epoch that did end, by an interruption between the two writes, is
/// older than the checkpoint and ignored.)
pub(crate) fn newest(run: &Path) -> Result<Option<(Checkpoint, Option<EpochPosition>)>, String> {
    let ck = load(run)?;
    let path = partial_path(run);
    if !path.exists() {
        return Ok(ck.map(|ck| (ck, None)));
    }
    let bytes = std::fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let (position, rest) =
        postcard::take_from_bytes::<EpochPosition>(&bytes).map_err(|e| format!("{} is not a cifhe partial checkpoint: {e}", path.display()))?;
    let partial = parse_checkpoint(rest, &path)?;
    Ok(match ck {
        Some(ck) if ck.done > partial.done => Some((ck, None)),
        _ => Some((partial, Some(position))),
    })
}

/// When the run in `run` was last saved (its checkpoint or its partial epoch, the newer).
pub(crate) fn last_saved(run: &Path) -> Option<std::time::SystemTime> {
    [checkpoint_path(run), partial_path(run)].iter().filter_map(|p| p.metadata().ok()?.modified().ok()).max()
}

/// Removes the partial file once its epoch has ended.
pub(crate) fn remove_partial(run: &Path) -> Result<(), String> {
    let path = partial_path(run);
    if path.exists() {
        std::fs::remove_file(&path).map_err(|e| format!("removing {}: {e}", path.display()))?;
    }
    Ok(())
}

/// The lock of a run folder, held while a `train` process works on it: two processes training
/// one run would overwrite each other's checkpoints. An advisory lock on `lock` (the file holds
/// the process id), which the operating system drops when the process ends, however it ends.
pub struct RunLock {
    _file: std::fs::File,
}

fn lock_path(run: &Path) -> PathBuf {
    run.join("lock")
}

/// Takes the lock of `run` (creating the folder), or says which process holds it.
pub fn lock(run: &Path) -> Result<RunLock, String> {
    use std::io::Write;
    std::fs::create_dir_all(run).map_err(|e| format!("creating {}: {e}", run.display()))?;
    let path = lock_path(run);
    let mut file =
        std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(format!(
                "another process (pid {}) is training the run in {}: stop it (Ctrl-C, or kill, which saves the run) before resuming it",
                pid_in(&path),
                run.display()
            ));
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(format!("locking {}: {e}", path.display())),
    }
    file.set_len(0).and_then(|()| write!(file, "{}", std::process::id())).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(RunLock { _file: file })
}

/// The process id of the `train` process working on `run` now, if any.
pub fn trainer(run: &Path) -> Option<String> {
    let path = lock_path(run);
    let file = std::fs::File::open(&path).ok()?;
    match file.try_lock_shared() {
        Err(std::fs::TryLockError::WouldBlock) => Some(pid_in(&path)),
        _ => None,
    }
}

/// The process id the lock file `path` holds (empty if unreadable).
fn pid_in(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default().trim().to_string()
}

/// The copy of the checkpoint made when the float phase ended.
fn float_checkpoint_path(run: &Path) -> PathBuf {
    run.join("float.bin")
}

/// Keeps the checkpoint just saved at the end of the float phase as `float.bin`, so that the
/// float weights stay available for another QAT ([`restart_qat`]).
pub(crate) fn keep_float_weights(run: &Path) -> Result<(), String> {
    let float = float_checkpoint_path(run);
    std::fs::copy(checkpoint_path(run), &float).map(drop).map_err(|e| format!("writing {}: {e}", float.display()))
}

/// Sets the run in `run` back to the end of its float phase, so that resuming as `cfg` trains QAT
/// again (with other QAT settings, say). Nothing is lost: the previous attempt's checkpoint, log
/// and model (and an interrupted epoch's partial file) are kept as `checkpoint.qat-attempt-K.bin`,
/// `log.qat-attempt-K.tsv`, `model.qat-attempt-K.cifhe` (and `partial.qat-attempt-K.bin`). Returns K.
pub fn restart_qat(run: &Path, cfg: &TrainConfig) -> Result<usize, String> {
    let float = float_checkpoint_path(run);
    if !float.exists() {
        return Err(format!(
            "{} has no float.bin (float weights are kept from the end of the float phase on, since 2026-11-30): QAT cannot restart",
            run.display()
        ));
    }
    let ck = read_checkpoint(&float)?;
    if !resumable(&ck.config, cfg, ck.done) {
        return Err(format!("{} was trained with other float settings ({:?}): QAT cannot restart with these", float.display(), ck.config));
    }
    let k = (1..).find(|k| !run.join(format!("log.qat-attempt-{k}.tsv")).exists()).expect("a free attempt number");
    for (name, ext) in [("checkpoint", "bin"), ("partial", "bin"), ("log", "tsv"), ("model", "cifhe")] {
        let (from, to) = (run.join(format!("{name}.{ext}")), run.join(format!("{name}.qat-attempt-{k}.{ext}")));
        if from.exists() {
            std::fs::rename(&from, &to).map_err(|e| format!("keeping {} as {}: {e}", from.display(), to.display()))?;
        }
    }
    std::fs::copy(&float, checkpoint_path(run)).map_err(|e| format!("restoring {}: {e}", float.display()))?;
    for e in &ck.log {
        append_log(run, e)?;
    }
    Ok(k)
}

/// The checkpoint of the run in `run`, which must exist.
fn load_run(run: &Path) -> Result<Checkpoint, String> {
    load(run)?.ok_or_else(|| no_run(run))
}

fn no_run(run: &Path) -> String {
    format!("{} holds no training run (no checkpoint.bin)", run.display())
}

/// The finished run in `run` (every float and QAT epoch done), as `train` returned it, and its
/// settings: what `compile` recompiles without training again.
pub fn finished(run: &Path) -> Result<(TrainConfig, Trained), String> {
    let ck = load_run(run)?;
    let cfg = ck.config;
    let total = cfg.total_epochs();
    if ck.done < total || ck.scales.is_empty() {
        return Err(format!(
            "the run in {} is not finished ({} of {total} epochs{}): resume it with `train --resume` and the same settings",
            run.display(),
            ck.done,
            if cfg.qat_epochs == 0 { ", and no QAT epoch planned" } else { "" }
        ));
    }
    let arch = Arch::by_name(&cfg.arch, cfg.classes, cfg.width)?;
    let net = float_net(arch, ck.params);
    let seconds = ck.log.iter().map(|e| e.seconds).sum();
    Ok((cfg, Trained { net, scales: ck.scales, log: ck.log, seconds }))
}

/// The network of the run in `run` as its last checkpoint holds it, batch normalisation folded
/// into the convolutions, with the run's settings and log: what post-training quantization
/// compiles, finished run or not.
pub fn latest(run: &Path, device: &Device) -> Result<(TrainConfig, FloatNet, Vec<EpochLog>), String> {
    // An interrupted epoch's weights are the latest.
    let (ck, _) = newest(run)?.ok_or_else(|| no_run(run))?;
    let arch = Arch::by_name(&ck.config.arch, ck.config.classes, ck.config.width)?;
    let float = float_net(arch.clone(), ck.params);
    let net = if ck.norms.is_empty() {
        float
    } else {
        Net::from_float(&float, device).with_norms(Some(&ck.norms), device).fold_norms(&arch, device).to_float(&arch, (3, 32, 32))
    };
    Ok((ck.config, net, ck.log))
}

/// The checkpointed parameters as a float network of `arch`.
pub(crate) fn float_net(arch: Arch, params: Vec<Option<(Vec<f32>, Vec<f32>)>>) -> FloatNet {
    let params = params.into_iter().map(|p| p.map(|(weight, bias)| Params { weight, bias })).collect();
    FloatNet { arch, input: (3, 32, 32), params }
}

/// Whether a checkpoint made with `old` after `done` epochs can continue as `new`: the same
/// settings, except that the QAT settings may change while no QAT epoch has run (so one float run
/// can be fine-tuned several ways).
pub(crate) fn resumable(old: &TrainConfig, new: &TrainConfig, done: usize) -> bool {
    let old = &TrainConfig { bf16: new.bf16, backend: new.backend, ..old.clone() };
    let float_part = |c: &TrainConfig| TrainConfig {
        qat_epochs: 0,
        qat_lr: 0.0,
        qat_rounding_bits: None,
        remeasure_every: 0,
        centre_accumulators: false,
        qat_noise: 0.0,
        weight_bits: Widths::uniform(0),
        act_bits: Widths::uniform(0),
        per_channel_weights: false,
        ..c.clone()
    };
    old == new || (done <= old.float_epochs && float_part(old) == float_part(new))
}

/// The columns of `log.tsv`. Logs written before `ran_on` was recorded lack it; [`append_log`]
/// adds it to them, empty in their rows.
const LOG_HEADER: &str = "phase\tepoch\tloss\ttrain_accuracy\teval_accuracy\tseconds\timages_per_second\tran_on";

/// Adds the epoch `e` to the run's `log.tsv`.
pub(crate) fn append_log(run: &Path, e: &EpochLog) -> Result<(), String> {
    let path = run.join("log.tsv");
    let io = |err: std::io::Error| format!("{}: {err}", path.display());
    let mut text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => format!("{LOG_HEADER}\n"),
        Err(err) => return Err(io(err)),
    };
    if !text.starts_with(LOG_HEADER) {
        // A log from before `ran_on`: the column added, empty in its rows.
        let rows = text.lines().skip(1).map(|l| format!("{l}\t\n"));
        text = std::iter::once(format!("{LOG_HEADER}\n")).chain(rows).collect();
    }
    text += &format!(
        "{}\t{}\t{:.5}\t{:.4}\t{:.4}\t{:.1}\t{:.2}\t{}\n",
        e.phase, e.epoch, e.loss, e.train_accuracy, e.eval_accuracy, e.seconds, e.images_per_second, e.ran_on
    );
    write_atomically(&path, text.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cifar::Kind;

    fn config() -> TrainConfig {
        TrainConfig { float_epochs: 4, qat_epochs: 0, qat_rounding_bits: None, ..TrainConfig::recipe(Kind::Cifar10) }
    }

    #[test]
    fn only_qat_settings_may_change_and_only_before_qat() {
        let old = config();
        let qat = TrainConfig {
            qat_epochs: 2,
            qat_lr: 1e-4,
            qat_rounding_bits: Some(5),
            weight_bits: Widths::uniform(4),
            act_bits: "8,6,6,6,6,6,6".parse().unwrap(),
            per_channel_weights: true,
            remeasure_every: 50,
            centre_accumulators: true,
            qat_noise: 0.15,
            ..old.clone()
        };
        assert!(resumable(&old, &old, 4));
        assert!(resumable(&old, &qat, 4), "a finished float run takes new QAT settings");
        assert!(!resumable(&qat, &old, 5), "not once QAT has started");
        assert!(!resumable(&old, &TrainConfig { lr: 1e-3, ..qat.clone() }, 2), "float settings never change");
        assert!(!resumable(&old, &TrainConfig { seed: 1, ..old.clone() }, 4));
        assert!(!resumable(&old, &TrainConfig { schedule: Schedule::OneCycle, ..qat.clone() }, 4), "nor the schedule");
        assert!(!resumable(&old, &TrainConfig { limit: Some(600), ..qat.clone() }, 4), "nor the training images");
        assert!(resumable(&qat, &TrainConfig { bf16: true, ..qat.clone() }, 5), "a speed setting, free to change");
        assert!(resumable(&qat, &TrainConfig { backend: crate::backend::Backend::Libtorch, ..qat.clone() }, 5), "another");
    }

    fn epoch(epoch: usize, ran_on: &str) -> EpochLog {
        let phase = if epoch < 3 { "float" } else { "qat" };
        EpochLog {
            phase: phase.into(),
            epoch,
            loss: 1.5,
            train_accuracy: 0.5,
            eval_accuracy: 0.25,
            seconds: 60.0,
            images_per_second: 100.0,
            ran_on: ran_on.into(),
        }
    }

    #[test]
    fn the_log_says_what_each_epoch_ran_on() {
        let f32_epoch = resumed_on("", "flex".into());
        assert_eq!(f32_epoch, "flex");
        assert_eq!(resumed_on(&f32_epoch, "flex".into()), "flex", "resumed on the same settings");
        let moved = resumed_on(&f32_epoch, "libtorch bf16".into());
        assert_eq!(moved, "flex, then libtorch bf16");
        assert_eq!(resumed_on(&moved, "libtorch bf16".into()), moved);
        assert_eq!(resumed_on(&moved, "flex".into()), "flex, then libtorch bf16, then flex");
        let log = [epoch(1, ""), epoch(2, "libtorch bf16"), epoch(3, "libtorch"), epoch(4, "libtorch"), epoch(5, &moved)];
        assert_eq!(ran_on_words(&log), "epoch 1 not recorded, 2 on libtorch bf16, 3–4 on libtorch, 5 on flex, then libtorch bf16");
        assert_eq!(ran_on_words(&log[2..4]), "epochs 1–2 on libtorch");
    }

    #[test]
    fn a_log_from_before_ran_on_gains_the_column() {
        let run = std::env::temp_dir().join(format!("cifhe-log-{}", std::process::id()));
        std::fs::create_dir_all(&run).unwrap();
        let old = "phase\tepoch\tloss\ttrain_accuracy\teval_accuracy\tseconds\timages_per_second\n\
                   float\t1\t2.00000\t0.2500\t0.3000\t60.0\t100.00\n";
        std::fs::write(run.join("log.tsv"), old).unwrap();
        append_log(&run, &epoch(2, "libtorch bf16")).unwrap();
        append_log(&run, &epoch(3, "libtorch")).unwrap();
        let rows: Vec<Vec<String>> = std::fs::read_to_string(run.join("log.tsv")).unwrap().lines().map(|l| l.split('\t').map(String::from).collect()).collect();
        assert_eq!(rows.iter().map(|r| r.len()).collect::<Vec<_>>(), [8, 8, 8, 8], "{rows:?}");
        assert_eq!(rows.iter().map(|r| r[7].as_str()).collect::<Vec<_>>(), ["ran_on", "", "libtorch bf16", "libtorch"]);
        assert_eq!(rows[1][4], "0.3000", "the old rows are kept");
        std::fs::remove_dir_all(&run).unwrap();
        append_log(&run, &epoch(1, "flex")).unwrap_err();
    }

    #[test]
    fn checkpoints_keep_later_settings_and_older_files_still_load() {
        let run = std::env::temp_dir().join(format!("cifhe-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&run).unwrap();
        let ck = |config| Checkpoint { config, done: 1, params: vec![None], scales: vec![0.5], norms: vec![], log: vec![], trainer: TrainerState::default() };
        let per_layer = TrainConfig { weight_bits: "8,5,5,8".parse().unwrap(), act_bits: "8,6,6,6,6,6,6".parse().unwrap(), ..config() };
        let per_channel = TrainConfig {
            per_channel_weights: true,
            head_epochs: 2,
            rotation_degrees: 7.5,
            limit: Some(600),
            schedule: Schedule::OneCycle,
            remeasure_every: 50,
            centre_accumulators: true,
            qat_noise: 0.15,
            ..per_layer
        };
        let trainer = TrainerState {
            phase: "qat".into(),
            optimizer: vec![1, 2, 3],
            log_scales: vec![-0.5],
            acc_bits: vec![12, 14],
            centres: vec![0, 64],
            ran_on: "flex, then libtorch".into(),
        };
        let log = vec![epoch(1, "libtorch bf16"), epoch(2, "flex")];
        let partial = Checkpoint { trainer: trainer.clone(), log: log.clone(), ..ck(per_channel.clone()) };
        save(&run, &partial).unwrap();
        let saved = load(&run).unwrap().unwrap();
        assert_eq!((saved.config, saved.trainer, saved.log), (per_channel.clone(), trainer.clone(), log.clone()));
        // One written before `--qat-noise`: it ends after the centres, and trained without noise.
        let whole = checkpoint_bytes(&partial).unwrap();
        let whole = &whole[..whole.len() - postcard::to_stdvec(&LaterSettings8 { qat_noise: 0.15 }).unwrap().len()];
        std::fs::write(checkpoint_path(&run), whole).unwrap();
        let per_channel = TrainConfig { qat_noise: 0.0, ..per_channel };
        let noiseless = load(&run).unwrap().unwrap();
        assert_eq!((&noiseless.config, &noiseless.trainer), (&per_channel, &trainer));
        // One written before `--centre-accumulators`: it ends after `--remeasure-every`, and
        // rounded about zero.
        let whole = &whole[..whole.len() - postcard::to_stdvec(&LaterSettings7 { centre_accumulators: true, centres: vec![0, 64] }).unwrap().len()];
        std::fs::write(checkpoint_path(&run), whole).unwrap();
        let per_channel = TrainConfig { centre_accumulators: false, ..per_channel };
        let trainer = TrainerState { centres: vec![], ..trainer };
        let uncentred = load(&run).unwrap().unwrap();
        assert_eq!((&uncentred.config, &uncentred.trainer), (&per_channel, &trainer));
        // One written before `--remeasure-every`: it ends after what the epochs ran on, and
        // measured the widths once per epoch.
        let whole = &whole[..whole.len() - postcard::to_stdvec(&LaterSettings6 { remeasure_every: 50 }).unwrap().len()];
        std::fs::write(checkpoint_path(&run), whole).unwrap();
        let per_channel = TrainConfig { remeasure_every: 0, ..per_channel };
        assert_eq!(load(&run).unwrap().unwrap().config, per_channel);
        // One written before the log recorded what the epochs ran on: it ends after the schedule.
        let ran_on = vec!["libtorch bf16".into(), "flex".into(), "flex, then libtorch".into()];
        let whole = &whole[..whole.len() - postcard::to_stdvec(&LaterSettings5 { ran_on }).unwrap().len()];
        std::fs::write(checkpoint_path(&run), whole).unwrap();
        let unrecorded = load(&run).unwrap().unwrap();
        let trainer = TrainerState { ran_on: String::new(), ..trainer };
        assert_eq!((&unrecorded.config, &unrecorded.trainer), (&per_channel, &trainer));
        assert_eq!(unrecorded.log.iter().map(|e| e.ran_on.as_str()).collect::<Vec<_>>(), ["", ""]);
        assert_eq!(ran_on_words(&unrecorded.log), "epochs 1–2 not recorded");
        // One written before `--schedule`: it ends after the trainer state, and ran the cosine.
        let schedule_len = postcard::to_stdvec(&LaterSettings4 { schedule: Schedule::OneCycle }).unwrap().len();
        std::fs::write(checkpoint_path(&run), &whole[..whole.len() - schedule_len]).unwrap();
        let before_schedules = load(&run).unwrap().unwrap();
        assert_eq!((before_schedules.config, before_schedules.trainer), (TrainConfig { schedule: Schedule::Cosine, ..per_channel.clone() }, trainer));
        // A checkpoint as the first runs wrote it: no later settings after it; its widths are
        // the first entries, uniform, and its activation codes all spent a sign bit: 8 bits
        // then meant 7 unsigned bits after each ReLU.
        let first = postcard::to_stdvec(&ck(per_channel.clone())).unwrap();
        std::fs::write(checkpoint_path(&run), &first).unwrap();
        let old = load(&run).unwrap().unwrap();
        assert_eq!(old.trainer, TrainerState::default(), "resumed with a fresh optimizer");
        let uniform_8 = TrainConfig { weight_bits: Widths::uniform(8), act_bits: "8,7,7,7,7,7,7".parse().unwrap(), ..config() };
        assert_eq!((old.config, old.done, old.scales), (uniform_8.clone(), 1, vec![0.5]));
        // One written before per-layer widths: the settings after it stop early.
        let later = LaterSettings { per_channel_weights: true, head_epochs: 2 };
        std::fs::write(checkpoint_path(&run), [first, postcard::to_stdvec(&later).unwrap()].concat()).unwrap();
        let before = TrainConfig { per_channel_weights: true, head_epochs: 2, ..uniform_8 };
        assert_eq!(load(&run).unwrap().unwrap().config, before);
        std::fs::write(checkpoint_path(&run), b"not a checkpoint").unwrap();
        assert!(load(&run).err().is_some_and(|e| e.contains("is not a cifhe checkpoint")));
        std::fs::remove_dir_all(&run).unwrap();
    }
}
