//! The JSON-lines record of one frame.

use serde_json::{json, Value};

use crate::meta::ObjectMeta;

/// One frame as a JSON object:
/// `{"frame": N, "pts": ns|null, "objects": [{"id", "parent_id", "left", "top", "width",
/// "height", "label", "class_id", "confidence", "unique_id", "classifier": [{"unique_id",
/// "attribute", "class_id", "label", "probability"}]}]}`, plus `"mask": {"width", "height",
/// "threshold", "data"}` on objects with an instance mask. Frame-level classifier results
/// (primary classifiers) come as objects with `"label": null` covering the whole frame.
pub fn frame_record(frame_number: u64, pts_ns: Option<u64>, objects: &[ObjectMeta]) -> Value {
    let objects: Vec<Value> = objects
        .iter()
        .map(|o| {
            let (left, top, width, height) = o.rect;
            let mut record = json!({
                "id": o.id,
                "parent_id": o.parent_id,
                "left": left,
                "top": top,
                "width": width,
                "height": height,
                "label": o.label,
                "class_id": o.class_id,
                "confidence": o.confidence,
                "unique_id": o.unique_id,
                "classifier": o.classifications.iter().map(|c| json!({
                    "unique_id": c.unique_id,
                    "attribute": c.attribute_index,
                    "class_id": c.class_id,
                    "label": c.label,
                    "probability": c.probability,
                })).collect::<Vec<_>>(),
            });
            if let Some(mask) = &o.mask {
                record["mask"] = json!({
                    "width": mask.width,
                    "height": mask.height,
                    "threshold": mask.threshold,
                    "data": mask.data,
                });
            }
            record
        })
        .collect();
    json!({ "frame": frame_number, "pts": pts_ns, "objects": objects })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::Classification;

    #[test]
    fn record_carries_boxes_labels_and_classifier_results() {
        let object = ObjectMeta {
            id: 4,
            parent_id: -1,
            roi_type: "car".into(),
            rect: (10, 20, 30, 40),
            class_id: Some(2),
            label: Some("car".into()),
            confidence: Some(0.75),
            unique_id: Some(1),
            border_color: None,
            bg_color: None,
            batch_index: None,
            mask: Some(nvtl_core::InstanceMask {
                width: 2,
                height: 1,
                threshold: 0.5,
                data: vec![0.25, 1.0],
            }),
            classifications: vec![Classification {
                unique_id: 2,
                attribute_index: 0,
                class_id: 3,
                label: "red".into(),
                probability: 0.5,
            }],
        };
        let line = frame_record(7, Some(700_000_000), &[object]).to_string();
        let parsed: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["frame"], 7);
        assert_eq!(parsed["pts"], 700_000_000u64);
        let o = &parsed["objects"][0];
        assert_eq!(
            (o["left"].as_u64(), o["height"].as_u64()),
            (Some(10), Some(40))
        );
        assert_eq!(o["label"], "car");
        assert_eq!(o["classifier"][0]["label"], "red");
        assert_eq!(o["mask"]["width"], 2);
        assert_eq!(o["mask"]["data"], json!([0.25, 1.0]));
        assert!(!line.contains('\n'));
    }
}
