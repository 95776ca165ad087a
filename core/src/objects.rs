//! What decoders produce and the element attaches: boxes, detections, classifier attributes,
//! segmentation maps.

/// An axis-aligned box in pixels: `left`/`top` is the top-left corner.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct BBox {
    pub left: f32,
    pub top: f32,
    pub width: f32,
    pub height: f32,
}

impl BBox {
    pub fn new(left: f32, top: f32, width: f32, height: f32) -> Self {
        BBox {
            left,
            top,
            width,
            height,
        }
    }

    pub fn from_ltrb(left: f32, top: f32, right: f32, bottom: f32) -> Self {
        BBox {
            left,
            top,
            width: right - left,
            height: bottom - top,
        }
    }

    pub fn right(&self) -> f32 {
        self.left + self.width
    }

    pub fn bottom(&self) -> f32 {
        self.top + self.height
    }

    pub fn area(&self) -> f32 {
        self.width.max(0.0) * self.height.max(0.0)
    }

    pub fn intersection(&self, other: &BBox) -> f32 {
        let w = self.right().min(other.right()) - self.left.max(other.left);
        let h = self.bottom().min(other.bottom()) - self.top.max(other.top);
        if w <= 0.0 || h <= 0.0 {
            0.0
        } else {
            w * h
        }
    }

    pub fn iou(&self, other: &BBox) -> f32 {
        let inter = self.intersection(other);
        let union = self.area() + other.area() - inter;
        if union <= 0.0 {
            0.0
        } else {
            inter / union
        }
    }

    /// Clips the box to `[0, width) x [0, height)`.
    pub fn clipped(&self, width: f32, height: f32) -> BBox {
        let left = self.left.clamp(0.0, width);
        let top = self.top.clamp(0.0, height);
        let right = self.right().clamp(0.0, width);
        let bottom = self.bottom().clamp(0.0, height);
        BBox::from_ltrb(left, top, right, bottom)
    }
}

/// One detected object. Decoders give `bbox` in network-input pixels; the element maps it to
/// frame pixels before clustering filters that are expressed in frame pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    pub class_id: u32,
    pub confidence: f32,
    pub bbox: BBox,
}

/// An object's instance mask from an instance-segmentation parser (nvinfer's network-type=3,
/// `parse-bbox-instance-mask-func-name`): `width` x `height` values, row-major, that the
/// parser lays over the object's box (probabilities, or keypoints for pose and landmark
/// parsers); `threshold` is the config's segmentation-threshold, as nvinfer sets
/// `NvOSD_MaskParams.threshold`.
#[derive(Clone, Debug, PartialEq)]
pub struct InstanceMask {
    pub width: u32,
    pub height: u32,
    pub threshold: f32,
    pub data: Vec<f32>,
}

/// One classifier result: the winning class of one output layer (an "attribute" in nvinfer's
/// words; multi-output classifiers give one per output layer).
#[derive(Clone, Debug, PartialEq)]
pub struct ClassifierAttribute {
    /// Index of the output layer this attribute comes from.
    pub attribute_index: u32,
    pub class_id: u32,
    pub probability: f32,
    pub label: Option<String>,
}

/// Per-pixel class map of a semantic segmentation network, in network output resolution.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentationMap {
    pub width: usize,
    pub height: usize,
    pub num_classes: usize,
    /// `class_map[y * width + x]`: class id, or -1 where no class beats segmentation-threshold.
    pub class_map: Vec<i32>,
    /// The output's values, `[c * height * width + y * width + x]` whatever the output's layout
    /// (DeepStream's `class_probabilities_map`).
    pub class_probabilities: Vec<f32>,
}
