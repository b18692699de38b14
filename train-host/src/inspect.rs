//! `inspect`: a compiled model's stages, with their shapes, multiply-accumulates, lookups and
//! accumulator widths (worst case, declared with their centres, and calibrated), and what each
//! stage does to the noise under real TFHE: why a lookup needs the fine bootstrapping key is
//! read off the linear stage after it.
use crate::report::rounding_words;
use cifhe_core::analysis::analyze;
use cifhe_core::fhe::plan::{StagePlan, DEFAULT_P_ERROR_TARGET};
use cifhe_core::fhe::{Bootstrap, Plan, PlanError};
use cifhe_core::kernels::reference::Taps;
use cifhe_core::Model;
use std::fmt::Write;

/// The plan `inspect` and `train`'s report describe: the cheapest set at the model's own rounding
/// and the default error target (what `fhe` chooses without `--params`, and `bench-fhe` reports).
fn default_plan(m: &Model<'_>) -> Result<Plan, PlanError> {
    Plan::cheapest(m, m.rounding_bits(), DEFAULT_P_ERROR_TARGET)
}

/// The table `inspect` prints for `m`, whose file has `size` bytes.
pub fn text(m: &Model<'_>, size: usize) -> String {
    let mut s = String::new();
    let f = m.file();
    let _ = writeln!(s, "model {} ({} bytes), {} classes, {} by default", f.name, size, m.classes(), rounding_words(f.rounding_bits));
    let _ = writeln!(s, "{}\n", f.description);
    let plan = default_plan(m);
    let set = plan.as_ref().map_or("TFHE".to_string(), |p| format!("TFHE {}", p.params.name()));
    let _ = writeln!(
        s,
        "{:>3} {:<9} {:>14} {:>14} {:>10} {:>26} {:>16} {:>22} {:>8} {:>24}",
        "#", "stage", "output", "MACs", "PBS", "worst-case acc", "acc bits", "calibrated", "noise ×", set
    );
    let (mut macs, mut pbs) = (0, 0);
    let mut input = m.input_shape();
    for (i, (r, stage)) in analyze(m).iter().zip(m.stages()).enumerate() {
        let o = r.output;
        let bound = r.bound.map_or(String::new(), |((lo, hi), b)| format!("[{lo}, {hi}] {b} bits"));
        let acc = r.acc_bits.map_or(String::new(), |(b, c)| if c == 0 { b.to_string() } else { format!("{b} about {c}") });
        let cal = r.calibrated.map_or(String::new(), |((lo, hi), b)| format!("[{lo}, {hi}] {b} bits"));
        let growth = Taps::of_stage(stage, input).map_or(String::new(), |t| format!("{:.1}", t.max_weight_norm()));
        let tfhe = match plan.as_ref().map(|p| &p.stages[i]) {
            Ok(StagePlan::Lookup(l)) => {
                format!("{}, σ {:.3}, p {:.1e}", l.bootstrap.name(), l.sigma_steps, cifhe_core::NoiseModel::from_sigma(l.sigma_steps).p_error())
            }
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "{i:>3} {:<9} {:>14} {:>14} {:>10} {bound:>26} {acc:>16} {cal:>22} {growth:>8} {tfhe:>24}",
            r.kind,
            format!("{}x{}x{}", o.h, o.w, o.c),
            r.macs,
            r.pbs
        );
        macs += r.macs;
        pbs += r.pbs;
        input = o;
    }
    let _ =
        writeln!(s, "\ntotal: {:.3} G multiply-accumulates, {pbs} lookups (PBS) per image; scratch {} KiB", macs as f64 / 1e9, m.scratch_words() * 8 / 1024);
    match plan {
        Ok(p) => {
            let _ = writeln!(
                s,
                "under real TFHE: {}, the cheapest set with every lookup's error probability p at most {DEFAULT_P_ERROR_TARGET} \
                 (σ: its input's noise in rounded steps); noise ×: a linear stage's largest weight 2-norm, the factor by which it multiplies the previous lookup's \
                 output noise (a large one makes that lookup take the fine key)",
                p.params
            );
        }
        Err(e) => {
            let _ = writeln!(s, "under real TFHE: {e}");
        }
    }
    s
}

