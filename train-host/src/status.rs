//! Where a training run stands (`train-host status`): its network and dataset, the epochs done and
//! the one in progress, the hours spent and left, its last epochs' figures, and the command that
//! goes on with it. A VGG11 run spans many sessions; this says where it was left and how to resume
//! it without reading the run folder's files or remembering its options.
use crate::cifar::Kind;
use crate::run_folder::{last_saved, newest, ran_on_words, trainer, EpochLog};
use crate::train::PARTIAL_EVERY;
use std::fmt::Write;
use std::path::Path;

/// Why `run` has nothing to report: no such folder, or a run that has not saved anything yet
/// (asked in the first minutes of a run, a bare "no run" would suggest it failed).
fn nothing_saved(run: &Path) -> String {
    let first_save = format!("after {} minutes of training, at the end of its first epoch, or when stopped", PARTIAL_EVERY.as_secs() / 60);
    if let Some(pid) = trainer(run) {
        format!("{}: a training run (process {pid}) started there has saved nothing yet: it saves {first_save}", run.display())
    } else if run.is_dir() {
        format!("{} holds no saved training state yet (no checkpoint.bin or partial.bin): a run saves its first {first_save}", run.display())
    } else {
        format!("{} does not exist: no training run there", run.display())
    }
}

/// The report on the run in `run`.
pub fn text(run: &Path) -> Result<String, String> {
    let (ck, position) = newest(run)?.ok_or_else(|| nothing_saved(run))?;
    let cfg = &ck.config;
    let total = cfg.total_epochs();
    let dataset = Kind::for_classes(cfg.classes).map_or(format!("{} classes", cfg.classes), |k| k.to_string());
    let mut s = String::new();
    let head = if cfg.head_epochs > 0 { format!(" (the first {} classifier only)", cfg.head_epochs) } else { String::new() };
    let _ = writeln!(
        s,
        "run {}: {} (width {}) on {dataset}, {}{head} + {}",
        run.display(),
        cfg.arch,
        cfg.width,
        epochs(cfg.float_epochs, "float"),
        epochs(cfg.qat_epochs, "QAT")
    );
    let training = trainer(run);
    let saved = last_saved(run).and_then(|t| t.elapsed().ok()).map_or(String::new(), |ago| format!("; last saved {} ago", duration(ago.as_secs_f64())));
    let saved = match &training {
        Some(pid) => format!("{saved}; training now (process {pid})"),
        None => format!("{saved}; not training now"),
    };
    let finished = ck.done >= total;
    let _ = match &position {
        Some(p) => {
            let (phase, epoch, epochs) = cfg.phase_of(ck.done);
            writeln!(
                s,
                "progress: {} of {total} epochs done; {phase} epoch {} of {epochs} in progress, {} batches in ({} images){saved}",
                ck.done,
                epoch + 1,
                p.batches,
                p.seen
            )
        }
        None if finished => writeln!(s, "progress: finished, all {total} epochs done{saved}"),
        None => writeln!(s, "progress: {} of {total} epochs done{saved}", ck.done),
    };
    let spent = ck.log.iter().map(|e| e.seconds).sum::<f64>() + position.as_ref().map_or(0.0, |p| p.seconds);
    let left = if finished { String::new() } else { time_left(&ck.log, cfg, ck.done, position.as_ref().map_or(0.0, |p| p.seconds)) };
    let _ = writeln!(s, "time: {} of training so far (wall-clock, every session){left}", duration(spent));
    if !ck.log.is_empty() {
        let _ = writeln!(s, "ran on: {}", ran_on_words(&ck.log));
        let _ = writeln!(s, "last epochs:\n  phase  epoch  loss     train    test     minutes");
        for e in ck.log.iter().skip(ck.log.len().saturating_sub(5)) {
            let _ = writeln!(
                s,
                "  {:<6} {:<6} {:<8.4} {:<8} {:<8} {:.1}",
                e.phase,
                e.epoch,
                e.loss,
                format!("{:.2}%", 100.0 * e.train_accuracy),
                format!("{:.2}%", 100.0 * e.eval_accuracy),
                e.seconds / 60.0
            );
        }
    }
    let data = "--data <CIFAR data>";
    if finished {
        let model = run.join("model.cifhe");
        if model.exists() {
            let _ = writeln!(s, "compiled model: {}", model.display());
        }
        let _ = writeln!(s, "compile it again (another rounding, say) with:\n  train-host compile --run-dir {} {data}", run.display());
    } else {
        if let Some(pid) = training {
            let _ = writeln!(s, "process {pid} is training it: Ctrl-C in its terminal or `kill {pid}` stops it and saves the epoch in progress; then");
        }
        // The epoch in progress, else the last one logged: what the run goes on exactly with.
        let last_ran_on = position.as_ref().map(|_| ck.trainer.ran_on.as_str()).filter(|r| !r.is_empty()).or(ck.log.last().map(|e| e.ran_on.as_str()));
        let (speed, how) = match last_ran_on.and_then(crate::train::TrainConfig::speed_flags) {
            Some(flags) => (format!(" {flags}"), "on what it last ran on, which goes on exactly; another --backend, or --bf16 on or off, resumes it too"),
            None => (String::new(), "add --backend and --bf16 as you like: they set its speed"),
        };
        let _ = writeln!(s, "resume with ({how}):\n  train-host train {}{speed} {data} --run-dir {} --resume", cfg.options(), run.display());
    }
    Ok(s)
}

/// `"; about H left"` at each phase's mean epoch time so far (the mean of every logged epoch for
/// a phase that has none yet), less `into_current` seconds of the epoch in progress; empty before
/// the first epoch has ended.
fn time_left(log: &[EpochLog], cfg: &crate::train::TrainConfig, done: usize, into_current: f64) -> String {
    let mean = |phase: Option<&str>| {
        let times: Vec<f64> = log.iter().filter(|e| phase.is_none_or(|p| e.phase == p)).map(|e| e.seconds).collect();
        (!times.is_empty()).then(|| times.iter().sum::<f64>() / times.len() as f64)
    };
    let total = cfg.total_epochs();
    let left: Option<f64> = (done..total).map(|e| mean(Some(cfg.phase_of(e).0)).or(mean(None))).sum();
    left.map_or(String::new(), |t| format!("; about {} left at the mean epoch time of each phase", duration((t - into_current).max(0.0))))
}

/// `"N {kind} epoch(s)"`.
fn epochs(n: usize, kind: &str) -> String {
    format!("{n} {kind} epoch{}", if n == 1 { "" } else { "s" })
}

/// `seconds` in seconds under two minutes, minutes under two hours, else hours.
fn duration(seconds: f64) -> String {
    if seconds < 120.0 {
        format!("{seconds:.0} s")
    } else if seconds < 7200.0 {
        format!("{:.0} min", seconds / 60.0)
    } else {
        format!("{:.1} h", seconds / 3600.0)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_run_folder_with_nothing_saved_yet_is_told_apart_from_a_missing_one() {
        let run = std::env::temp_dir().join(format!("cifhe-status-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&run);
        assert!(super::text(&run).unwrap_err().contains("does not exist"));
        std::fs::create_dir_all(&run).unwrap();
        assert!(super::text(&run).unwrap_err().contains("no saved training state yet"));
        std::fs::remove_dir_all(&run).unwrap();
    }
}
