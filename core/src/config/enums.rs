//! nvinfer's enumerated keys, with the integer values nvinfer uses in its config files.

/// `model-color-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ModelColorFormat {
    #[default]
    Rgb = 0,
    Bgr = 1,
    Gray = 2,
}

/// `network-input-order` (and `segmentation-output-order`): 0 NCHW, 1 NHWC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum TensorOrder {
    #[default]
    Nchw = 0,
    Nhwc = 1,
}

/// `scaling-filter`: nvinfer maps it to NvBufSurfTransform's interpolation; 0 is nearest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ScalingFilter {
    #[default]
    Nearest = 0,
    Bilinear = 1,
}

/// `network-type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum NetworkType {
    #[default]
    Detector = 0,
    Classifier = 1,
    Segmentation = 2,
    InstanceSegmentation = 3,
    /// 100: "other" — no post-processing, output-tensor-meta only.
    Other = 100,
}

/// `network-mode`: precision of a TensorRT engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum NetworkMode {
    #[default]
    Fp32 = 0,
    Int8 = 1,
    Fp16 = 2,
    Best = 3,
}

/// `process-mode`: 1 primary (full frame), 2 secondary (objects from an upstream element).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ProcessMode {
    #[default]
    Primary = 1,
    Secondary = 2,
}

/// `cluster-mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ClusterMode {
    /// OpenCV `groupRectangles()` (nvinfer's default).
    #[default]
    GroupRectangles = 0,
    Dbscan = 1,
    Nms = 2,
    /// DBSCAN, then NMS.
    Hybrid = 3,
    None = 4,
}
