//! Fine-tuning: the training loop, checkpoints and resume, learning-rate schedules.

pub mod schedule;
