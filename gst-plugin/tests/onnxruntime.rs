//! nvtlinfer with `backend=onnxruntime` (feature `onnxruntime`, onnxruntime's CPU execution
//! provider) finds what `backend=cpu` (tract) finds in dog.jpg, and `backend=auto` on the
//! CPU-only wheel ends on tract.
#![cfg(feature = "onnxruntime")]

mod common;

use common::*;
use gst::prelude::*;
use gst_check::Harness;

fn run(backend: &str) -> (Vec<Object>, String) {
    ort_library();
    init();
    let bundle = bundle("centernet_mobilenetv3_coco");
    let mut h = Harness::new_parse(&format!(
        "nvtlinfer backend={backend} config-file-path={}",
        bundle.config.display()
    ));
    h.set_src_caps_str("video/x-raw,format=RGB,width=768,height=576,framerate=10/1");
    let (w, hgt, rgb) = rgb_image(&asset("dog.jpg"));
    let stride = (w as usize * 3).div_ceil(4) * 4;
    let mut data = vec![0u8; stride * hgt as usize];
    for y in 0..hgt as usize {
        data[y * stride..y * stride + w as usize * 3]
            .copy_from_slice(&rgb[y * w as usize * 3..(y + 1) * w as usize * 3]);
    }
    let out = h.push_and_pull(gst::Buffer::from_mut_slice(data)).unwrap();
    let stats = h
        .find_element("nvtlinfer")
        .unwrap()
        .property::<gst::Structure>("stats");
    (objects(&out), stats.get::<String>("backend").unwrap())
}

#[test]
fn onnxruntime_backend_finds_what_tract_finds() {
    let (tract, tract_backend) = run("cpu");
    let (ort, ort_backend) = run("onnxruntime");
    assert_eq!(
        (tract_backend.as_str(), ort_backend.as_str()),
        ("cpu", "onnxruntime")
    );
    assert!(
        ort.iter().any(|o| o.label.as_deref() == Some("dog")),
        "{ort:?}"
    );
    assert_eq!(ort.len(), tract.len(), "{ort:?} vs {tract:?}");
    for (a, b) in tract.iter().zip(&ort) {
        assert_eq!(a.label, b.label);
        let (ra, rb) = (a.rect, b.rect);
        for (x, y) in [(ra.0, rb.0), (ra.1, rb.1), (ra.2, rb.2), (ra.3, rb.3)] {
            assert!(x.abs_diff(y) <= 1, "{a:?} vs {b:?}");
        }
        assert!((a.confidence.unwrap() - b.confidence.unwrap()).abs() < 1e-3);
    }
    let (_, auto_backend) = run("auto");
    assert_eq!(
        auto_backend, "cpu",
        "the PyPI wheel has no TensorRT or CUDA provider"
    );
}
