//! nvinfer's custom output parsers in the config's `custom-lib-path` library, exported
//! unmangled with the prototypes of `nvdsinfer_custom_impl.h` (DeepStream 5.0 and later):
//! `parse-bbox-func-name`, `bool f(std::vector<NvDsInferLayerInfo> const &,
//! NvDsInferNetworkInfo const &, NvDsInferParseDetectionParams const &,
//! std::vector<NvDsInferObjectDetectionInfo> &)`, `parse-bbox-instance-mask-func-name` (the
//! same with `std::vector<NvDsInferInstanceMaskInfo> &`), and `parse-classifier-func-name`,
//! `bool f(std::vector<NvDsInferLayerInfo> const &, NvDsInferNetworkInfo const &, float,
//! std::vector<NvDsInferAttribute> &, std::string &)`.
//!
//! The vectors and the string cross as libstdc++ (the compiler of DeepStream and of its parsers,
//! C++11 ABI) lays them out: a vector is three pointers (begin, end, end of storage), a string a
//! pointer, a length and a 16-byte local buffer. The inputs point into nvtl's own memory and are
//! only read; what the parser appends lives in storage from its `operator new`, which is copied
//! out and handed back to the library's `operator delete`, instance masks (`new float[]`, which
//! nvinfer frees with `delete[]`) to its `operator delete[]`, and attribute labels (strdup'd, as
//! the header asks) to `free`.

use std::ffi::{c_char, c_uint, c_void, CString};
use std::path::{Path, PathBuf};

use libloading::Library;

use crate::nvmm::dsmeta::{layer_name, NvDsInferLayerInfo, NvDsInferNetworkInfo};
use crate::objects::{BBox, ClassifierAttribute, Detection, InstanceMask};
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

/// `NvDsInferInstanceMaskInfo`: an `NvDsInferObjectDetectionInfo` and its mask.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct InstanceMaskInfo {
    object: ObjectDetectionInfo,
    mask: *mut f32,
    mask_width: c_uint,
    mask_height: c_uint,
    /// In bytes.
    mask_size: c_uint,
}

/// `NvDsInferAttribute`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct Attribute {
    attribute_index: c_uint,
    attribute_value: c_uint,
    attribute_confidence: f32,
    attribute_label: *mut c_char,
}

/// `std::string` of libstdc++'s C++11 ABI: short strings live in `local`.
#[repr(C)]
struct CxxString {
    ptr: *mut c_char,
    len: usize,
    local: [u8; 16],
}

type ParseClassifierFn = unsafe extern "C" fn(
    *const CxxVector<NvDsInferLayerInfo>,
    *const NvDsInferNetworkInfo,
    f32,
    *mut CxxVector<Attribute>,
    *mut CxxString,
) -> bool;

/// `free(void *)`.
type Free = unsafe extern "C" fn(*mut c_void);

/// A parser of detections of type `O` (`NvDsInferParseCustomFunc` with
/// `NvDsInferObjectDetectionInfo`, `NvDsInferInstanceMaskParseCustomFunc` with
/// `NvDsInferInstanceMaskInfo`).
type ParseDetectionsFn<O> = unsafe extern "C" fn(
    *const CxxVector<NvDsInferLayerInfo>,
    *const NvDsInferNetworkInfo,
    *const DetectionParams,
    *mut CxxVector<O>,
) -> bool;

