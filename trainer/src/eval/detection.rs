//! Detection metrics: COCO mAP computed exactly as pycocotools' `COCOeval` (bbox, area range
//! "all") does, and PASCAL VOC all-point interpolated AP; COCO json writers for results and
//! ground truth, so other tools can check the same numbers.
//!
//! Boxes are `[x1, y1, x2, y2]` in pixels (continuous coordinates, no `+1`); COCO files hold
//! `[x, y, width, height]`. Classes are indices `0..classes`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::EvalError;

/// One ground-truth object. `crowd` marks a region of many objects (COCO `iscrowd`, VOC
/// `difficult`): detections inside it are neither rewarded nor punished.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroundTruth {
    pub image_id: u64,
    pub class: usize,
    /// `[x1, y1, x2, y2]`, pixels.
    pub bbox: [f32; 4],
    pub crowd: bool,
}

/// One detection with its confidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub image_id: u64,
    pub class: usize,
    /// `[x1, y1, x2, y2]`, pixels.
    pub bbox: [f32; 4],
    pub score: f32,
}

/// Average precision of one class. All APs are in `0..=1`, or -1 when the class has no
/// (non-crowd) ground truth (pycocotools' convention); such classes are left out of every mean.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassAp {
    pub class: usize,
    /// AP at IoU 0.5.
    pub ap50: f64,
    /// AP averaged over IoU 0.50, 0.55, ..., 0.95.
    pub ap: f64,
    /// VOC all-point AP at the report's `voc_iou`.
    pub voc_ap: f64,
    /// Precision-recall curve at IoU 0.5 (at `voc_iou` for [`evaluate_voc`]): one point per
    /// ranked detection, best score first; precision is the interpolated (non-increasing)
    /// envelope that AP integrates. Empty when the class has no ground truth or no detection.
    pub precision: Vec<f64>,
    pub recall: Vec<f64>,
    /// Ground-truth objects that count (crowd regions excluded).
    pub gt_count: usize,
}

/// mAPs over the classes that have ground truth (-1 when none has).
///
/// From [`evaluate_coco`]: `map50_95`, `map50`, `map75` equal pycocotools' `stats[0..3]`, and
/// `voc_map` is the VOC all-point mAP at IoU 0.5. From [`evaluate_voc`]: every number uses VOC
/// all-point interpolation, `voc_map` at the requested IoU.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectionReport {
    pub map50: f64,
    pub map50_95: f64,
    pub map75: f64,
    pub voc_map: f64,
    /// The IoU threshold of `voc_map` and of each class's `voc_ap`.
    pub voc_iou: f64,
    /// One entry per class, `0..classes`, in order.
    pub per_class: Vec<ClassAp>,
}

impl DetectionReport {
    /// A text table: one row per class with ground truth (name from `names`, else `class N`):
    /// AP50, AP 0.5:0.95, VOC AP and the object count; then the mAPs.
    pub fn table(&self, names: &[String]) -> String {
        use std::fmt::Write as _;
        let name = |c: usize| {
            names
                .get(c)
                .cloned()
                .unwrap_or_else(|| format!("class {c}"))
        };
        let rows: Vec<&ClassAp> = self.per_class.iter().filter(|c| c.gt_count > 0).collect();
        let width = rows
            .iter()
            .map(|c| name(c.class).chars().count())
            .chain([5])
            .max()
            .unwrap_or(5);
        let voc = format!("VOC@{}", self.voc_iou);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<width$}  {:>6}  {:>9}  {:>8}  {:>7}",
            "class", "AP50", "AP50:95", voc, "objects"
        );
        for c in rows {
            let _ = writeln!(
                out,
                "{:<width$}  {:>6.4}  {:>9.4}  {:>8.4}  {:>7}",
                name(c.class),
                c.ap50,
                c.ap,
                c.voc_ap,
                c.gt_count
            );
        }
        let _ = writeln!(
            out,
            "mAP50 {:.4}  mAP50:95 {:.4}  mAP75 {:.4}  {voc} mAP {:.4}",
            self.map50, self.map50_95, self.map75, self.voc_map
        );
        out
    }
}

/// COCO's ten IoU thresholds 0.5:0.05:0.95, computed as numpy's `linspace` does (bit-exact).
fn coco_iou_thresholds() -> [f64; 10] {
    let step = (0.95f64 - 0.5) / 9.0;
    let mut t = [0.0; 10];
    for (i, v) in t.iter_mut().enumerate() {
        *v = i as f64 * step + 0.5;
    }
    t[9] = 0.95;
    t
}

