//! Property values and their precedence: a property the user set beats the config file, which
//! beats nvinfer's default.

use std::path::PathBuf;

use nvtl_core::backend::BackendKind;
use nvtl_core::config::{InferConfig, ProcessMode};

/// The element's properties. `None` means "not set by the user": the config file decides.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Settings {
    pub config_file_path: Option<PathBuf>,
    pub unique_id: Option<u32>,
    pub process_mode: Option<ProcessMode>,
    pub infer_on_gie_id: Option<i32>,
    pub infer_on_class_ids: Option<Vec<u32>>,
    pub batch_size: Option<u32>,
    pub interval: Option<u32>,
    pub model_engine_file: Option<PathBuf>,
    pub gpu_id: Option<u32>,
    pub output_tensor_meta: Option<bool>,
    pub filter_out_class_ids: Option<Vec<u32>>,
    pub backend: BackendKind,
    /// CPU threads per inference; 0 uses every core.
    pub cpu_threads: u32,
}

impl Settings {
    /// Applies the user's properties on top of `config` (the file's values over defaults).
    pub fn apply_to(&self, mut config: InferConfig) -> InferConfig {
        if let Some(v) = self.unique_id {
            config.unique_id = v;
        }
        if let Some(v) = self.process_mode {
            config.process_mode = v;
        }
        if let Some(v) = self.infer_on_gie_id {
            config.operate_on_gie_id = v;
        }
        if let Some(v) = &self.infer_on_class_ids {
            config.operate_on_class_ids = v.clone();
        }
        if let Some(v) = self.batch_size {
            config.batch_size = v;
        }
        if let Some(v) = self.interval {
            config.interval = v;
        }
        if let Some(v) = &self.model_engine_file {
            config.model_engine_file = Some(v.clone());
        }
        if let Some(v) = self.gpu_id {
            config.gpu_id = v;
        }
        if let Some(v) = self.output_tensor_meta {
            config.output_tensor_meta = v;
        }
        if let Some(v) = &self.filter_out_class_ids {
            config.filter_out_class_ids = v.clone();
        }
        config
    }
}

/// Parses a class-id list property. nvinfer documents `0:2:3` for infer-on-class-ids and
/// `0;2;3` for filter-out-class-ids; both separators (and commas) are accepted for either.
pub fn parse_class_ids(text: &str) -> Result<Vec<u32>, String> {
    text.split([':', ';', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<u32>()
                .map_err(|_| format!("'{s}' is not a class id (a non-negative integer)"))
        })
        .collect()
}

pub fn format_class_ids(ids: &[u32], separator: &str) -> String {
    ids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(separator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_properties_beat_the_config_which_beats_defaults() {
        let from_file = InferConfig {
            unique_id: 3,
            interval: 2,
            batch_size: 4,
            ..InferConfig::default()
        };
        let settings = Settings {
            unique_id: Some(7),
            batch_size: Some(2),
            ..Default::default()
        };
        let resolved = settings.apply_to(from_file);
        assert_eq!(resolved.unique_id, 7, "property set by the user wins");
        assert_eq!(resolved.batch_size, 2);
        assert_eq!(
            resolved.interval, 2,
            "config value kept where no property was set"
        );
        let defaults = Settings::default().apply_to(InferConfig::default());
        assert_eq!(defaults.unique_id, 15, "nvinfer's default unique-id");
    }

    #[test]
    fn class_id_lists_accept_nvinfer_separators() {
        assert_eq!(parse_class_ids("0:2:3").unwrap(), vec![0, 2, 3]);
        assert_eq!(parse_class_ids("0;2; 3;").unwrap(), vec![0, 2, 3]);
        assert_eq!(parse_class_ids("").unwrap(), Vec::<u32>::new());
        assert!(parse_class_ids("1:x").unwrap_err().contains("'x'"));
        assert_eq!(format_class_ids(&[1, 2], ":"), "1:2");
    }
}