/// `operator delete(void *)` and `operator delete[](void *)`.
type OperatorDelete = unsafe extern "C" fn(*mut c_void);

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CustomLibError {
    #[error("custom-lib-path {path}: cannot be loaded: {reason}")]
    Load { path: PathBuf, reason: String },
    #[error("custom-lib-path {path} has no function {function}: {reason}")]
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

/// A custom parser library, open, with the C++ runtime calls its output needs.
struct CustomLib {
    path: PathBuf,
    operator_delete: OperatorDelete,
    operator_delete_array: OperatorDelete,
    free: Free,
    library: Library,
}

impl CustomLib {
    fn load(path: &Path) -> Result<CustomLib, CustomLibError> {
        // SAFETY: loading runs the library's initialisers, as nvinfer's dlopen does; a custom
        // parser library is code the config's author chose to run.
        let library = unsafe { Library::new(path) }.map_err(|e| CustomLibError::Load {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(CustomLib {
            path: path.to_path_buf(),
            operator_delete: noop,
            operator_delete_array: noop,
            free: noop,
            library,
        })
    }

    /// Finds `function` (of C type `T`), then the C++ runtime calls its output needs.
    ///
    /// # Safety
    /// `T` must be the function's C type.
    unsafe fn parser<T: Copy>(&mut self, function: &str) -> Result<T, CustomLibError> {
        let parse = self.function::<T>(function.as_bytes(), function)?;
        // `operator delete(void *)`, `operator delete[](void *)` and `free(void *)`, which the
        // library finds in its libstdc++ and libc (searched through its dependencies).
        self.operator_delete = self.function(b"_ZdlPv", "operator delete (_ZdlPv, libstdc++)")?;
        self.operator_delete_array =
            self.function(b"_ZdaPv", "operator delete[] (_ZdaPv, libstdc++)")?;
        self.free = self.function(b"free", "free (libc)")?;
        Ok(parse)
    }

    /// # Safety
    /// `T` must be the function's C type.
    unsafe fn function<T: Copy>(&self, symbol: &[u8], name: &str) -> Result<T, CustomLibError> {
        self.library
            .get::<T>(symbol)
            .map(|f| *f)
            .map_err(|e| CustomLibError::Symbol {
                path: self.path.clone(),
                function: name.to_string(),
                reason: e.to_string(),
            })
    }

    fn failed(&self, function: &str) -> CustomLibError {
        CustomLibError::Failed {
            path: self.path.clone(),
            function: function.to_string(),
        }
    }
}

unsafe extern "C" fn noop(_: *mut c_void) {}

/// The `NvDsInferLayerInfo` of batch item `batch_index` of each output, and the names they
/// point to.
fn layer_infos(outputs: &[Tensor], batch_index: usize) -> (Vec<CString>, Vec<NvDsInferLayerInfo>) {
    let names: Vec<CString> = outputs.iter().map(|t| layer_name(&t.name)).collect();
    let layers = outputs
        .iter()
        .zip(&names)
        .enumerate()
        .map(|(index, (tensor, name))| {
            let item = tensor.batch_item(batch_index);
            NvDsInferLayerInfo::fp32_output(
                index,
                name,
                tensor.item_shape(),
                item.as_ptr(),
                item.len(),
            )
        })
        .collect();
    (names, layers)
}

/// A parser function of type `F` found in its library.
struct Loaded<F> {
    lib: CustomLib,
    function: String,
    parse: F,
}

impl<F: Copy> Loaded<F> {
    /// Opens `path` and finds `function` in it.
    ///
    /// # Safety
    /// `F` must be `function`'s C type.
    unsafe fn load(path: &Path, function: &str) -> Result<Loaded<F>, CustomLibError> {
        let mut lib = CustomLib::load(path)?;
        let parse = lib.parser::<F>(function)?;
        Ok(Loaded {
            lib,
            function: function.to_string(),
            parse,
        })
    }

    fn failed(&self) -> CustomLibError {
        self.lib.failed(&self.function)
    }
}

impl<F> std::fmt::Debug for Loaded<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} in {}", self.function, self.lib.path.display())
    }
}

impl<O: Copy> Loaded<ParseDetectionsFn<O>> {
    /// Runs the parser on batch item `batch_index` of `outputs` (in the config's output order)
    /// and returns whether it succeeded and the objects it appended (their storage already given
    /// back).
    fn parse_detections(
        &self,
        outputs: &[Tensor],
        batch_index: usize,
        params: &ParseParams,
    ) -> (bool, Vec<O>) {
        let (_names, layers) = layer_infos(outputs, batch_index);
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
        let mut found = CxxVector::<O>::empty();
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
                (self.lib.operator_delete)(found.start as *mut c_void);
                objects
            }
        };
        (ok, objects)
    }
}

impl ObjectDetectionInfo {
    fn detection(&self) -> Detection {
        Detection {
            class_id: self.class_id,
            confidence: self.detection_confidence,
            bbox: BBox {
                left: self.left,
                top: self.top,
                width: self.width,
                height: self.height,
            },
        }
    }
}

/// A custom bounding-box parser, loaded.
#[derive(Debug)]
pub struct CustomBboxParser(Loaded<ParseDetectionsFn<ObjectDetectionInfo>>);

impl CustomBboxParser {
    /// Opens `path` and finds `function` in it.
    pub fn load(path: &Path, function: &str) -> Result<CustomBboxParser, CustomLibError> {
        // SAFETY: the type is NvDsInferParseCustomFunc's C ABI.
        unsafe { Loaded::load(path, function) }.map(CustomBboxParser)
    }

    /// Runs the parser on batch item `batch_index` of `outputs` (in the config's output order);
    /// the objects are in network pixels.
    pub fn parse(
        &self,
        outputs: &[Tensor],
        batch_index: usize,
        params: &ParseParams,
    ) -> Result<Vec<Detection>, CustomLibError> {
        let (ok, objects) = self.0.parse_detections(outputs, batch_index, params);
        if !ok {
            return Err(self.0.failed());
        }
        Ok(objects.iter().map(ObjectDetectionInfo::detection).collect())
    }
}

/// A custom instance-mask parser (network-type=3), loaded.
#[derive(Debug)]
pub struct CustomInstanceMaskParser(Loaded<ParseDetectionsFn<InstanceMaskInfo>>);

impl CustomInstanceMaskParser {
    /// Opens `path` and finds `function` in it.
    pub fn load(path: &Path, function: &str) -> Result<CustomInstanceMaskParser, CustomLibError> {
        // SAFETY: the type is NvDsInferInstanceMaskParseCustomFunc's C ABI.
        unsafe { Loaded::load(path, function) }.map(CustomInstanceMaskParser)
    }

