//! The trainer spec file (TOML): model, dataset, augmentation, training, head, evaluation, export.
