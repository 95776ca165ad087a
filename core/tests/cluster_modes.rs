//! Every cluster-mode and the filters around it, on boxes whose results were worked out by hand.

use nvtl_core::cluster::{cluster, cluster_and_filter, ClusterParams, GROUP_RECTANGLES_CONFIDENCE};
use nvtl_core::config::{ClassAttrs, ClassAttrsTable, ClusterMode};
use nvtl_core::{BBox, Detection};

fn det(class_id: u32, confidence: f32, l: f32, t: f32, w: f32, h: f32) -> Detection {
    Detection {
        class_id,
        confidence,
        bbox: BBox::new(l, t, w, h),
    }
}

fn table(all: ClassAttrs) -> ClassAttrsTable {
    ClassAttrsTable {
        all,
        per_class: Default::default(),
    }
}

fn run(mode: ClusterMode, attrs: &ClassAttrsTable, dets: Vec<Detection>) -> Vec<Detection> {
    let p = ClusterParams {
        mode,
        attrs,
        network_width: 1000.0,
        network_height: 1000.0,
        filter_out_class_ids: &[],
    };
    cluster_and_filter(dets, &p)
}

fn assert_close(got: &[Detection], want: &[Detection]) {
    assert_eq!(got.len(), want.len(), "got {got:?}\nwant {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.class_id, w.class_id, "{g:?} vs {w:?}");
        assert!((g.confidence - w.confidence).abs() < 1e-5, "{g:?} vs {w:?}");
        for (a, b) in [
            (g.bbox.left, w.bbox.left),
            (g.bbox.top, w.bbox.top),
            (g.bbox.width, w.bbox.width),
            (g.bbox.height, w.bbox.height),
        ] {
            assert!((a - b).abs() < 1e-4, "{g:?} vs {w:?}");
        }
    }
}

fn nms_input() -> Vec<Detection> {
    vec![
        det(1, 0.5, 0.0, 0.0, 10.0, 10.0),   // E: other class, kept
        det(0, 0.8, 1.0, 1.0, 10.0, 10.0),   // B: IoU with A 81/119 > 0.3
        det(0, 0.9, 0.0, 0.0, 10.0, 10.0),   // A
        det(0, 0.7, 20.0, 20.0, 10.0, 10.0), // C: apart
        det(0, 0.25, 0.0, 0.0, 10.0, 10.0),  // D: duplicate of A
        det(0, 0.1, 50.0, 50.0, 10.0, 10.0), // below pre-cluster-threshold 0.2
    ]
}

#[test]
fn nms_per_class_sorted_by_confidence() {
    let attrs = table(ClassAttrs::default());
    let got = run(ClusterMode::Nms, &attrs, nms_input());
    assert_close(
        &got,
        &[
            det(0, 0.9, 0.0, 0.0, 10.0, 10.0),
            det(0, 0.7, 20.0, 20.0, 10.0, 10.0),
            det(1, 0.5, 0.0, 0.0, 10.0, 10.0),
        ],
    );
}

#[test]
fn nms_post_cluster_threshold_is_strict_and_topk_per_class() {
    let attrs = table(ClassAttrs {
        post_cluster_threshold: 0.7,
        ..Default::default()
    });
    let got = run(ClusterMode::Nms, &attrs, nms_input());
    assert_close(&got, &[det(0, 0.9, 0.0, 0.0, 10.0, 10.0)]);

    let attrs = table(ClassAttrs {
        topk: 1,
        ..Default::default()
    });
    let got = run(ClusterMode::Nms, &attrs, nms_input());
    assert_close(
        &got,
        &[
            det(0, 0.9, 0.0, 0.0, 10.0, 10.0),
            det(1, 0.5, 0.0, 0.0, 10.0, 10.0),
        ],
    );

    // A per-class nms-iou-threshold: class 0 at 0.9 keeps B.
    let mut attrs = table(ClassAttrs::default());
    attrs.per_class.insert(
        0,
        ClassAttrs {
            nms_iou_threshold: 0.9,
            ..Default::default()
        },
    );
    let got = run(ClusterMode::Nms, &attrs, nms_input());
    assert_eq!(got.iter().filter(|d| d.class_id == 0).count(), 3);
}

