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

/// What a classifier found for one frame or object (nvinfer's classification output).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClassifierOutput {
    pub attributes: Vec<ClassifierAttribute>,
    /// nvinfer's description string (`descString`), DeepStream's on-screen text for the result:
    /// the built-in parsing writes each labelled attribute's label followed by a space, a custom
    /// parser whatever it likes. nvinfer attaches nothing to DeepStream metadata when it is
    /// empty.
    pub description: String,
}

impl ClassifierOutput {
    /// The output of nvinfer's built-in parsing, described by the attributes' labels.
    pub fn described_by_labels(attributes: Vec<ClassifierAttribute>) -> ClassifierOutput {
        let description = attributes
            .iter()
            .filter_map(|a| a.label.as_deref())
            .map(|label| format!("{label} "))
            .collect();
        ClassifierOutput {
            attributes,
            description,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn attribute(attribute_index: u32, label: Option<&str>) -> ClassifierAttribute {
        ClassifierAttribute {
            attribute_index,
            class_id: 0,
            probability: 0.9,
            label: label.map(str::to_string),
        }
    }

    #[test]
    fn the_built_in_description_is_each_label_and_a_space_as_nvinfer_writes_it() {
        let output = ClassifierOutput::described_by_labels(vec![
            attribute(0, Some("car")),
            attribute(1, None),
            attribute(2, Some("red")),
        ]);
        assert_eq!(output.description, "car red ");
        assert_eq!(output.attributes.len(), 3, "unlabelled attributes stay");
        assert_eq!(
            ClassifierOutput::described_by_labels(vec![attribute(0, None)]).description,
            "",
            "without labels there is nothing to describe"
        );
    }
}
