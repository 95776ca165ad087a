//! nvinfer's object history for secondary classifiers: an object a tracker follows (a DeepStream
//! object with a tracker id) is classified once, and again only when its box has grown by more
//! than 20% in area since, or when more than `secondary-reinfer-interval` frames of its source
//! have passed (nvinfer's default, `G_MAXINT`, means never). In between, the last result is
//! attached again. Untracked objects are classified on every frame. With classifier-async-mode,
//! an object stays under inference from the frame its crop is queued until the result comes
//! back, and is not queued again meanwhile. A secondary detector given a
//! secondary-reinfer-interval looks into a tracked object only once more than that many frames
//! have passed since it last did, whatever the growth.

use std::collections::HashMap;

use nvtl_core::ClassifierOutput;

/// nvinfer re-infers an object whose area grew by more than this fraction.
const REINFER_AREA_GROWTH: f64 = 0.2;
/// An object its source has not shown for more than this many frames is forgotten, as nvinfer
/// forgets it (its `CLEANUP_ACCESS_CRITERIA`): an object a tracker finds again within that
/// keeps its result.
const FORGET_AFTER_FRAMES: i64 = 150;

/// A tracked object as one frame shows it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct TrackedObject {
    pub source_id: u32,
    pub object_id: u64,
    /// The frame's number in its source (`NvDsFrameMeta.frame_num`).
    pub frame_num: i64,
    /// The box's area in frame pixels.
    pub area: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Decision {
    Infer,
    /// Attach this result again instead of inferring.
    Reuse(ClassifierOutput),
}

struct Entry {
    inferred_frame: i64,
    inferred_area: f64,
    output: ClassifierOutput,
    seen_frame: i64,
    under_inference: bool,
}

impl Entry {
    /// `object` inferred (or queued) on this frame, with `output` attached meanwhile.
    fn inferred(object: &TrackedObject, output: ClassifierOutput, under_inference: bool) -> Entry {
        Entry {
            inferred_frame: object.frame_num,
            inferred_area: object.area,
            output,
            seen_frame: object.frame_num,
            under_inference,
        }
    }
}

#[derive(Default)]
pub(super) struct ObjectHistory {
    entries: HashMap<(u32, u64), Entry>,
}

impl ObjectHistory {
    /// Whether to classify `object` on this frame.
    pub(super) fn decide(&mut self, object: &TrackedObject, reinfer_interval: u32) -> Decision {
        let Some(entry) = self.entries.get_mut(&(object.source_id, object.object_id)) else {
            return Decision::Infer;
        };
        entry.seen_frame = object.frame_num;
        if entry.under_inference {
            return Decision::Reuse(entry.output.clone());
        }
        let restarted = object.frame_num < entry.inferred_frame;
        let grown = object.area > (1.0 + REINFER_AREA_GROWTH) * entry.inferred_area;
        let due = object.frame_num - entry.inferred_frame > i64::from(reinfer_interval);
        if restarted || grown || due {
            Decision::Infer
        } else {
            Decision::Reuse(entry.output.clone())
        }
    }

    /// Whether a secondary detector looks into `object` on this frame: as nvinfer, only when more
    /// than `reinfer_interval` frames have passed since it last did (or its source restarted).
    pub(super) fn detection_due(&mut self, object: &TrackedObject, reinfer_interval: u32) -> bool {
        let Some(entry) = self.entries.get_mut(&(object.source_id, object.object_id)) else {
            return true;
        };
        entry.seen_frame = object.frame_num;
        object.frame_num < entry.inferred_frame
            || object.frame_num - entry.inferred_frame > i64::from(reinfer_interval)
    }

    /// Remembers what `object` was classified as on this frame (a detector's objects: an empty
    /// output).
    pub(super) fn record(&mut self, object: &TrackedObject, output: &ClassifierOutput) {
        self.entries.insert(
            (object.source_id, object.object_id),
            Entry::inferred(object, output.clone(), false),
        );
    }

    /// Marks `object` as queued for classification on this frame (classifier-async-mode) and
    /// returns its last result, to attach until the new one comes.
    pub(super) fn begin(&mut self, object: &TrackedObject) -> ClassifierOutput {
        let key = (object.source_id, object.object_id);
        let last = self
            .entries
            .remove(&key)
            .map(|entry| entry.output)
            .unwrap_or_default();
        self.entries
            .insert(key, Entry::inferred(object, last.clone(), true));
        last
    }

    /// The result of a classification [`ObjectHistory::begin`] queued for `object` (as it was
    /// then). Dropped when the object was forgotten meanwhile.
    pub(super) fn finish(&mut self, object: &TrackedObject, output: ClassifierOutput) {
        if let Some(entry) = self
            .entries
            .get_mut(&(object.source_id, object.object_id))
            .filter(|entry| entry.under_inference && entry.inferred_frame == object.frame_num)
        {
            entry.output = output;
            entry.under_inference = false;
        }
    }

