//! `bench-fhe`: what a lookup costs under each TFHE parameter set, measured on real ciphertexts,
//! and what each model's bootstraps then cost.
use crate::report::rounding_words;
use crate::{bench, model_file};
use cifhe_core::fhe::{Bootstrap, ParamSet};
use std::fmt::Write;
use std::path::PathBuf;

/// The `bench-fhe` markdown: measured set costs, then each model's bootstraps times its set's cost.
pub fn markdown(models: &[PathBuf], sets: &[ParamSet], lookups: usize, p_error: f64) -> Result<String, String> {
    let mut costs = Vec::new();
    for &p in sets {
        eprintln!("measuring {p} on {lookups} bootstraps");
        costs.push((p, crate::fhe::measure_set(p, lookups)?));
    }
    let threads = rayon::current_num_threads();
    let mut s = String::new();
    let sets_arg = sets.iter().map(|p| p.name()).collect::<Vec<_>>().join(",");
    let models_arg = models.iter().map(|m| m.display().to_string()).collect::<Vec<_>>().join(",");
    let _ = writeln!(
        s,
        "Measured on {} ({threads} threads) by `cargo run --release -p train-host -- bench-fhe --sets {sets_arg} --models {models_arg} --lookups {lookups}`.\n",
        bench::cpu_name()
    );
    let _ = writeln!(s, "| parameter set | keygen (client + server key) | server key sent (seeded): standard / with fine | server key expanded (standard) | ms per lookup (KS + PBS), all threads: standard / fine |");
    let _ = writeln!(s, "|---|---|---|---|---|");
    for (_, c) in &costs {
        let _ = writeln!(
            s,
            "| {} | {:.2} s | {:.1} / {:.1} MB | {:.1} MB | {:.2} / {:.2} |",
            c.params,
            c.keygen_seconds,
            c.compressed_key_bytes as f64 / 1e6,
            c.compressed_key_bytes_fine as f64 / 1e6,
            c.expanded_key_bytes as f64 / 1e6,
            1e3 * c.seconds_per_lookup,
            1e3 * c.seconds_per_fine_lookup
        );
    }
    let _ = writeln!(
        s,
        "\n| model | rounding | bootstraps per image: standard + fine | cheapest set with p_error ≤ {p_error:.0e} | lookups alone take (extrapolated) |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|");
    for path in models {
        let bytes = model_file::read(path)?;
        let m = model_file::open(path, &bytes)?;
        let (set, split, time) = match cifhe_core::fhe::Plan::cheapest(&m, m.rounding_bits(), p_error) {
            Ok(plan) => {
                let time = costs.iter().find(|(p, _)| *p == plan.params).map_or("set not measured".into(), |(_, c)| {
                    let t = c.lookup_seconds(&plan, &m);
                    if t > 3600.0 {
                        format!("{:.1} h", t / 3600.0)
                    } else if t > 120.0 {
                        format!("{:.0} min", t / 60.0)
                    } else {
                        format!("{t:.1} s")
                    }
                });
                let split = format!("{} + {}", plan.bootstraps_of(&m, Bootstrap::Standard), plan.bootstraps_of(&m, Bootstrap::Fine));
                (plan.params.to_string(), split, time)
            }
            Err(e) => (format!("none: {e}"), "–".into(), "–".into()),
        };
        let _ = writeln!(s, "| `{}` | {} | {split} | {set} | {time} |", m.file().name, rounding_words(m.rounding_bits()));
    }
    Ok(s)
}
