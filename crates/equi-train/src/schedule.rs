//! The learning rate as a function of the step: linear warm-up, then constant, cosine or
//! linear decay that reaches `min_lr` when the run ends. A pure function of the step, so a
//! resumed run continues the same curve.

use crate::config::{ScheduleConfig, ScheduleKind};

/// Learning rate of step `step` (0-based) of a run of `total` steps with peak rate `peak`.
pub fn learning_rate(schedule: &ScheduleConfig, peak: f64, step: usize, total: usize) -> f64 {
    let warmup = schedule.warmup_steps;
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let decay_steps = total.saturating_sub(warmup).max(1);
    let progress = ((step - warmup) as f64 / decay_steps as f64).min(1.0);
    let floor = schedule.min_lr;
    match schedule.kind {
        ScheduleKind::Constant => peak,
        ScheduleKind::Cosine => {
            floor + 0.5 * (peak - floor) * (1.0 + (std::f64::consts::PI * progress).cos())
        }
        ScheduleKind::Linear => peak + (floor - peak) * progress,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine_to_the_floor() {
        let schedule = ScheduleConfig {
            kind: ScheduleKind::Cosine,
            warmup_steps: 4,
            min_lr: 1e-4,
        };
        let rates: Vec<f64> = (0..14)
            .map(|s| learning_rate(&schedule, 1e-3, s, 14))
            .collect();
        assert!((rates[0] - 2.5e-4).abs() < 1e-12);
        assert!((rates[3] - 1e-3).abs() < 1e-12);
        assert!((rates[4] - 1e-3).abs() < 1e-12);
        assert!(rates[13] > 1e-4 && rates[13] < 1.3e-4);
        assert!((learning_rate(&schedule, 1e-3, 14, 14) - 1e-4).abs() < 1e-12);
        assert!(rates[4..].windows(2).all(|w| w[1] < w[0]));
        let linear = ScheduleConfig {
            kind: ScheduleKind::Linear,
            ..schedule
        };
        assert!((learning_rate(&linear, 1e-3, 9, 14) - 5.5e-4).abs() < 1e-12);
        let constant = ScheduleConfig::default();
        assert_eq!(learning_rate(&constant, 1e-3, 100, 10), 1e-3);
    }
}