/// COCO's 101 recall points 0:0.01:1, as numpy's `linspace` computes them.
fn coco_recall_points() -> [f64; 101] {
    let step = 1.0f64 / 100.0;
    let mut r = [0.0; 101];
    for (i, v) in r.iter_mut().enumerate() {
        *v = i as f64 * step;
    }
    r[100] = 1.0;
    r
}

/// COCO's area range "all": objects with a larger area are ignored.
const COCO_MAX_AREA: f64 = 1e5 * 1e5;

/// A box as COCO stores it: `x, y, w, h` in f64 (what a COCO json holds for our f32 corners).
#[derive(Clone, Copy, Debug)]
struct Xywh([f64; 4]);

impl Xywh {
    fn from_corners(b: [f32; 4]) -> Xywh {
        let [x1, y1, x2, y2] = b.map(f64::from);
        Xywh([x1, y1, x2 - x1, y2 - y1])
    }
    fn area(&self) -> f64 {
        self.0[2] * self.0[3]
    }
}

/// pycocotools' `bbIou` (maskApi.c): for a crowd region the union is the detection's area.
fn coco_iou(d: &Xywh, g: &Xywh, crowd: bool) -> f64 {
    let [dx, dy, dw, dh] = d.0;
    let [gx, gy, gw, gh] = g.0;
    let w = (dw + dx).min(gw + gx) - dx.max(gx);
    if w <= 0.0 {
        return 0.0;
    }
    let h = (dh + dy).min(gh + gy) - dy.max(gy);
    if h <= 0.0 {
        return 0.0;
    }
    let inter = w * h;
    let union = if crowd {
        dw * dh
    } else {
        dw * dh + gw * gh - inter
    };
    inter / union
}