    /// Runs the parser on batch item `batch_index` of `outputs` (in the config's output order):
    /// the objects in network pixels, each with its mask if the parser gave one (its threshold
    /// left 0).
    pub fn parse(
        &self,
        outputs: &[Tensor],
        batch_index: usize,
        params: &ParseParams,
    ) -> Result<Vec<(Detection, Option<InstanceMask>)>, CustomLibError> {
        let (ok, objects) = self.0.parse_detections(outputs, batch_index, params);
        let masked = objects
            .iter()
            .map(|o| {
                let mask = (!o.mask.is_null()).then(|| {
                    let values = o.mask_size as usize / std::mem::size_of::<f32>();
                    // SAFETY: the parser's mask holds mask_size bytes from its operator new[],
                    // read once and given back to its operator delete[], as nvinfer does.
                    let data = unsafe {
                        let data = std::slice::from_raw_parts(o.mask, values).to_vec();
                        (self.0.lib.operator_delete_array)(o.mask as *mut c_void);
                        data
                    };
                    InstanceMask {
                        width: o.mask_width,
                        height: o.mask_height,
                        threshold: 0.0,
                        data,
                    }
                });
                (o.object.detection(), mask)
            })
            .collect();
        if !ok {
            return Err(self.0.failed());
        }
        Ok(masked)
    }
}

/// A custom classifier parser, loaded.
#[derive(Debug)]
pub struct CustomClassifierParser(Loaded<ParseClassifierFn>);

impl CustomClassifierParser {
    /// Opens `path` and finds `function` in it.
    pub fn load(path: &Path, function: &str) -> Result<CustomClassifierParser, CustomLibError> {
        // SAFETY: the type is NvDsInferClassiferParseCustomFunc's C ABI.
        unsafe { Loaded::load(path, function) }.map(CustomClassifierParser)
    }

    /// Runs the parser on batch item `batch_index` of `outputs`: the attributes (labels as the
    /// parser gave them) and the description string.
    pub fn parse(
        &self,
        outputs: &[Tensor],
        batch_index: usize,
        network: [u32; 3],
        classifier_threshold: f32,
    ) -> Result<(Vec<ClassifierAttribute>, String), CustomLibError> {
        let (_names, layers) = layer_infos(outputs, batch_index);
        let layers_vector = CxxVector::borrowing(&layers);
        let network = NvDsInferNetworkInfo {
            width: network[0],
            height: network[1],
            channels: network[2],
        };
        let mut found = CxxVector::<Attribute>::empty();
        let mut description = Box::new(CxxString {
            ptr: std::ptr::null_mut(),
            len: 0,
            local: [0; 16],
        });
        description.ptr = description.local.as_mut_ptr() as *mut c_char;
        // SAFETY: as in CustomBboxParser::parse; `description` is an empty std::string whose
        // buffer is its own, at a fixed address.
        let ok = unsafe {
            (self.0.parse)(
                &layers_vector,
                &network,
                classifier_threshold,
                &mut found,
                &mut *description,
            )
        };
        // SAFETY: [start, finish) holds the attributes the parser pushed, each label strdup'd
        // or null; the vector's and the string's heap storage (if any) came from its operator
        // new. Each is freed once.
        let (attributes, description) = unsafe {
            let attributes = if found.start.is_null() {
                Vec::new()
            } else {
                let len = found.finish.offset_from(found.start).max(0) as usize;
                let attributes: Vec<ClassifierAttribute> =
                    std::slice::from_raw_parts(found.start, len)
                        .iter()
                        .map(|a| {
                            let label = (!a.attribute_label.is_null()).then(|| {
                                let text = std::ffi::CStr::from_ptr(a.attribute_label)
                                    .to_string_lossy()
                                    .into_owned();
                                (self.0.lib.free)(a.attribute_label as *mut c_void);
                                text
                            });
                            ClassifierAttribute {
                                attribute_index: a.attribute_index,
                                class_id: a.attribute_value,
                                probability: a.attribute_confidence,
                                label,
                            }
                        })
                        .collect();
                (self.0.lib.operator_delete)(found.start as *mut c_void);
                attributes
            };
            let text = std::slice::from_raw_parts(description.ptr as *const u8, description.len);
            let text = String::from_utf8_lossy(text).into_owned();
            if description.ptr != description.local.as_mut_ptr() as *mut c_char {
                (self.0.lib.operator_delete)(description.ptr as *mut c_void);
            }
            (attributes, text)
        };
        if !ok {
            return Err(self.0.failed());
        }
        Ok((attributes, description))
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
        assert_eq!(offset_of!(InstanceMaskInfo, mask), 24);
        assert_eq!(offset_of!(InstanceMaskInfo, mask_size), 40);
        assert_eq!(size_of::<InstanceMaskInfo>(), 48);
        assert_eq!(offset_of!(Attribute, attribute_label), 16);
        assert_eq!(size_of::<CxxString>(), 32);
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
