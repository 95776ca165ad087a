//! Importers for known architectures whose weights come as framework checkpoints: each builds
//! an ONNX graph that the graph executor (and every other nvtl tool) then treats like any model.

pub mod mobilenet_v2;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use nvtl_core::zoo::{Converter, ZooModel};

/// The zoo's external converters, for [`nvtl_core::zoo::pull_with`].
pub fn zoo_converter(
    model: &ZooModel,
    files: &HashMap<String, Vec<u8>>,
) -> Result<Vec<u8>, String> {
    let main = files
        .get(&model.convert.model_file)
        .ok_or_else(|| format!("'{}' was not extracted", model.convert.model_file))?;
    match model.converter {
        Converter::TorchvisionMobilenetV2 => {
            let input = &model.input;
            let options = mobilenet_v2::ImportOptions {
                input_size: (input.height as usize, input.width as usize),
                fold_std_into: Some(mobilenet_v2::FOLDED_STD),
            };
            // The reader loads tensors lazily from a file (legacy checkpoints keep them outside
            // the pickle), so the checkpoint goes through a temporary file, one per call: two
            // threads pulling at once must not overwrite or delete each other's.
            static CALLS: AtomicUsize = AtomicUsize::new(0);
            let tmp = std::env::temp_dir().join(format!(
                "nvtl-import-{}-{}-{}.pth",
                model.name,
                std::process::id(),
                CALLS.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::write(&tmp, main).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
            let result = mobilenet_v2::import(&tmp, &options)
                .map(|proto| prost::Message::encode_to_vec(&proto))
                .map_err(|e| e.to_string());
            let _ = std::fs::remove_file(&tmp);
            result
        }
        other => Err(format!("converter {other} is not one of the trainer's")),
    }
}