#[test]
fn none_mode_only_thresholds_and_topk() {
    let attrs = table(ClassAttrs::default());
    let got = run(ClusterMode::None, &attrs, nms_input());
    // Pre-cluster threshold drops the 0.1 one; class order ascending, input order kept.
    let confs: Vec<(u32, f32)> = got.iter().map(|d| (d.class_id, d.confidence)).collect();
    assert_eq!(
        confs,
        vec![(0, 0.8), (0, 0.9), (0, 0.7), (0, 0.25), (1, 0.5)]
    );

    let attrs = table(ClassAttrs {
        topk: 2,
        ..Default::default()
    });
    let got = run(ClusterMode::None, &attrs, nms_input());
    let confs: Vec<(u32, f32)> = got.iter().map(|d| (d.class_id, d.confidence)).collect();
    assert_eq!(confs, vec![(0, 0.9), (0, 0.8), (1, 0.5)]);

    let attrs = table(ClassAttrs {
        topk: 0,
        ..Default::default()
    });
    assert!(run(ClusterMode::None, &attrs, nms_input()).is_empty());
}

fn dbscan_attrs(min_boxes: i32) -> ClassAttrs {
    ClassAttrs {
        eps: 0.5,
        min_boxes,
        ..Default::default()
    }
}

#[test]
fn dbscan_merges_weighted_by_confidence() {
    let attrs = table(dbscan_attrs(2));
    let dets = vec![
        det(0, 0.9, 0.0, 0.0, 10.0, 10.0),
        det(0, 0.6, 1.0, 0.0, 10.0, 10.0), // IoU 90/110: distance 0.18 < 0.5
        det(0, 0.8, 50.0, 50.0, 10.0, 10.0), // alone: noise
    ];
    let got = run(ClusterMode::Dbscan, &attrs, dets.clone());
    // left = (0.9 * 0 + 0.6 * 1) / 1.5 = 0.4; confidence = max member.
    assert_close(&got, &[det(0, 0.9, 0.4, 0.0, 10.0, 10.0)]);

    // minBoxes 0: no clustering at all.
    let attrs0 = table(dbscan_attrs(0));
    assert_eq!(run(ClusterMode::Dbscan, &attrs0, dets.clone()).len(), 3);

    // dbscan-min-score above the summed confidence 1.5 drops the cluster.
    let attrs = table(ClassAttrs {
        dbscan_min_score: 2.0,
        ..dbscan_attrs(2)
    });
    assert!(run(ClusterMode::Dbscan, &attrs, dets.clone()).is_empty());

    // post-cluster-threshold (drops confidence < threshold, 0.9 itself stays).
    let attrs = table(ClassAttrs {
        post_cluster_threshold: 0.9,
        ..dbscan_attrs(2)
    });
    assert_eq!(run(ClusterMode::Dbscan, &attrs, dets).len(), 1);
}

#[test]
fn dbscan_area_to_hit_ratio_filter() {
    // sqrt(300 * 300) / (2 members + 1) = 100 > 60: nvinfer drops the cluster.
    let attrs = table(dbscan_attrs(2));
    let dets = vec![
        det(0, 0.9, 0.0, 0.0, 300.0, 300.0),
        det(0, 0.8, 1.0, 1.0, 300.0, 300.0),
    ];
    assert!(run(ClusterMode::Dbscan, &attrs, dets).is_empty());
}

fn chain() -> Vec<Detection> {
    // P0 ~ P1 (distance 0.46), P1 ~ P2, P0 !~ P2 (distance 0.75) with eps 0.5.
    vec![
        det(0, 0.9, 0.0, 0.0, 10.0, 10.0),
        det(0, 0.8, 3.0, 0.0, 10.0, 10.0),
        det(0, 0.7, 6.0, 0.0, 10.0, 10.0),
        det(0, 0.95, 100.0, 60.0, 10.0, 10.0), // noise
    ]
}

#[test]
fn dbscan_expands_one_level_like_nvinfer() {
    // NvDsInferDBScan walks only the seed's own neighbour list: P2 opens a second cluster.
    let attrs = table(dbscan_attrs(2));
    let got = run(ClusterMode::Dbscan, &attrs, chain());
    let l0 = (0.8 * 3.0) / (0.9 + 0.8);
    assert_close(
        &got,
        &[
            det(0, 0.9, l0, 0.0, 10.0, 10.0),
            det(0, 0.7, 6.0, 0.0, 10.0, 10.0),
        ],
    );
}

#[test]
fn hybrid_keeps_core_boxes_then_nms() {
    let attrs = table(dbscan_attrs(2));
    let got = run(ClusterMode::Hybrid, &attrs, chain());
    // Noise goes; NMS (0.3): P1 overlaps P0 by 0.54, P2 overlaps P0 by 0.25 and stays.
    assert_close(
        &got,
        &[
            det(0, 0.9, 0.0, 0.0, 10.0, 10.0),
            det(0, 0.7, 6.0, 0.0, 10.0, 10.0),
        ],
    );
    // minBoxes 0: plain NMS, noise stays.
    let attrs = table(dbscan_attrs(0));
    let got = run(ClusterMode::Hybrid, &attrs, chain());
    assert_eq!(got.len(), 3);
    assert!((got[0].confidence - 0.95).abs() < 1e-6);
}

