//! DBSCAN clustering with the semantics of DeepStream's NvDsInferDBScan (`cluster-mode=1`, and
//! the first half of the hybrid mode 3).
//!
//! - Distance between two boxes: `1 - IoU` (IoU = intersection / (area1 + area2 -
//!   intersection)); two boxes are neighbours when the distance is strictly below `eps`.
//! - A box is a core box when it has at least `minBoxes - 1` neighbours (itself counts).
//! - Boxes are visited in input order. An unvisited core box opens a new cluster; each of its
//!   neighbours that was not visited yet is visited, and joins the cluster when it is a core box
//!   itself. The expansion stops there (NvDsInferDBScan only walks the seed's own neighbour list),
//!   and non-core (border) boxes are never labelled.
//! - Each cluster becomes one box: the confidence-weighted mean of left, top, width and height,
//!   with the highest member confidence. Clusters whose summed confidence is below
//!   `dbscan-min-score` are dropped, and so are clusters failing the area-to-hit-ratio filter
//!   (always on in nvinfer): `sqrt(width * height) / (members + 1) > 60` (nvinfer counts one
//!   member too many; reproduced).
//! - Hybrid: no merging; the core boxes that got a cluster label are returned unchanged, in
//!   input order, for NMS.

use crate::objects::{BBox, Detection};

/// nvinfer's area-to-hit-ratio threshold (`ATHR_THRESHOLD`).
pub const ATHR_THRESHOLD: f32 = 60.0;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DbscanParams {
    pub eps: f32,
    pub min_boxes: i32,
    pub min_score: f32,
}

fn distance(a: &BBox, b: &BBox) -> f32 {
    let isect_w = (a.right().min(b.right()) - a.left.max(b.left)).max(0.0);
    let isect_h = (a.bottom().min(b.bottom()) - a.top.max(b.top)).max(0.0);
    let isect = isect_w * isect_h;
    1.0 - isect / ((a.width * a.height + b.width * b.height) - isect)
}

/// Clusters one class's detections (see the module docs). `hybrid` returns the labelled core
/// boxes instead of merged clusters.
pub fn dbscan(detections: &[Detection], params: &DbscanParams, hybrid: bool) -> Vec<Detection> {
    let n = detections.len();
    let min_boxes = params.min_boxes.max(0) as usize;
    let neighbours = |i: usize| -> Vec<usize> {
        (0..n)
            .filter(|&j| j != i && distance(&detections[i].bbox, &detections[j].bbox) < params.eps)
            .collect()
    };
    let mut visited = vec![false; n];
    let mut labels: Vec<Option<usize>> = vec![None; n];
    let mut clusters = 0usize;
    for i in 0..n {
        if visited[i] {
            continue;
        }
        visited[i] = true;
        let seed_neighbours = neighbours(i);
        if seed_neighbours.len() + 1 < min_boxes {
            continue;
        }
        labels[i] = Some(clusters);
        for j in seed_neighbours {
            if visited[j] {
                continue;
            }
            visited[j] = true;
            if neighbours(j).len() + 1 >= min_boxes {
                labels[j] = Some(clusters);
            }
        }
        clusters += 1;
    }

    if hybrid {
        return (0..n)
            .filter(|&i| labels[i].is_some())
            .map(|i| detections[i].clone())
            .collect();
    }

    let mut out = Vec::new();
    for c in 0..clusters {
        let (mut l, mut t, mut w, mut h) = (0f32, 0f32, 0f32, 0f32);
        let mut total = 0f32;
        let mut max_conf = 0f32;
        let mut elements = 1u32;
        let mut class_id = 0;
        for (i, d) in detections.iter().enumerate() {
            if labels[i] != Some(c) {
                continue;
            }
            let s = d.confidence;
            max_conf = max_conf.max(s);
            total += s;
            l += s * d.bbox.left;
            t += s * d.bbox.top;
            w += s * d.bbox.width;
            h += s * d.bbox.height;
            elements += 1;
            class_id = d.class_id;
        }
        if total < params.min_score {
            continue;
        }
        let bbox = BBox::new(l / total, t / total, w / total, h / total);
        let athr = (bbox.width * bbox.height).sqrt() / elements as f32;
        if athr > ATHR_THRESHOLD {
            continue;
        }
        out.push(Detection {
            class_id,
            confidence: max_conf,
            bbox,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_is_one_minus_iou() {
        let a = BBox::new(0.0, 0.0, 10.0, 10.0);
        assert_eq!(distance(&a, &a), 0.0);
        assert!(
            (distance(&a, &BBox::new(3.0, 0.0, 10.0, 10.0)) - (1.0 - 70.0 / 130.0)).abs() < 1e-6
        );
        assert_eq!(distance(&a, &BBox::new(50.0, 0.0, 10.0, 10.0)), 1.0);
    }
}
