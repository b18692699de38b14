//! The simulator benchmark: throughput on the VGG11-shaped model, multiply-accumulate rate against
//! the CPU's measured int8 peak, results written into BENCHMARKS.md.
use cifhe_core::analysis::totals;
use cifhe_core::fhe::{ParamSet, Plan};
use cifhe_core::kernels::Isa;
use cifhe_core::{batch, Model, RoundingMode, RunConfig, Simulator};
use std::time::Instant;

/// One measured configuration.
#[derive(Debug, Clone)]
pub struct Row {
    /// What ran.
    pub config: String,
    /// Worker threads.
    pub threads: usize,
    /// Images simulated.
    pub images: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Multiply-accumulates per image.
    pub macs: u64,
}

impl Row {
    /// Images per second.
    pub fn rate(&self) -> f64 {
        self.images as f64 / self.seconds
    }
    /// Multiply-accumulates per second.
    pub fn mac_rate(&self) -> f64 {
        self.rate() * self.macs as f64
    }
}

/// Simulates `images` with `cfg` on `threads` threads and times it.
pub fn measure(model: &Model<'_>, images: &[u8], cfg: RunConfig, threads: usize, label: &str) -> Result<Row, String> {
    let sim = Simulator::new(model, cfg).map_err(|e| e.to_string())?;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().map_err(|e| e.to_string())?;
    // One warm-up image, then the timed run.
    pool.install(|| batch::classify_all(&sim, &images[..model.image_len()], 0, |_| {})).map_err(|e| e.to_string())?;
    let start = Instant::now();
    pool.install(|| batch::classify_all(&sim, images, 0, |_| {})).map_err(|e| e.to_string())?;
    Ok(Row { config: label.into(), threads, images: images.len() / model.image_len(), seconds: start.elapsed().as_secs_f64(), macs: totals(model).0 })
}

/// The measured int8 multiply-accumulate peak of `threads` cores running `vpdpbusd` on registers
/// only (24 independent accumulators, no memory traffic), or `None` without AVX-512 VNNI.
pub fn int8_peak(threads: usize) -> Option<f64> {
    if Isa::detect() != Isa::Avx512Vnni {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    {
        const ITERS: u64 = 20_000_000;
        let start = Instant::now();
        let sink: i64 = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|t| s.spawn(move || unsafe { vnni_loop(ITERS, t as i32) })).collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
        });
        let secs = start.elapsed().as_secs_f64();
        std::hint::black_box(sink);
        // 24 instructions × 64 multiply-accumulates per iteration.
        Some((ITERS * 24 * 64 * threads as u64) as f64 / secs)
    }
    #[cfg(not(target_arch = "x86_64"))]
    None
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn vnni_loop(iters: u64, seed: i32) -> i64 {
    use std::arch::x86_64::*;
    // Opaque operands, so nothing can be folded; accumulators stay in registers (24 independent
    // chains cover the instruction's latency), and are only observed after the loop.
    let a = std::hint::black_box(_mm512_set1_epi32(0x0101_0101 + seed));
    let b = std::hint::black_box(_mm512_set1_epi32(0x0102_0304));
    let mut acc = [_mm512_setzero_si512(); 24];
    for _ in 0..iters {
        for r in acc.iter_mut() {
            *r = _mm512_dpbusd_epi32(*r, a, b);
        }
    }
    let acc = std::hint::black_box(acc);
    acc.iter().map(|r| _mm512_reduce_add_epi32(*r) as i64).sum()
}

/// The CPU's model name (from /proc/cpuinfo where there is one).
pub fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).map(|s| s.trim().to_string()))
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// Runs the standard set of configurations.
pub fn run_all(model: &Model<'_>, images: &[u8], progress: &dyn Fn(&str)) -> Result<(Vec<Row>, Option<f64>), String> {
    let threads = rayon::current_num_threads();
    let base = RunConfig::new(model);
    let r = base.rounding_bits.map_or("no rounding".into(), |b| format!("{b}-bit rounding"));
    let few = &images[..images.len().min(200 * model.image_len())];
    let mut rows = Vec::new();
    let mut plan: Vec<(String, RunConfig, usize, &[u8])> = Vec::new();
    for isa in Isa::available().iter().rev() {
        let set = if *isa == Isa::Portable { few } else { images };
        plan.push((format!("{isa:?}, exact {r}, p_error 2^-40"), RunConfig { isa: *isa, ..base }, threads, set));
    }
    plan.push((format!("{:?}, approximate {r}, p_error 2^-40", base.isa), RunConfig { mode: RoundingMode::Approximate, ..base }, threads, images));
    // What `classify --fhe-params 2_2` runs: each stage's noise from the TFHE plan.
    let tfhe = Plan::for_model(model, ParamSet::M2C2).map_err(|e| e.to_string())?;
    plan.push((format!("{:?}, TFHE 2_2 noise per stage, approximate {r}", base.isa), tfhe.simulation(base), threads, images));
    plan.push((format!("{:?}, exact {r}, one thread", base.isa), base, 1, few));
    for (label, cfg, t, set) in plan {
        progress(&label);
        rows.push(measure(model, set, cfg, t, &label)?);
    }
    progress("measuring the int8 peak");
    Ok((rows, int8_peak(threads)))
}

/// The markdown section for BENCHMARKS.md.
pub fn markdown(rows: &[Row], peak: Option<f64>, model: &Model<'_>, command: &str) -> String {
    use std::fmt::Write;
    let (macs, pbs) = totals(model);
    let mut s = String::new();
    let date = std::process::Command::new("date").arg("-u").arg("+%Y-%m-%d %H:%M UTC").output().ok();
    let date = date.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
    let _ = writeln!(s, "Measured {date} on {} ({} threads), by `{command}`.", cpu_name(), rayon::current_num_threads());
    let _ = writeln!(s, "Model `{}`: {:.3} G multiply-accumulates and {} lookups (PBS) per image.\n", model.file().name, macs as f64 / 1e9, pbs);
    if let Some(p) = peak {
        let _ = writeln!(s, "Measured int8 peak (`vpdpbusd` on registers, all threads): {:.1} G MAC/s.\n", p / 1e9);
    }
    let _ = writeln!(s, "| configuration | threads | images | seconds | images/s | 10,000 images in | G MAC/s | % of int8 peak |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for r in rows {
        let pct = peak.map_or("–".into(), |p| format!("{:.0}%", 100.0 * r.mac_rate() / (p * r.threads as f64 / rayon::current_num_threads() as f64)));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.2} | {:.1} | {:.1} s | {:.1} | {pct} |",
            r.config,
            r.threads,
            r.images,
            r.seconds,
            r.rate(),
            10_000.0 / r.rate(),
            r.mac_rate() / 1e9
        );
    }
    s
}

/// Replaces the text between `<!-- begin NAME -->` and `<!-- end NAME -->` in `doc` (or appends it).
pub fn replace_section(doc: &str, name: &str, body: &str) -> String {
    let (b, e) = (format!("<!-- begin {name} -->"), format!("<!-- end {name} -->"));
    match (doc.find(&b), doc.find(&e)) {
        (Some(i), Some(j)) if i < j => format!("{}{b}\n{body}{}", &doc[..i], &doc[j..]),
        _ => format!("{doc}\n{b}\n{body}{e}\n"),
    }
}
