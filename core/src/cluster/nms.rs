//! Per-class non-maximum suppression as nvinfer's `nonMaximumSuppression`.

use crate::objects::{BBox, Detection};

/// nvinfer's IoU: overlaps measured per axis (`0` when the intervals do not meet), union
/// `area1 + area2 - overlap`, `0` when the union is `0`.
pub fn iou(a: &BBox, b: &BBox) -> f32 {
    fn overlap_1d(mut min1: f32, mut max1: f32, mut min2: f32, mut max2: f32) -> f32 {
        if min1 > min2 {
            std::mem::swap(&mut min1, &mut min2);
            std::mem::swap(&mut max1, &mut max2);
        }
        if max1 < min2 {
            0.0
        } else {
            max1.min(max2) - min2
        }
    }
    let ox = overlap_1d(a.left, a.left + a.width, b.left, b.left + b.width);
    let oy = overlap_1d(a.top, a.top + a.height, b.top, b.top + b.height);
    let overlap = ox * oy;
    let union = a.width * a.height + b.width * b.height - overlap;
    if union == 0.0 {
        0.0
    } else {
        overlap / union
    }
}

/// Greedy NMS over one class: candidates in descending confidence (stable), a candidate is kept
/// when its IoU with every kept box is `<= iou_threshold`. Output in descending confidence.
pub fn nms(detections: &[Detection], iou_threshold: f32) -> Vec<Detection> {
    let mut order: Vec<usize> = (0..detections.len()).collect();
    order.sort_by(|&a, &b| {
        detections[b]
            .confidence
            .total_cmp(&detections[a].confidence)
    });
    let mut kept: Vec<usize> = Vec::new();
    for i in order {
        let keep = kept
            .iter()
            .all(|&k| iou(&detections[i].bbox, &detections[k].bbox) <= iou_threshold);
        if keep {
            kept.push(i);
        }
    }
    kept.into_iter().map(|i| detections[i].clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_like_nvinfer() {
        let a = BBox::new(0.0, 0.0, 10.0, 10.0);
        assert_eq!(iou(&a, &a), 1.0);
        assert!((iou(&a, &BBox::new(1.0, 1.0, 10.0, 10.0)) - 81.0 / 119.0).abs() < 1e-6);
        assert_eq!(iou(&a, &BBox::new(20.0, 0.0, 10.0, 10.0)), 0.0);
        assert_eq!(iou(&BBox::default(), &BBox::default()), 0.0);
    }
}
