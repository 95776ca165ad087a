//! nvinfer's custom bounding-box parsers: the config's `custom-lib-path` library and its
//! `parse-bbox-func-name` function, `bool f(std::vector<NvDsInferLayerInfo> const &,
//! NvDsInferNetworkInfo const &, NvDsInferParseDetectionParams const &,
//! std::vector<NvDsInferObjectDetectionInfo> &)`, exported unmangled as
//! `nvdsinfer_custom_impl.h` has it (DeepStream 5.0 and later).
//!
//! The vectors cross as libstdc++ (the compiler of DeepStream and of its parsers) lays them out:
//! three pointers, begin, end and end of storage. The inputs point into nvtl's own memory and
//! are only read; the objects the parser appends live in storage it allocated with
//! `operator new`, which is copied out and handed back to the library's `operator delete`.

use std::ffi::{c_char, c_uint, c_void, CString};
use std::path::{Path, PathBuf};

use libloading::Library;

use crate::nvmm::dsmeta::{NvDsInferDims, NvDsInferLayerInfo, NvDsInferNetworkInfo};
use crate::objects::{BBox, Detection};
use crate::tensor::Tensor;

/// `std::vector<T>` of libstdc++.
#[repr(C)]
struct CxxVector<T> {
    start: *mut T,
    finish: *mut T,
    end_of_storage: *mut T,
}

impl<T> CxxVector<T> {
    fn empty() -> CxxVector<T> {
        CxxVector {
            start: std::ptr::null_mut(),
            finish: std::ptr::null_mut(),
            end_of_storage: std::ptr::null_mut(),
        }
    }

    /// A view of `items` the C++ side may read, never grow or free.
    fn borrowing(items: &[T]) -> CxxVector<T> {
        let range = items.as_ptr_range();
        CxxVector {
            start: range.start as *mut T,
            finish: range.end as *mut T,
            end_of_storage: range.end as *mut T,
        }
    }
}

/// `NvDsInferParseDetectionParams`; `per_class_threshold` is the C++ reference member that
/// aliases `per_class_precluster_threshold`.
#[repr(C)]
struct DetectionParams {
    num_classes_configured: c_uint,
    per_class_precluster_threshold: CxxVector<f32>,
    per_class_postcluster_threshold: CxxVector<f32>,
    per_class_threshold: *const CxxVector<f32>,
}

/// `NvDsInferObjectDetectionInfo` (= `NvDsInferParseObjectInfo`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct ObjectDetectionInfo {
    class_id: c_uint,
    left: f32,
    top: f32,
    width: f32,
    height: f32,
    detection_confidence: f32,
}

type ParseBboxFn = unsafe extern "C" fn(
    *const CxxVector<NvDsInferLayerInfo>,
    *const NvDsInferNetworkInfo,
    *const DetectionParams,
    *mut CxxVector<ObjectDetectionInfo>,
) -> bool;

/// `operator delete(void *)`.
type OperatorDelete = unsafe extern "C" fn(*mut c_void);

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CustomLibError {
    #[error("custom-lib-path {path}: cannot be loaded: {reason}")]
    Load { path: PathBuf, reason: String },
    #[error("custom-lib-path {path} has no function {function} (parse-bbox-func-name): {reason}")]
    Symbol {
        path: PathBuf,
        function: String,
        reason: String,
    },
    #[error("{function} of {path} returned false (parsing failed)")]
    Failed { path: PathBuf, function: String },
}

/// What a parser is told besides the outputs.
#[derive(Clone, Debug, PartialEq)]
pub struct ParseParams {
    /// Network width, height, channels.
    pub network: [u32; 3],
    pub num_classes: u32,
    /// Per class, `pre-cluster-threshold` and `post-cluster-threshold`.
    pub precluster_thresholds: Vec<f32>,
    pub postcluster_thresholds: Vec<f32>,
}

/// A custom bounding-box parser, loaded.
pub struct CustomBboxParser {
    path: PathBuf,
    function: String,
    parse: ParseBboxFn,
    operator_delete: OperatorDelete,
    _library: Library,
}

impl std::fmt::Debug for CustomBboxParser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} in {}", self.function, self.path.display())
    }
}

