//! OpenCV's `cv::groupRectangles(rectList, groupThreshold, eps)` (objdetect), reproduced on
//! integer rectangles for nvinfer's cluster-mode 0.
//!
//! 1. Partition the rectangles into equivalence classes of the "similar" relation (transitive
//!    closure): `r1` ~ `r2` when each of the four edges differs by at most
//!    `delta = eps * (min(w1, w2) + min(h1, h2)) / 2`. Classes are numbered in the order of their
//!    first member.
//! 2. Average each class: sums of x, y, width, height times `1/n` (in f32), rounded to nearest
//!    (ties to even, as `cvRound`).
//! 3. Drop classes with `n <= groupThreshold`.
//! 4. Drop a class `i` inside another surviving class `j` (each edge within
//!    `dx = round(w_j * eps)`, `dy = round(h_j * eps)`) when `n_j > max(3, n_i)` or `n_i < 3`.
//!
//! `groupThreshold <= 0` leaves the list unchanged.

use crate::objects::BBox;

/// OpenCV's `cv::Rect`: integer top-left corner and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub width: i32,
    pub height: i32,
}

impl Rect {
    pub fn new(x: i32, y: i32, width: i32, height: i32) -> Self {
        Rect {
            x,
            y,
            width,
            height,
        }
    }

    /// The `cv::Rect` nvinfer builds from a float box: each field truncated toward zero.
    pub fn truncated(b: &BBox) -> Self {
        let t = |v: f32| if v.is_finite() { v as i32 } else { 0 };
        Rect::new(t(b.left), t(b.top), t(b.width), t(b.height))
    }

    pub fn to_bbox(self) -> BBox {
        BBox::new(
            self.x as f32,
            self.y as f32,
            self.width as f32,
            self.height as f32,
        )
    }
}

fn similar(r1: &Rect, r2: &Rect, eps: f64) -> bool {
    let delta =
        eps * (f64::from(r1.width.min(r2.width)) + f64::from(r1.height.min(r2.height))) * 0.5;
    let close = |a: i64, b: i64| ((a - b).abs() as f64) <= delta;
    let (x1, y1, w1, h1) = (r1.x as i64, r1.y as i64, r1.width as i64, r1.height as i64);
    let (x2, y2, w2, h2) = (r2.x as i64, r2.y as i64, r2.width as i64, r2.height as i64);
    close(x1, x2) && close(y1, y2) && close(x1 + w1, x2 + w2) && close(y1 + h1, y2 + h2)
}

/// `cvRound` of an f32/f64 into i32 with saturation: nearest, ties to even.
fn round_sat(v: f64) -> i32 {
    let r = v.round_ties_even();
    if r.is_nan() {
        0
    } else {
        r.clamp(i32::MIN as f64, i32::MAX as f64) as i32
    }
}

/// Equivalence classes of the similarity relation; labels numbered by first member.
fn partition(rects: &[Rect], eps: f64) -> (Vec<usize>, usize) {
    let n = rects.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for i in 0..n {
        for j in (i + 1)..n {
            if similar(&rects[i], &rects[j], eps) || similar(&rects[j], &rects[i], eps) {
                let (ri, rj) = (root(&mut parent, i), root(&mut parent, j));
                if ri != rj {
                    parent[ri.max(rj)] = ri.min(rj);
                }
            }
        }
    }
    let mut label_of_root = vec![usize::MAX; n];
    let mut labels = vec![0; n];
    let mut classes = 0;
    for (i, label) in labels.iter_mut().enumerate() {
        let r = root(&mut parent, i);
        if label_of_root[r] == usize::MAX {
            label_of_root[r] = classes;
            classes += 1;
        }
        *label = label_of_root[r];
    }
    (labels, classes)
}

/// Groups `rects` in place, as OpenCV's `groupRectangles(rects, group_threshold, eps)`.
pub fn group_rectangles(rects: &mut Vec<Rect>, group_threshold: i32, eps: f64) {
    if group_threshold <= 0 || rects.is_empty() {
        return;
    }
    let (labels, classes) = partition(rects, eps);
    let mut sums = vec![[0i64; 4]; classes];
    let mut counts = vec![0i32; classes];
    for (r, &l) in rects.iter().zip(&labels) {
        sums[l][0] += i64::from(r.x);
        sums[l][1] += i64::from(r.y);
        sums[l][2] += i64::from(r.width);
        sums[l][3] += i64::from(r.height);
        counts[l] += 1;
    }
    let averaged: Vec<Rect> = sums
        .iter()
        .zip(&counts)
        .map(|(s, &n)| {
            let k = 1.0f32 / n as f32;
            // OpenCV sums into int fields and multiplies in float.
            let avg = |v: i64| round_sat(f64::from(v as i32 as f32 * k));
            Rect::new(avg(s[0]), avg(s[1]), avg(s[2]), avg(s[3]))
        })
        .collect();

    let mut out = Vec::new();
    for i in 0..classes {
        let r1 = averaged[i];
        let n1 = counts[i];
        if n1 <= group_threshold {
            continue;
        }
        let swallowed = (0..classes).any(|j| {
            let n2 = counts[j];
            if j == i || n2 <= group_threshold {
                return false;
            }
            let r2 = averaged[j];
            let dx = i64::from(round_sat(f64::from(r2.width) * eps));
            let dy = i64::from(round_sat(f64::from(r2.height) * eps));
            let (x1, y1, w1, h1) = (r1.x as i64, r1.y as i64, r1.width as i64, r1.height as i64);
            let (x2, y2, w2, h2) = (r2.x as i64, r2.y as i64, r2.width as i64, r2.height as i64);
            x1 >= x2 - dx
                && y1 >= y2 - dy
                && x1 + w1 <= x2 + w2 + dx
                && y1 + h1 <= y2 + h2 + dy
                && (n2 > 3.max(n1) || n1 < 3)
        });
        if !swallowed {
            out.push(r1);
        }
    }
    *rects = out;
}