/// Plain IoU of two corner boxes (VOC; no `+1`).
fn corner_iou(a: [f32; 4], b: [f32; 4]) -> f64 {
    let [ax1, ay1, ax2, ay2] = a.map(f64::from);
    let [bx1, by1, bx2, by2] = b.map(f64::from);
    let w = ax2.min(bx2) - ax1.max(bx1);
    let h = ay2.min(by2) - ay1.max(by1);
    if w <= 0.0 || h <= 0.0 {
        return 0.0;
    }
    let inter = w * h;
    inter / ((ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter)
}

fn check_box(kind: &'static str, index: usize, bbox: [f32; 4]) -> Result<(), EvalError> {
    let [x1, y1, x2, y2] = bbox;
    if !bbox.iter().all(|v| v.is_finite()) || x2 < x1 || y2 < y1 {
        return Err(EvalError::BadBox { kind, index, bbox });
    }
    Ok(())
}

fn check_inputs(gt: &[GroundTruth], pred: &[Prediction], classes: usize) -> Result<(), EvalError> {
    for (index, g) in gt.iter().enumerate() {
        if g.class >= classes {
            return Err(EvalError::ClassOutOfRange {
                kind: "ground truth",
                index,
                class: g.class,
                classes,
            });
        }
        check_box("ground truth", index, g.bbox)?;
    }
    for (index, p) in pred.iter().enumerate() {
        if p.class >= classes {
            return Err(EvalError::ClassOutOfRange {
                kind: "prediction",
                index,
                class: p.class,
                classes,
            });
        }
        check_box("prediction", index, p.bbox)?;
        if !p.score.is_finite() {
            return Err(EvalError::BadScore {
                index,
                score: p.score,
            });
        }
    }
    Ok(())
}

/// Indices of `gt` and `pred` per (class, image), each list in input order. Iterating the map
/// visits classes, then images, in ascending order: pycocotools' order.
type Groups = BTreeMap<(usize, u64), (Vec<usize>, Vec<usize>)>;

fn group(gt: &[GroundTruth], pred: &[Prediction]) -> Groups {
    let mut groups = Groups::new();
    for (i, g) in gt.iter().enumerate() {
        groups.entry((g.class, g.image_id)).or_default().0.push(i);
    }
    for (i, p) in pred.iter().enumerate() {
        groups.entry((p.class, p.image_id)).or_default().1.push(i);
    }
    groups
}

/// Stable sort of prediction indices by descending score (numpy's mergesort on `-score`).
fn by_score(pred: &[Prediction], indices: &mut [usize]) {
    indices.sort_by(|&a, &b| {
        f64::from(pred[b].score)
            .partial_cmp(&f64::from(pred[a].score))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
}

/// What pycocotools' `evaluateImg` keeps of one image and class.
struct ImageEval {
    /// Scores of the kept detections, best first.
    scores: Vec<f64>,
    /// Per IoU threshold, per detection: matched to a ground truth?
    matched: Vec<Vec<bool>>,
    /// Per IoU threshold, per detection: ignored (matched a crowd region, or out of range)?
    ignored: Vec<Vec<bool>>,
    /// Ground truths that count.
    gt_counted: usize,
}

fn coco_evaluate_image(
    gt: &[GroundTruth],
    pred: &[Prediction],
    gt_idx: &[usize],
    det_idx: &[usize],
    max_detections: usize,
    thresholds: &[f64],
) -> ImageEval {
    let gt_ignore = |i: usize| {
        let area = Xywh::from_corners(gt[i].bbox).area();
        gt[i].crowd || !(0.0..=COCO_MAX_AREA).contains(&area)
    };
    // Ground truth that counts first, order kept otherwise (numpy mergesort on the flag).
    let mut gts: Vec<usize> = gt_idx.to_vec();
    gts.sort_by_key(|&i| gt_ignore(i));
    let mut dets: Vec<usize> = det_idx.to_vec();
    by_score(pred, &mut dets);
    dets.truncate(max_detections);

    let gt_boxes: Vec<Xywh> = gts
        .iter()
        .map(|&i| Xywh::from_corners(gt[i].bbox))
        .collect();
    let gt_ignored: Vec<bool> = gts.iter().map(|&i| gt_ignore(i)).collect();
    let crowd: Vec<bool> = gts.iter().map(|&i| gt[i].crowd).collect();
    let det_boxes: Vec<Xywh> = dets
        .iter()
        .map(|&i| Xywh::from_corners(pred[i].bbox))
        .collect();
    let ious: Vec<Vec<f64>> = det_boxes
        .iter()
        .map(|d| {
            gt_boxes
                .iter()
                .zip(&crowd)
                .map(|(g, &c)| coco_iou(d, g, c))
                .collect()
        })
        .collect();

    let mut matched = vec![vec![false; dets.len()]; thresholds.len()];
    let mut ignored = vec![vec![false; dets.len()]; thresholds.len()];
    for (t, &threshold) in thresholds.iter().enumerate() {
        let mut gt_taken = vec![false; gts.len()];
        for d in 0..dets.len() {
            let mut best_iou = threshold.min(1.0 - 1e-10);
            let mut best: Option<usize> = None;
            for g in 0..gts.len() {
                if gt_taken[g] && !crowd[g] {
                    continue;
                }
                // Once matched to a counted object, never move on to an ignored one.
                if best.is_some_and(|m| !gt_ignored[m]) && gt_ignored[g] {
                    break;
                }
                if ious[d][g] < best_iou {
                    continue;
                }
                best_iou = ious[d][g];
                best = Some(g);
            }
            if let Some(m) = best {
                ignored[t][d] = gt_ignored[m];
                matched[t][d] = true;
                gt_taken[m] = true;
            }
        }
        for (d, b) in det_boxes.iter().enumerate() {
            let area = b.area();
            if !matched[t][d] && !(0.0..=COCO_MAX_AREA).contains(&area) {
                ignored[t][d] = true;
            }
        }
    }
    ImageEval {
        scores: dets.iter().map(|&i| f64::from(pred[i].score)).collect(),
        matched,
        ignored,
        gt_counted: gt_ignored.iter().filter(|&&i| !i).count(),
    }
}

/// pycocotools' `accumulate` for one class: per IoU threshold, the precision at the 101
/// recall points (None without ground truth), and the raw curve at the first threshold.
struct ClassCurves {
    precision_at_recall: Option<Vec<[f64; 101]>>,
    first_curve: (Vec<f64>, Vec<f64>),
    gt_count: usize,
}

fn coco_accumulate(images: &[ImageEval], thresholds: usize) -> ClassCurves {
    let gt_count: usize = images.iter().map(|e| e.gt_counted).sum();
    // (score, image, detection) in image order, then stable by descending score.
    let mut order: Vec<(f64, usize, usize)> = images
        .iter()
        .enumerate()
        .flat_map(|(i, e)| e.scores.iter().enumerate().map(move |(d, &s)| (s, i, d)))
        .collect();
    order.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
    if gt_count == 0 {
        return ClassCurves {
            precision_at_recall: None,
            first_curve: (Vec::new(), Vec::new()),
            gt_count,
        };
    }
    let recall_points = coco_recall_points();
    let mut per_threshold = Vec::with_capacity(thresholds);
    let mut first_curve = (Vec::new(), Vec::new());
    for t in 0..thresholds {
        let (mut tp, mut fp) = (0.0f64, 0.0f64);
        let mut recall = Vec::with_capacity(order.len());
        let mut precision = Vec::with_capacity(order.len());
        for &(_, i, d) in &order {
            let e = &images[i];
            if !e.ignored[t][d] {
                if e.matched[t][d] {
                    tp += 1.0;
                } else {
                    fp += 1.0;
                }
            }
            recall.push(tp / gt_count as f64);
            precision.push(tp / (fp + tp + f64::EPSILON));
        }
        for i in (1..precision.len()).rev() {
            if precision[i] > precision[i - 1] {
                precision[i - 1] = precision[i];
            }
        }
        let mut sampled = [0.0; 101];
        for (q, &r) in sampled.iter_mut().zip(recall_points.iter()) {
            let at = recall.partition_point(|&x| x < r);
            match precision.get(at) {
                Some(&p) => *q = p,
                None => break,
            }
        }
        per_threshold.push(sampled);
        if t == 0 {
            first_curve = (precision, recall);
        }
    }
    ClassCurves {
        precision_at_recall: Some(per_threshold),
        first_curve,
        gt_count,
    }
}

/// Mean of the values that are not -1 (undefined); -1 when all are.
fn mean_defined(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values
        .filter(|&v| v > -1.0)
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        -1.0
    } else {
        sum / n as f64
    }
}

/// COCO detection metrics, equal to pycocotools' `COCOeval` (iouType "bbox", area range
/// "all", `maxDets[-1] = max_detections`; with 100, `map50_95`, `map50`, `map75` are its
/// `stats[0]`, `stats[1]`, `stats[2]`). The evaluated images are every `image_id` in `gt` or
/// `pred`: predictions on an image without ground truth are false positives. Per image and
/// class only the `max_detections` best-scoring predictions count.
///
/// Errors: a class `>= classes`, a non-finite score, or a box that is not finite or has
/// `x2 < x1` / `y2 < y1`.
pub fn evaluate_coco(
    gt: &[GroundTruth],
    pred: &[Prediction],
    classes: usize,
    max_detections: usize,
) -> Result<DetectionReport, EvalError> {
    check_inputs(gt, pred, classes)?;
    let thresholds = coco_iou_thresholds();
    let groups = group(gt, pred);
    let mut per_class_images: Vec<Vec<ImageEval>> = (0..classes).map(|_| Vec::new()).collect();
    for (&(class, _), (gt_idx, det_idx)) in &groups {
        per_class_images[class].push(coco_evaluate_image(
            gt,
            pred,
            gt_idx,
            det_idx,
            max_detections,
            &thresholds,
        ));
    }
    let voc = voc_per_class(gt, pred, classes, &[0.5]);
    let mut per_class = Vec::with_capacity(classes);
    let (mut ap50s, mut ap75s) = (Vec::new(), Vec::new());
    for (class, images) in per_class_images.iter().enumerate() {
        let curves = coco_accumulate(images, thresholds.len());
        let (ap50, ap75, ap) = match &curves.precision_at_recall {
            Some(p) => {
                let mean = |q: &[f64; 101]| q.iter().sum::<f64>() / q.len() as f64;
                let all = p.iter().map(mean).sum::<f64>() / p.len() as f64;
                (mean(&p[0]), mean(&p[5]), all)
            }
            None => (-1.0, -1.0, -1.0),
        };
        ap50s.push(ap50);
        ap75s.push(ap75);
        let (precision, recall) = curves.first_curve;
        per_class.push(ClassAp {
            class,
            ap50,
            ap,
            voc_ap: voc[class].aps[0],
            precision,
            recall,
            gt_count: curves.gt_count,
        });
    }
    Ok(DetectionReport {
        map50: mean_defined(ap50s.into_iter()),
        map50_95: mean_defined(per_class.iter().map(|c| c.ap)),
        map75: mean_defined(ap75s.into_iter()),
        voc_map: mean_defined(per_class.iter().map(|c| c.voc_ap)),
        voc_iou: 0.5,
        per_class,
    })
}

/// VOC results of one class: AP per requested threshold, the curve at the first one.
struct VocClass {
    aps: Vec<f64>,
    precision: Vec<f64>,
    recall: Vec<f64>,
    gt_count: usize,
}

/// PASCAL VOC (2010+) evaluation per class at each of `thresholds`: predictions ranked by
/// score (ties in input order) over all images; each takes the ground truth it overlaps most
/// in its image; above the threshold (strictly) it is a true positive unless that object was
/// already taken (then a false positive) or is a crowd/difficult region (then ignored).
/// AP = area under the precision envelope at every recall step (all-point interpolation).
fn voc_per_class(
    gt: &[GroundTruth],
    pred: &[Prediction],
    classes: usize,
    thresholds: &[f64],
) -> Vec<VocClass> {
    let mut gt_by: BTreeMap<(usize, u64), Vec<usize>> = BTreeMap::new();
    for (i, g) in gt.iter().enumerate() {
        gt_by.entry((g.class, g.image_id)).or_default().push(i);
    }
    let mut preds_of: Vec<Vec<usize>> = (0..classes).map(|_| Vec::new()).collect();
    for (i, p) in pred.iter().enumerate() {
        preds_of[p.class].push(i);
    }
    let mut out = Vec::with_capacity(classes);
    for (class, dets) in preds_of.iter_mut().enumerate() {
        by_score(pred, dets);
        let gt_count = gt.iter().filter(|g| g.class == class && !g.crowd).count();
        let mut result = VocClass {
            aps: Vec::with_capacity(thresholds.len()),
            precision: Vec::new(),
            recall: Vec::new(),
            gt_count,
        };
        if gt_count == 0 {
            result.aps = vec![-1.0; thresholds.len()];
            out.push(result);
            continue;
        }
        for (t, &threshold) in thresholds.iter().enumerate() {
            let mut taken: BTreeSet<usize> = BTreeSet::new();
            let (mut tp, mut fp) = (0.0f64, 0.0f64);
            let mut recall = Vec::with_capacity(dets.len());
            let mut precision = Vec::with_capacity(dets.len());
            for &d in dets.iter() {
                let p = &pred[d];
                let candidates = gt_by.get(&(class, p.image_id));
                let mut best: Option<(usize, f64)> = None;
                for &g in candidates.into_iter().flatten() {
                    let iou = corner_iou(p.bbox, gt[g].bbox);
                    if best.is_none_or(|(_, b)| iou > b) {
                        best = Some((g, iou));
                    }
                }
                match best {
                    Some((g, iou)) if iou > threshold => {
                        if gt[g].crowd {
                            continue;
                        }
                        if taken.insert(g) {
                            tp += 1.0;
                        } else {
                            fp += 1.0;
                        }
                    }
                    _ => fp += 1.0,
                }
                recall.push(tp / gt_count as f64);
                precision.push(tp / (tp + fp).max(f64::EPSILON));
            }
            for i in (1..precision.len()).rev() {
                if precision[i] > precision[i - 1] {
                    precision[i - 1] = precision[i];
                }
            }
            // Sum of envelope precision over the recall steps (recall starts at 0).
            let mut ap = 0.0;
            let mut previous_recall = 0.0;
            for (&r, &p) in recall.iter().zip(&precision) {
                if r != previous_recall {
                    ap += (r - previous_recall) * p;
                    previous_recall = r;
                }
            }
            result.aps.push(ap);
            if t == 0 {
                result.precision = precision;
                result.recall = recall;
            }
        }
        out.push(result);
    }
    out
}

/// PASCAL VOC all-point interpolated AP (as the VOC 2010+ devkit computes it, with
/// continuous-coordinate IoU and no detection cap); crowd objects play VOC's "difficult".
/// `voc_map` is the mAP at `iou`; `map50`, `map75` and `map50_95` use the same method at 0.5,
/// 0.75 and averaged over 0.5:0.05:0.95. Each class's curve is at `iou`.
///
/// Errors as for [`evaluate_coco`], plus an `iou` outside `0..1`.
pub fn evaluate_voc(
    gt: &[GroundTruth],
    pred: &[Prediction],
    classes: usize,
    iou: f64,
) -> Result<DetectionReport, EvalError> {
    check_inputs(gt, pred, classes)?;
    if !(0.0..1.0).contains(&iou) {
        return Err(EvalError::BadIou(iou));
    }
    let mut thresholds = vec![iou];
    thresholds.extend(coco_iou_thresholds());
    let voc = voc_per_class(gt, pred, classes, &thresholds);
    let mut ap75s = Vec::with_capacity(classes);
    let per_class: Vec<ClassAp> = voc
        .into_iter()
        .enumerate()
        .map(|(class, v)| {
            // v.aps[0] is at `iou`, v.aps[1..] at the ten COCO thresholds.
            let coco = &v.aps[1..];
            ap75s.push(coco[5]);
            let ap = if v.gt_count == 0 {
                -1.0
            } else {
                coco.iter().sum::<f64>() / coco.len() as f64
            };
            ClassAp {
                class,
                ap50: coco[0],
                ap,
                voc_ap: v.aps[0],
                precision: v.precision,
                recall: v.recall,
                gt_count: v.gt_count,
            }
        })
        .collect();
    Ok(DetectionReport {
        map50: mean_defined(per_class.iter().map(|c| c.ap50)),
        map50_95: mean_defined(per_class.iter().map(|c| c.ap)),
        map75: mean_defined(ap75s.into_iter()),
        voc_map: mean_defined(per_class.iter().map(|c| c.voc_ap)),
        voc_iou: iou,
        per_class,
    })
}

/// A COCO category: the id written to json files and its name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CocoCategory {
    pub id: u64,
    pub name: String,
}

impl CocoCategory {
    /// Categories `1..=names.len()` for classes `0..names.len()`.
    pub fn contiguous(names: &[String]) -> Vec<CocoCategory> {
        names
            .iter()
            .enumerate()
            .map(|(i, name)| CocoCategory {
                id: i as u64 + 1,
                name: name.clone(),
            })
            .collect()
    }
}

fn coco_box(b: [f32; 4]) -> [f64; 4] {
    Xywh::from_corners(b).0
}

fn category_of(
    categories: &[CocoCategory],
    kind: &'static str,
    index: usize,
    class: usize,
) -> Result<u64, EvalError> {
    categories
        .get(class)
        .map(|c| c.id)
        .ok_or(EvalError::ClassOutOfRange {
            kind,
            index,
            class,
            classes: categories.len(),
        })
}

/// Writes `value` as json to `path` through a temporary file renamed into place, so a
/// half-written file never appears under `path`.
fn write_json_atomically(path: &Path, value: &serde_json::Value) -> Result<(), EvalError> {
    let io = |source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = std::path::PathBuf::from(tmp);
    let bytes = serde_json::to_vec(value).map_err(|e| io(std::io::Error::other(e)))?;
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}

/// Writes predictions as a COCO results file (`[{image_id, category_id, bbox: [x, y, w, h],
/// score}]`), what `COCO.loadRes` and other COCO tools read. `categories[class]` gives each
/// class's category id. Boxes and scores are written exactly (shortest round-trip decimals).
pub fn write_coco_results(
    path: &Path,
    pred: &[Prediction],
    categories: &[CocoCategory],
) -> Result<(), EvalError> {
    let mut out = Vec::with_capacity(pred.len());
    for (index, p) in pred.iter().enumerate() {
        out.push(serde_json::json!({
            "image_id": p.image_id,
            "category_id": category_of(categories, "prediction", index, p.class)?,
            "bbox": coco_box(p.bbox),
            "score": f64::from(p.score),
        }));
    }
    write_json_atomically(path, &serde_json::Value::Array(out))
}

/// Writes ground truth as a COCO instances file: `images` = the ids in `image_ids` and in
/// `gt` (sorted), `annotations` with ids from 1 in `gt` order, `area = w * h`, `iscrowd`, and
/// `categories`. With [`write_coco_results`] this lets pycocotools evaluate the same data.
pub fn write_coco_ground_truth(
    path: &Path,
    gt: &[GroundTruth],
    image_ids: &[u64],
    categories: &[CocoCategory],
) -> Result<(), EvalError> {
    let images: BTreeSet<u64> = image_ids
        .iter()
        .copied()
        .chain(gt.iter().map(|g| g.image_id))
        .collect();
    let mut annotations = Vec::with_capacity(gt.len());
    for (index, g) in gt.iter().enumerate() {
        let bbox = coco_box(g.bbox);
        annotations.push(serde_json::json!({
            "id": index + 1,
            "image_id": g.image_id,
            "category_id": category_of(categories, "ground truth", index, g.class)?,
            "bbox": bbox,
            "area": bbox[2] * bbox[3],
            "iscrowd": u8::from(g.crowd),
        }));
    }
    let value = serde_json::json!({
        "images": images.iter().map(|id| serde_json::json!({"id": id})).collect::<Vec<_>>(),
        "annotations": annotations,
        "categories": categories
            .iter()
            .map(|c| serde_json::json!({"id": c.id, "name": c.name}))
            .collect::<Vec<_>>(),
    });
    write_json_atomically(path, &value)
}