impl CustomBboxParser {
    /// Opens `path` and finds `function` in it.
    pub fn load(path: &Path, function: &str) -> Result<CustomBboxParser, CustomLibError> {
        // SAFETY: loading runs the library's initialisers, as nvinfer's dlopen does; a custom
        // parser library is code the config's author chose to run.
        let library = unsafe { Library::new(path) }.map_err(|e| CustomLibError::Load {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let symbol_error = |name: &str, e: libloading::Error| CustomLibError::Symbol {
            path: path.to_path_buf(),
            function: name.to_string(),
            reason: e.to_string(),
        };
        // SAFETY: the types are the C ABI of the prototype above and of `operator delete(void*)`,
        // which the library finds in its libstdc++ (searched through its dependencies).
        let (parse, operator_delete) = unsafe {
            let parse: ParseBboxFn = *library
                .get(function.as_bytes())
                .map_err(|e| symbol_error(function, e))?;
            let operator_delete: OperatorDelete = *library
                .get(b"_ZdlPv")
                .map_err(|e| symbol_error("operator delete (_ZdlPv, libstdc++)", e))?;
            (parse, operator_delete)
        };
        Ok(CustomBboxParser {
            path: path.to_path_buf(),
            function: function.to_string(),
            parse,
            operator_delete,
            _library: library,
        })
    }

    /// Runs the parser on batch item `batch_index` of `outputs` (in the config's output order);
    /// the objects are in network pixels.
    pub fn parse(
        &self,
        outputs: &[Tensor],
        batch_index: usize,
        params: &ParseParams,
    ) -> Result<Vec<Detection>, CustomLibError> {
        let names: Vec<CString> = outputs
            .iter()
            .map(|t| CString::new(t.name.replace('\0', "")).unwrap_or_default())
            .collect();
        let layers: Vec<NvDsInferLayerInfo> = outputs
            .iter()
            .zip(&names)
            .enumerate()
            .map(|(index, (tensor, name))| {
                let item = tensor.batch_item(batch_index);
                let dims = tensor.item_shape();
                let mut infer_dims = NvDsInferDims {
                    num_dims: dims.len().min(8) as c_uint,
                    num_elements: item.len() as c_uint,
                    ..Default::default()
                };
                for (d, &n) in infer_dims.d.iter_mut().zip(dims) {
                    *d = n as c_uint;
                }
                NvDsInferLayerInfo {
                    data_type: 0,
                    infer_dims,
                    binding_index: index as i32,
                    layer_name: name.as_ptr() as *const c_char,
                    buffer: item.as_ptr() as *mut c_void,
                    is_input: 0,
                }
            })
            .collect();
        let layers_vector = CxxVector::borrowing(&layers);
        let network = NvDsInferNetworkInfo {
            width: params.network[0],
            height: params.network[1],
            channels: params.network[2],
        };
        let mut detection_params = Box::new(DetectionParams {
            num_classes_configured: params.num_classes,
            per_class_precluster_threshold: CxxVector::borrowing(&params.precluster_thresholds),
            per_class_postcluster_threshold: CxxVector::borrowing(&params.postcluster_thresholds),
            per_class_threshold: std::ptr::null(),
        });
        detection_params.per_class_threshold = &detection_params.per_class_precluster_threshold;
        let mut found = CxxVector::<ObjectDetectionInfo>::empty();
        // SAFETY: every pointer handed over lives until the call returns, and the parser only
        // reads the inputs (they are `const &`); `found` starts empty and whatever the parser
        // stored in it is copied and freed below, once.
        let ok = unsafe { (self.parse)(&layers_vector, &network, &*detection_params, &mut found) };
        let objects = if found.start.is_null() {
            Vec::new()
        } else {
            // SAFETY: [start, finish) holds the objects the parser pushed; the storage came from
            // the parser's operator new.
            unsafe {
                let len = found.finish.offset_from(found.start).max(0) as usize;
                let objects = std::slice::from_raw_parts(found.start, len).to_vec();
                (self.operator_delete)(found.start as *mut c_void);
                objects
            }
        };
        if !ok {
            return Err(CustomLibError::Failed {
                path: self.path.clone(),
                function: self.function.clone(),
            });
        }
        Ok(objects
            .into_iter()
            .map(|o| Detection {
                class_id: o.class_id,
                confidence: o.detection_confidence,
                bbox: BBox {
                    left: o.left,
                    top: o.top,
                    width: o.width,
                    height: o.height,
                },
            })
            .collect())
    }
}

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn structs_follow_nvdsinfer_custom_impl_h() {
        assert_eq!(size_of::<CxxVector<f32>>(), 24);
        assert_eq!(
            offset_of!(DetectionParams, per_class_precluster_threshold),
            8
        );
        assert_eq!(
            offset_of!(DetectionParams, per_class_postcluster_threshold),
            32
        );
        assert_eq!(offset_of!(DetectionParams, per_class_threshold), 56);
        assert_eq!(size_of::<ObjectDetectionInfo>(), 24);
    }

    #[test]
    fn missing_libraries_and_functions_are_errors_naming_them() {
        let missing = Path::new("/nonexistent/libnvdsinfer_custom_impl_Yolo.so");
        let err = CustomBboxParser::load(missing, "NvDsInferParseYolo").unwrap_err();
        assert!(err.to_string().starts_with(
            "custom-lib-path /nonexistent/libnvdsinfer_custom_impl_Yolo.so: cannot be loaded"
        ));
        // A library that exists but has no such function: the C library.
        let err = CustomBboxParser::load(Path::new("libc.so.6"), "NvDsInferParseYolo").unwrap_err();
        assert!(
            matches!(&err, CustomLibError::Symbol { function, .. } if function == "NvDsInferParseYolo"),
            "{err}"
        );
    }
}
