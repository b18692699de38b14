//! Learning-rate schedules: the rate of each step of a training phase (classifier only, float,
//! QAT), from the phase's peak rate. Every phase runs its own schedule from its first step to its
//! last; a resumed run computes the same rate for the same step, so resuming changes nothing.
use serde::{Deserialize, Serialize};

/// The shape of the learning rate over a phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum Schedule {
    /// A linear warm-up over the first 5% of the steps, then a cosine decay from the peak to
    /// nearly zero (the peak/1000 floor keeps the last steps learning). What every run used
    /// before `--schedule` existed.
    #[default]
    Cosine,
    /// Smith's one-cycle policy with the defaults of PyTorch's `OneCycleLR`: a cosine rise from
    /// peak/25 to the peak over the first 30% of the steps, then a cosine fall to peak/250,000.
    /// The rate alone cycles (`OneCycleLR` also cycles SGD's momentum or Adam's β₁ against it;
    /// burn's Adam keeps β₁ fixed).
    OneCycle,
}

impl Schedule {
    /// The learning rate of step `step` (from 0) of a phase of `total` steps whose peak rate is
    /// `peak`.
    pub fn rate(self, peak: f64, step: usize, total: usize) -> f64 {
        match self {
            Schedule::Cosine => {
                let warm = (total / 20).max(1);
                if step < warm {
                    peak * (step + 1) as f64 / warm as f64
                } else {
                    peak * cosine_from_to(1.0, 0.0, (step - warm) as f64 / (total - warm).max(1) as f64) + peak * 1e-3
                }
            }
            Schedule::OneCycle => {
                const RISE: f64 = 0.3;
                const START: f64 = 1.0 / 25.0;
                const END: f64 = START / 1e4;
                // PyTorch's phase boundaries: the rise ends at step 0.3·total − 1, the fall at the
                // last step, each phase reaching its end value exactly.
                let top = (RISE * total as f64 - 1.0).max(1.0);
                let last = (total as f64 - 1.0).max(top + 1.0);
                let s = step as f64;
                if s <= top {
                    peak * cosine_from_to(START, 1.0, s / top)
                } else {
                    peak * cosine_from_to(1.0, END, (s - top) / (last - top))
                }
            }
        }
    }
}

/// Half a cosine wave from `from` (at `t` = 0) to `to` (at `t` = 1).
fn cosine_from_to(from: f64, to: f64, t: f64) -> f64 {
    to + (from - to) * 0.5 * (1.0 + (std::f64::consts::PI * t.clamp(0.0, 1.0)).cos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_warms_up_linearly_then_decays_to_the_floor() {
        let (peak, total) = (2e-3, 1000);
        let rate = |s| Schedule::Cosine.rate(peak, s, total);
        // 50 warm-up steps: step 0 at 1/50 of the peak, step 49 at the peak.
        assert!((rate(0) - peak / 50.0).abs() < 1e-12);
        assert!((rate(24) - peak / 2.0).abs() < 1e-12);
        assert!((rate(49) - peak).abs() < 1e-12);
        // The decay starts at the peak (plus the floor) and ends at the floor.
        assert!((rate(50) - peak * 1.001).abs() < 1e-12);
        assert!((rate(1000) - peak * 1e-3).abs() < 1e-12);
        // Halfway through the decay: half the peak.
        assert!((rate(525) - peak * 0.501).abs() < 1e-12);
        assert!((50..999).all(|s| rate(s + 1) < rate(s)));
    }

    #[test]
    fn one_cycle_rises_to_the_peak_at_thirty_percent_then_falls_below_the_start() {
        let (peak, total) = (2e-3, 1000);
        let rate = |s| Schedule::OneCycle.rate(peak, s, total);
        assert!((rate(0) - peak / 25.0).abs() < 1e-15);
        assert!((rate(299) - peak).abs() < 1e-15);
        assert!((rate(999) - peak / 25.0 / 1e4).abs() < 1e-15);
        assert!((0..299).all(|s| rate(s + 1) > rate(s)));
        assert!((299..999).all(|s| rate(s + 1) < rate(s)));
        // Halfway up and halfway down: the midpoints of each half-wave.
        assert!((rate(149) - peak * cosine_from_to(0.04, 1.0, 149.0 / 299.0)).abs() < 1e-15);
        assert!((rate(649) - peak * (1.0 + 0.04 / 1e4) / 2.0).abs() < 1e-15);
    }

    #[test]
    fn very_short_phases_keep_finite_positive_rates() {
        for schedule in [Schedule::Cosine, Schedule::OneCycle] {
            for total in 1..5 {
                for s in 0..total {
                    let r = schedule.rate(1.0, s, total);
                    assert!(r.is_finite() && r > 0.0 && r <= 1.0 + 1e-3, "{schedule:?}, step {s} of {total}: {r}");
                }
            }
        }
    }
}
