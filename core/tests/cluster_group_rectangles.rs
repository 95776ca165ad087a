//! OpenCV `groupRectangles` reproduction, checked against OpenCV 4.10 (opencv-python-headless
//! 4.10.0.84, `cv2.groupRectangles(rects, thr, eps)`); the expected lists below are its output.

use nvtl_core::cluster::{group_rectangles, Rect};

fn rects(v: &[[i32; 4]]) -> Vec<Rect> {
    v.iter()
        .map(|r| Rect::new(r[0], r[1], r[2], r[3]))
        .collect()
}

fn grouped(input: &[[i32; 4]], thr: i32, eps: f64) -> Vec<[i32; 4]> {
    let mut r = rects(input);
    group_rectangles(&mut r, thr, eps);
    r.into_iter()
        .map(|r| [r.x, r.y, r.width, r.height])
        .collect()
}

const R1: [[i32; 4]; 8] = [
    [100, 100, 50, 80],
    [103, 98, 52, 79],
    [98, 102, 49, 83],
    [300, 40, 30, 30],
    [302, 41, 29, 31],
    [10, 300, 20, 20],
    [110, 120, 20, 30],
    [111, 121, 21, 29],
];

#[test]
fn matches_opencv_on_mixed_groups() {
    assert_eq!(
        grouped(&R1, 1, 0.2),
        vec![[100, 100, 50, 81], [301, 40, 30, 30]]
    );
    assert_eq!(grouped(&R1, 2, 0.2), vec![[100, 100, 50, 81]]);
    assert_eq!(grouped(&R1, 0, 0.2), R1.to_vec());
    assert_eq!(grouped(&R1, 1, 0.05), Vec::<[i32; 4]>::new());
    assert_eq!(
        grouped(&R1, 1, 0.5),
        vec![[100, 100, 50, 81], [301, 40, 30, 30]]
    );
    assert_eq!(grouped(&R1, 3, 0.2), Vec::<[i32; 4]>::new());
}

#[test]
fn matches_opencv_rounding_ties_to_even() {
    // Means 0.5, 0.5, 10.25, 10.5 -> 0, 0, 10, 10 (cvRound).
    let r2 = [
        [0, 0, 10, 10],
        [1, 1, 11, 11],
        [0, 0, 10, 11],
        [1, 1, 10, 10],
    ];
    assert_eq!(grouped(&r2, 1, 0.3), vec![[0, 0, 10, 10]]);
    assert_eq!(grouped(&r2, 2, 0.3), vec![[0, 0, 10, 10]]);
}

#[test]
fn matches_opencv_inner_rectangle_rule() {
    let big = [
        [100, 100, 100, 100],
        [102, 101, 99, 100],
        [99, 100, 101, 98],
        [100, 102, 100, 101],
        [101, 99, 100, 100],
    ];
    let inner = [[130, 130, 40, 40], [131, 129, 41, 40], [129, 131, 40, 41]];
    // 5 big vs 3 inner: n2 > max(3, n1) -> the inner group goes.
    let r4: Vec<[i32; 4]> = big.iter().chain(inner.iter()).copied().collect();
    assert_eq!(grouped(&r4, 1, 0.2), vec![[100, 100, 100, 100]]);
    assert_eq!(grouped(&r4, 2, 0.2), vec![[100, 100, 100, 100]]);
    // 3 big vs 3 inner: neither rule applies, both stay.
    let r5: Vec<[i32; 4]> = big[..3].iter().chain(inner.iter()).copied().collect();
    assert_eq!(
        grouped(&r5, 1, 0.2),
        vec![[100, 100, 100, 99], [130, 130, 40, 40]]
    );
    assert_eq!(
        grouped(&r5, 2, 0.2),
        vec![[100, 100, 100, 99], [130, 130, 40, 40]]
    );
    // Small pair (n < 3) inside a group of 5 identical + 1: suppressed.
    let r3 = [
        [100, 100, 100, 100],
        [100, 100, 100, 100],
        [100, 100, 100, 100],
        [100, 100, 100, 100],
        [101, 99, 102, 101],
        [120, 120, 40, 40],
        [121, 121, 40, 40],
    ];
    assert_eq!(grouped(&r3, 1, 0.2), vec![[100, 100, 100, 100]]);
    assert_eq!(grouped(&r3, 1, 0.1), vec![[100, 100, 100, 100]]);
}

#[test]
fn empty_and_degenerate_inputs_do_not_panic() {
    assert!(grouped(&[], 1, 0.2).is_empty());
    assert_eq!(
        grouped(&[[0, 0, 0, 0], [0, 0, 0, 0]], 1, 0.2),
        vec![[0, 0, 0, 0]]
    );
    assert!(grouped(&[[-5, -5, -1, -1]], 1, f64::NAN).is_empty());
}
