//! Which regions of a frame one inference covers: the whole frame (primary mode) or the
//! upstream objects of that frame that pass the secondary-mode filters.

use nvtl_core::config::{InferConfig, ProcessMode};
use nvtl_core::preprocess::Rect;

use crate::meta;

/// What to run the model on in one frame of `size`: the whole frame (primary; parent -1) or the
/// upstream objects of that frame that pass the secondary-mode filters (parent = object id).
pub(super) fn inference_targets(
    config: &InferConfig,
    (frame_width, frame_height): (u32, u32),
    batch_index: Option<u32>,
    upstream: &[meta::ObjectMeta],
) -> Vec<(i32, Rect)> {
    match config.process_mode {
        ProcessMode::Primary => vec![(
            -1,
            Rect {
                x: 0,
                y: 0,
                width: frame_width as usize,
                height: frame_height as usize,
            },
        )],
        ProcessMode::Secondary => upstream
            .iter()
            .filter(|o| o.batch_index.unwrap_or(0) == batch_index.unwrap_or(0))
            .filter(|o| o.roi_type != meta::FRAME_ROI_TYPE && o.unique_id != Some(config.unique_id))
            .filter(|o| {
                config.operate_on_gie_id < 0 || o.unique_id == Some(config.operate_on_gie_id as u32)
            })
            .filter(|o| {
                config.operate_on_class_ids.is_empty()
                    || o.class_id
                        .is_some_and(|c| config.operate_on_class_ids.contains(&c))
            })
            .filter_map(|o| {
                let (x, y, w, h) = o.rect;
                let (x, y) = (x.min(frame_width), y.min(frame_height));
                let (w, h) = (w.min(frame_width - x), h.min(frame_height - y));
                let fits = |v: u32, min: u32, max: u32| v >= min.max(1) && (max == 0 || v <= max);
                (fits(
                    w,
                    config.input_object_min_width,
                    config.input_object_max_width,
                ) && fits(
                    h,
                    config.input_object_min_height,
                    config.input_object_max_height,
                ))
                .then_some((
                    o.id,
                    Rect {
                        x: x as usize,
                        y: y as usize,
                        width: w as usize,
                        height: h as usize,
                    },
                ))
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(
        id: i32,
        unique_id: u32,
        class_id: u32,
        batch_index: Option<u32>,
    ) -> meta::ObjectMeta {
        meta::ObjectMeta {
            id,
            parent_id: -1,
            roi_type: "car".into(),
            rect: (10, 20, 100, 50),
            class_id: Some(class_id),
            label: None,
            confidence: Some(0.9),
            unique_id: Some(unique_id),
            border_color: None,
            bg_color: None,
            classifications: Vec::new(),
            batch_index,
            mask: None,
        }
    }

    #[test]
    fn secondary_targets_are_the_frame_s_own_filtered_objects() {
        let config = InferConfig {
            process_mode: ProcessMode::Secondary,
            operate_on_gie_id: 1,
            operate_on_class_ids: vec![2],
            unique_id: 5,
            ..InferConfig::default()
        };
        let upstream = vec![
            object(1, 1, 2, Some(0)),
            object(2, 1, 2, Some(1)),
            object(3, 1, 7, Some(1)),
            object(4, 9, 2, Some(1)),
        ];
        let ids = |batch: Option<u32>| -> Vec<i32> {
            inference_targets(&config, (640, 480), batch, &upstream)
                .into_iter()
                .map(|(id, _)| id)
                .collect()
        };
        assert_eq!(ids(Some(0)), vec![1]);
        assert_eq!(
            ids(Some(1)),
            vec![2],
            "other class and other gie are filtered out"
        );
        assert_eq!(ids(None), vec![1], "single-frame buffers are batch entry 0");
        let (_, rect) = inference_targets(&config, (50, 40), Some(0), &upstream)[0];
        assert_eq!(
            (rect.x, rect.y, rect.width, rect.height),
            (10, 20, 40, 20),
            "clipped to the frame"
        );
    }

    #[test]
    fn primary_target_is_the_whole_frame() {
        let targets = inference_targets(&InferConfig::default(), (640, 480), Some(3), &[]);
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].0, -1);
        assert_eq!((targets[0].1.width, targets[0].1.height), (640, 480));
    }
}
