//! `inspect`: a compiled model's stages, with their shapes, multiply-accumulates, lookups and
//! accumulator widths (worst case, declared with their centres, and calibrated).
use crate::report::rounding_words;
use cifhe_core::analysis::analyze;
use cifhe_core::Model;
use std::fmt::Write;

/// The table `inspect` prints for `m`, whose file has `size` bytes.
pub fn text(m: &Model<'_>, size: usize) -> String {
    let mut s = String::new();
    let f = m.file();
    let _ = writeln!(s, "model {} ({} bytes), {} classes, {} by default", f.name, size, m.classes(), rounding_words(f.rounding_bits));
    let _ = writeln!(s, "{}\n", f.description);
    let _ =
        writeln!(s, "{:>3} {:<9} {:>14} {:>14} {:>10} {:>26} {:>16} {:>22}", "#", "stage", "output", "MACs", "PBS", "worst-case acc", "acc bits", "calibrated");
    let (mut macs, mut pbs) = (0, 0);
    for (i, r) in analyze(m).iter().enumerate() {
        let o = r.output;
        let bound = r.bound.map_or(String::new(), |((lo, hi), b)| format!("[{lo}, {hi}] {b} bits"));
        let acc = r.acc_bits.map_or(String::new(), |(b, c)| if c == 0 { b.to_string() } else { format!("{b} about {c}") });
        let cal = r.calibrated.map_or(String::new(), |((lo, hi), b)| format!("[{lo}, {hi}] {b} bits"));
        let _ = writeln!(s, "{i:>3} {:<9} {:>14} {:>14} {:>10} {bound:>26} {acc:>16} {cal:>22}", r.kind, format!("{}x{}x{}", o.h, o.w, o.c), r.macs, r.pbs);
        macs += r.macs;
        pbs += r.pbs;
    }
    let _ =
        writeln!(s, "\ntotal: {:.3} G multiply-accumulates, {pbs} lookups (PBS) per image; scratch {} KiB", macs as f64 / 1e9, m.scratch_words() * 8 / 1024);
    s
}