    /// Forgets the objects of `source_id` not seen for a while before `frame_num`, and those of
    /// a source that started again.
    pub(super) fn forget_stale(&mut self, source_id: u32, frame_num: i64) {
        self.entries.retain(|&(source, _), entry| {
            source != source_id
                || (entry.seen_frame <= frame_num
                    && frame_num - entry.seen_frame <= FORGET_AFTER_FRAMES)
        });
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use nvtl_core::ClassifierAttribute;

    fn red() -> ClassifierOutput {
        ClassifierOutput::described_by_labels(vec![ClassifierAttribute {
            attribute_index: 0,
            class_id: 2,
            probability: 0.9,
            label: Some("red".into()),
        }])
    }

    fn car(frame_num: i64, area: f64) -> TrackedObject {
        TrackedObject {
            source_id: 1,
            object_id: 7,
            frame_num,
            area,
        }
    }

    #[test]
    fn a_tracked_object_is_classified_once_by_default() {
        let mut history = ObjectHistory::default();
        let never = i32::MAX as u32;
        assert_eq!(history.decide(&car(0, 100.0), never), Decision::Infer);
        history.record(&car(0, 100.0), &red());
        for frame in 1..100 {
            assert_eq!(
                history.decide(&car(frame, 110.0), never),
                Decision::Reuse(red())
            );
            history.forget_stale(1, frame);
        }
        let other_source = TrackedObject {
            source_id: 2,
            ..car(5, 100.0)
        };
        assert_eq!(history.decide(&other_source, never), Decision::Infer);
    }

    #[test]
    fn growth_beyond_a_fifth_the_interval_or_a_restart_classify_again() {
        let mut history = ObjectHistory::default();
        history.record(&car(10, 100.0), &red());
        assert_eq!(history.decide(&car(11, 120.0), 100), Decision::Reuse(red()));
        assert_eq!(
            history.decide(&car(11, 120.5), 100),
            Decision::Infer,
            "grown"
        );
        assert_eq!(history.decide(&car(12, 100.0), 2), Decision::Reuse(red()));
        assert_eq!(
            history.decide(&car(13, 100.0), 2),
            Decision::Infer,
            "interval passed"
        );
        assert_eq!(
            history.decide(&car(3, 100.0), 100),
            Decision::Infer,
            "source restarted"
        );
    }

    #[test]
    fn an_object_under_asynchronous_inference_is_not_queued_again() {
        let mut history = ObjectHistory::default();
        assert_eq!(history.decide(&car(0, 100.0), 1), Decision::Infer);
        assert!(
            history.begin(&car(0, 100.0)).attributes.is_empty(),
            "nothing known yet"
        );
        for frame in 1..5 {
            assert_eq!(
                history.decide(&car(frame, 500.0), 1),
                Decision::Reuse(ClassifierOutput::default()),
                "frame {frame}: due and grown, but still under inference"
            );
        }
        history.finish(&car(0, 100.0), red());
        assert_eq!(history.decide(&car(5, 100.0), 1000), Decision::Reuse(red()));
        assert_eq!(history.decide(&car(5, 100.0), 1), Decision::Infer, "due");
        assert_eq!(history.begin(&car(5, 100.0)), red(), "kept meanwhile");
        history.finish(&car(0, 100.0), ClassifierOutput::default());
        assert_eq!(
            history.decide(&car(6, 100.0), 1000),
            Decision::Reuse(red()),
            "a result for an older request does not end the newer one"
        );
        history.forget_stale(1, 6 + FORGET_AFTER_FRAMES + 1);
        history.finish(&car(5, 100.0), ClassifierOutput::default());
        assert_eq!(history.len(), 0, "a forgotten object's result is dropped");
    }

    #[test]
    fn a_secondary_detector_looks_again_only_after_the_interval_whatever_the_growth() {
        let mut history = ObjectHistory::default();
        assert!(history.detection_due(&car(0, 100.0), 2));
        history.record(&car(0, 100.0), &ClassifierOutput::default());
        let due: Vec<bool> = (1..6)
            .map(|frame| {
                let due = history.detection_due(&car(frame, 1000.0), 2);
                if due {
                    history.record(&car(frame, 1000.0), &ClassifierOutput::default());
                }
                due
            })
            .collect();
        assert_eq!(due, [false, false, true, false, false]);
        assert!(history.detection_due(&car(1, 100.0), 2), "source restarted");
    }

    #[test]
    fn objects_not_seen_for_a_while_are_forgotten() {
        let mut history = ObjectHistory::default();
        history.record(&car(0, 100.0), &red());
        let bus = TrackedObject {
            source_id: 3,
            ..car(0, 50.0)
        };
        history.record(&bus, &ClassifierOutput::default());
        history.forget_stale(1, FORGET_AFTER_FRAMES);
        assert_eq!(history.len(), 2);
        history.forget_stale(1, FORGET_AFTER_FRAMES + 1);
        assert_eq!(
            history.len(),
            1,
            "the car is forgotten, the other source's bus is not"
        );
        assert_eq!(
            history.decide(&car(FORGET_AFTER_FRAMES + 1, 100.0), 1000),
            Decision::Infer
        );
    }
}