#[test]
fn group_rectangles_mode_truncates_groups_and_sets_nvinfer_confidence() {
    let attrs = table(ClassAttrs {
        group_threshold: 1,
        eps: 0.2,
        ..Default::default()
    });
    let dets = vec![
        det(0, 0.9, 100.9, 100.2, 50.7, 80.9),
        det(0, 0.8, 103.0, 98.0, 52.0, 79.0),
        det(0, 0.7, 98.0, 102.0, 49.0, 83.0),
        det(0, 0.6, 10.0, 30.0, 20.0, 20.0), // alone: n = 1 <= 1
        det(2, 0.5, 150.0, 40.0, 30.0, 30.0),
        det(2, 0.5, 152.0, 41.0, 29.0, 31.0),
    ];
    let got = run(ClusterMode::GroupRectangles, &attrs, dets.clone());
    let c = GROUP_RECTANGLES_CONFIDENCE;
    assert_close(
        &got,
        &[
            det(0, c, 100.0, 100.0, 50.0, 81.0),
            det(2, c, 151.0, 40.0, 30.0, 30.0),
        ],
    );
    // group-threshold 0 (nvinfer's default): boxes pass, truncated, with confidence -0.1.
    let attrs = table(ClassAttrs::default());
    let got = run(ClusterMode::GroupRectangles, &attrs, dets);
    assert_eq!(got.len(), 6);
    assert_eq!(got[0].bbox, BBox::new(100.0, 100.0, 50.0, 80.0));
    assert!(got.iter().all(|d| d.confidence == c));
}

#[test]
fn filters_sizes_roi_and_class_ids() {
    let mut attrs = table(ClassAttrs {
        detected_min_w: 10,
        detected_max_h: 50,
        roi_top_offset: 5,
        roi_bottom_offset: 10,
        ..Default::default()
    });
    attrs.per_class.insert(3, ClassAttrs::default());
    let dets = vec![
        det(0, 0.9, 0.0, 10.0, 20.0, 20.0),   // kept
        det(0, 0.9, 30.0, 10.0, 9.0, 20.0),   // narrower than 10
        det(0, 0.9, 60.0, 10.0, 20.0, 51.0),  // taller than 50
        det(0, 0.9, 90.0, 4.0, 20.0, 20.0),   // top above roi-top-offset 5
        det(0, 0.9, 120.0, 71.0, 20.0, 20.0), // bottom 91 > 100 - 10
        det(0, 0.9, 150.0, 70.0, 20.0, 20.0), // bottom 90: kept
        det(3, 0.9, 0.0, 0.0, 5.0, 99.0),     // class 3 has no limits
        det(4, 0.9, 0.0, 10.0, 20.0, 20.0),   // filtered out by id
    ];
    let p = ClusterParams {
        mode: ClusterMode::None,
        attrs: &attrs,
        network_width: 200.0,
        network_height: 100.0,
        filter_out_class_ids: &[4],
    };
    let got = cluster_and_filter(dets, &p);
    let lefts: Vec<(u32, f32)> = got.iter().map(|d| (d.class_id, d.bbox.left)).collect();
    assert_eq!(lefts, vec![(0, 0.0), (0, 150.0), (3, 0.0)]);
}

#[test]
fn cluster_without_filters_and_nan_safety() {
    let attrs = table(ClassAttrs::default());
    let dets = vec![
        det(0, f32::NAN, 0.0, 0.0, 10.0, 10.0),
        det(0, 0.5, f32::NAN, 0.0, 10.0, 10.0),
        det(0, 0.6, 0.0, 0.0, f32::INFINITY, 10.0),
    ];
    for mode in [
        ClusterMode::GroupRectangles,
        ClusterMode::Dbscan,
        ClusterMode::Nms,
        ClusterMode::Hybrid,
        ClusterMode::None,
    ] {
        let a = table(ClassAttrs {
            min_boxes: 1,
            eps: 0.5,
            group_threshold: 1,
            ..Default::default()
        });
        let _ = cluster(dets.clone(), mode, &a);
        let _ = cluster(dets.clone(), mode, &attrs);
    }
    assert!(cluster(Vec::new(), ClusterMode::Nms, &attrs).is_empty());
}