/// One line on how `m` runs under real TFHE: the cheapest set meeting the default error target and
/// its bootstraps per image, standard and fine (printed after training, so that a run whose
/// weights need the fine key says so at once).
pub fn tfhe_summary(m: &Model<'_>) -> String {
    match default_plan(m) {
        Ok(p) => {
            let fine = p.bootstraps_of(m, Bootstrap::Fine);
            let hint = if fine > 0 { " (the fine key triples the server key; `inspect` shows which linear stage needs it)" } else { "" };
            format!("under real TFHE: {}, {} standard + {fine} fine bootstraps per image{hint}", p.params, p.bootstraps_of(m, Bootstrap::Standard))
        }
        Err(e) => format!("under real TFHE: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table names the set and, per lookup, the key and error probability the plan has (the
    /// demo model takes the standard key only, the small CNN the fine one at some lookups); per
    /// linear stage, the noise factor the plan multiplies by.
    #[test]
    fn the_table_shows_each_lookups_key_and_each_linear_stages_noise_factor() {
        for file in [crate::paths::demo_model(), crate::paths::workspace().join("models/small-w2-cifar10.cifhe")] {
            shows_the_plan_of(&std::fs::read(file).unwrap());
        }
    }

    /// The summary's counts are the model's lookups, split by key; the hint comes with a fine key.
    #[test]
    fn the_summary_splits_the_lookups_by_key() {
        for (file, fine) in [(crate::paths::demo_model(), false), (crate::paths::workspace().join("models/small-w2-cifar10.cifhe"), true)] {
            let bytes = std::fs::read(file).unwrap();
            let m = Model::from_bytes(&bytes).unwrap();
            let line = tfhe_summary(&m);
            let counts: Vec<u64> = line.split(", ").nth(3).unwrap().split(' ').filter_map(|w| w.parse().ok()).collect();
            assert_eq!(counts.iter().sum::<u64>(), analyze(&m).iter().map(|r| r.pbs).sum::<u64>(), "{line}");
            assert_eq!((counts[1] > 0, line.contains("triples the server key")), (fine, fine), "{line}");
        }
    }

    fn shows_the_plan_of(bytes: &[u8]) {
        let m = Model::from_bytes(bytes).unwrap();
        let plan = default_plan(&m).unwrap();
        let t = text(&m, bytes.len());
        assert!(t.contains(&format!("TFHE {}", plan.params.name())) && t.contains(&format!("under real TFHE: {}", plan.params)), "{t}");
        let row_of = |kind: &str| t.lines().filter(move |l| l.split_whitespace().nth(1) == Some(kind)).collect::<Vec<_>>();
        let rows = row_of("lookup");
        let lookups: Vec<_> = plan.stages.iter().filter_map(|s| if let StagePlan::Lookup(l) = s { Some(l) } else { None }).collect();
        assert_eq!(rows.len(), lookups.len());
        for (row, l) in rows.iter().zip(lookups) {
            let key = if l.bootstrap == Bootstrap::Fine { "fine" } else { "standard" };
            let want = format!("{key}, σ {:.3}, p {:.1e}", l.sigma_steps, cifhe_core::NoiseModel::from_sigma(l.sigma_steps).p_error());
            assert!(row.ends_with(&want), "{row}");
        }
        let kernels = m.stages().iter().filter_map(|s| if let cifhe_core::Stage::SumPool(p) = s { Some(p.kernel) } else { None });
        for (row, k) in row_of("sum-pool").into_iter().zip(kernels) {
            assert!(row.trim_end().ends_with(&format!(" {k}.0")), "a k×k sum multiplies independent noises by k: {row}");
        }
    }
}
