//! Learning-rate schedules, per optimizer step.

/// The shape of the learning rate over training.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    Constant,
    /// Cosine from the base rate down to 0 at the last step.
    Cosine,
    /// Multiply by `gamma` every `every_epochs` epochs.
    Step {
        every_epochs: usize,
        gamma: f64,
    },
}

/// The learning rate at each optimizer step: `warmup_steps` of linear warm-up up to `base`,
/// then the schedule over the remaining steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LrSchedule {
    pub base: f64,
    pub schedule: Schedule,
    pub warmup_steps: usize,
    pub steps_per_epoch: usize,
    pub total_steps: usize,
}

impl LrSchedule {
    pub fn at(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.base * (step + 1) as f64 / self.warmup_steps as f64;
        }
        match self.schedule {
            Schedule::Constant => self.base,
            Schedule::Cosine => {
                let span = self.total_steps.saturating_sub(self.warmup_steps).max(1);
                let t = (step - self.warmup_steps) as f64 / span as f64;
                0.5 * self.base * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos())
            }
            Schedule::Step {
                every_epochs,
                gamma,
            } => {
                let epoch = step / self.steps_per_epoch.max(1);
                self.base * gamma.powi((epoch / every_epochs.max(1)) as i32)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(schedule: Schedule, warmup_steps: usize) -> LrSchedule {
        LrSchedule {
            base: 0.1,
            schedule,
            warmup_steps,
            steps_per_epoch: 10,
            total_steps: 100,
        }
    }

    #[test]
    fn warmup_rises_linearly_to_the_base_rate() {
        let s = schedule(Schedule::Constant, 4);
        let expected = [0.025, 0.05, 0.075, 0.1, 0.1, 0.1];
        for (step, want) in expected.iter().enumerate() {
            let got = s.at(step);
            assert!((got - want).abs() < 1e-12, "step {step}: {got} != {want}");
        }
    }

    #[test]
    fn cosine_starts_at_base_halves_midway_and_ends_near_zero() {
        let s = schedule(Schedule::Cosine, 0);
        assert!((s.at(0) - 0.1).abs() < 1e-12);
        assert!((s.at(50) - 0.05).abs() < 1e-12);
        assert!(s.at(99) < 0.001);
        assert!((1..100).all(|i| s.at(i) <= s.at(i - 1)));
    }

    #[test]
    fn step_schedule_multiplies_by_gamma_every_n_epochs() {
        let s = schedule(
            Schedule::Step {
                every_epochs: 3,
                gamma: 0.5,
            },
            0,
        );
        assert_eq!(s.at(29), 0.1);
        assert_eq!(s.at(30), 0.05);
        assert_eq!(s.at(60), 0.025);
    }
}
