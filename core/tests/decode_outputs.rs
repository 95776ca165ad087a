//! Classifier and segmentation decoders, and the errors of `check_outputs` / `decode`.

use nvtl_core::config::ClassAttrsTable;
use nvtl_core::decode::{check_outputs, decode, DecodeContext, DecodeError, Decoded, Parser};
use nvtl_core::{ClassifierAttribute, Tensor};

fn ctx(attrs: &ClassAttrsTable, num_classes: usize) -> DecodeContext<'_> {
    DecodeContext {
        network_width: 64,
        network_height: 64,
        num_classes,
        class_attrs: attrs,
        classifier_threshold: 0.5,
        segmentation_threshold: 0.5,
    }
}

fn shapes(v: &[(&str, &[usize])]) -> Vec<(String, Vec<usize>)> {
    v.iter().map(|(n, s)| (n.to_string(), s.to_vec())).collect()
}

#[test]
fn classifier_one_attribute_per_layer() {
    let t = vec![
        Tensor::new("colour", vec![1, 3], vec![0.1, 0.7, 0.2]), // already softmaxed
        Tensor::new("make", vec![1, 2, 1, 1], vec![2.0, 0.0]),  // logits -> softmax
        Tensor::new("type", vec![1, 3], vec![0.3, 0.3, 0.4]),   // nothing above 0.5
    ];
    let attrs = ClassAttrsTable::default();
    let Decoded::Attributes(got) = decode(Parser::Classifier, &t, 0, &ctx(&attrs, 0)).unwrap()
    else {
        panic!("expected attributes");
    };
    let p = 2f32.exp() / (2f32.exp() + 1.0);
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0],
        ClassifierAttribute {
            attribute_index: 0,
            class_id: 1,
            probability: 0.7,
            label: None
        }
    );
    assert_eq!((got[1].attribute_index, got[1].class_id), (1, 0));
    assert!((got[1].probability - p).abs() < 1e-6);
}

#[test]
fn classifier_threshold_is_strict_like_nvinfer() {
    let t = vec![Tensor::new("prob", vec![1, 2], vec![0.5, 0.5])];
    let attrs = ClassAttrsTable::default();
    let got = decode(Parser::Classifier, &t, 0, &ctx(&attrs, 0)).unwrap();
    assert_eq!(got, Decoded::Attributes(vec![]));
}

#[test]
fn segmentation_nchw_and_nhwc() {
    // 3 classes, 2x2. Pixel values per class (NCHW planes).
    let nchw = vec![
        0.9, 0.1, 0.2, 0.3, // class 0
        0.05, 0.8, 0.2, 0.3, // class 1
        0.05, 0.1, 0.6, 0.4, // class 2
    ];
    let attrs = ClassAttrsTable::default();
    let t = vec![Tensor::new("seg", vec![1, 3, 2, 2], nchw.clone())];
    let Decoded::Segmentation(m) = decode(Parser::Segmentation, &t, 0, &ctx(&attrs, 3)).unwrap()
    else {
        panic!()
    };
    assert_eq!((m.width, m.height, m.num_classes), (2, 2, 3));
    assert_eq!(m.class_map, vec![0, 1, 2, -1]);
    assert_eq!(
        m.class_probabilities, nchw,
        "the output's values, class planes"
    );

    let mut nhwc = vec![0.0; 12];
    for c in 0..3 {
        for i in 0..4 {
            nhwc[i * 3 + c] = nchw[c * 4 + i];
        }
    }
    let t = vec![Tensor::new("seg", vec![1, 2, 2, 3], nhwc)];
    let Decoded::Segmentation(m2) = decode(Parser::Segmentation, &t, 0, &ctx(&attrs, 3)).unwrap()
    else {
        panic!()
    };
    assert_eq!(m2, m, "NHWC values are handed out as class planes too");
}

#[test]
fn check_outputs_accepts_fitting_models() {
    let ok = [
        (
            Parser::DetectNetV2,
            shapes(&[
                ("output_cov/Sigmoid", &[1, 4, 34, 60]),
                ("output_bbox/BiasAdd", &[1, 16, 34, 60]),
            ]),
            4,
        ),
        (
            Parser::CenterNet,
            shapes(&[
                ("tower_0/keypoints", &[1, 80, 128, 128]),
                ("tower_0/wh", &[1, 4, 128, 128]),
            ]),
            80,
        ),
        (Parser::YoloV8, shapes(&[("output0", &[1, 84, 8400])]), 80),
        (Parser::YoloV5, shapes(&[("output", &[1, 25200, 85])]), 80),
        (
            Parser::Ssd,
            shapes(&[("boxes", &[1, 1917, 4]), ("scores", &[1, 1917, 91])]),
            91,
        ),
        (
            Parser::BlazeFace,
            shapes(&[
                ("regressors", &[1, 896, 16]),
                ("classificators", &[1, 896, 1]),
            ]),
            1,
        ),
        (Parser::Classifier, shapes(&[("prob", &[1, 1000])]), 0),
        (
            Parser::Segmentation,
            shapes(&[("seg", &[1, 21, 64, 64])]),
            21,
        ),
    ];
    for (p, s, n) in ok {
        check_outputs(p, &s, n).unwrap_or_else(|e| panic!("{p}: {e}"));
    }
}

#[test]
fn check_outputs_names_the_misfit() {
    let e = check_outputs(
        Parser::DetectNetV2,
        &shapes(&[
            ("conv2d_cov/Sigmoid", &[1, 3, 34, 60]),
            ("conv2d_bbox", &[1, 8, 34, 60]),
        ]),
        3,
    )
    .unwrap_err();
    assert!(
        matches!(&e, DecodeError::BadShape { output, .. } if output == "conv2d_bbox"),
        "{e}"
    );
    assert!(
        e.to_string().contains("conv2d_bbox") && e.to_string().contains("12"),
        "{e}"
    );

    let e = check_outputs(Parser::YoloV8, &shapes(&[("output0", &[1, 85, 8400])]), 80).unwrap_err();
    assert!(
        matches!(&e, DecodeError::BadShape { output, .. } if output == "output0"),
        "{e}"
    );
    assert!(e.to_string().contains("84"), "{e}");

    let e = check_outputs(Parser::CenterNet, &shapes(&[("prob", &[1, 1000])]), 80).unwrap_err();
    assert!(matches!(e, DecodeError::MissingOutput { .. }), "{e}");
    assert!(e.to_string().contains("prob"), "{e}");

    let e = check_outputs(
        Parser::DetectNetV2,
        &shapes(&[("output_bbox", &[1, 4, 2, 2])]),
        1,
    )
    .unwrap_err();
    assert!(e.to_string().contains("cov"), "{e}");

    let e = check_outputs(
        Parser::BlazeFace,
        &shapes(&[
            ("regressors", &[1, 2944, 16]),
            ("classificators", &[1, 2944, 1]),
        ]),
        1,
    )
    .unwrap_err();
    assert!(e.to_string().contains("896"), "{e}");

    let e = check_outputs(
        Parser::Ssd,
        &shapes(&[("boxes", &[1, 10, 4]), ("scores", &[1, 10, 1])]),
        1,
    )
    .unwrap_err();
    assert!(e.to_string().contains("background"), "{e}");

    let e = check_outputs(
        Parser::Classifier,
        &shapes(&[("feat", &[1, 1280, 7, 7])]),
        0,
    )
    .unwrap_err();
    assert!(
        matches!(&e, DecodeError::BadShape { output, .. } if output == "feat"),
        "{e}"
    );

    let e = check_outputs(Parser::Segmentation, &shapes(&[("x", &[1, 10])]), 0).unwrap_err();
    assert!(matches!(e, DecodeError::MissingOutput { .. }), "{e}");
}

#[test]
fn decode_errors_instead_of_panics() {
    let attrs = ClassAttrsTable::default();
    let c = ctx(&attrs, 0);
    // Batch index past the batch.
    let t = vec![Tensor::new("output0", vec![1, 6, 3], vec![0.0; 18])];
    let e = decode(Parser::YoloV8, &t, 1, &c).unwrap_err();
    assert!(
        matches!(
            e,
            DecodeError::BatchIndex {
                index: 1,
                batch: 1,
                ..
            }
        ),
        "{e}"
    );
    // Data that does not match the shape (fields are public, so this can happen).
    let bad = Tensor {
        name: "output0".into(),
        shape: vec![1, 6, 3],
        data: vec![0.0; 5],
    };
    let e = decode(Parser::YoloV8, &[bad], 0, &c).unwrap_err();
    assert!(matches!(e, DecodeError::DataLength { .. }), "{e}");
    // Every parser on every odd shape: errors or results, never a panic.
    let odd: Vec<Vec<usize>> = vec![
        vec![],
        vec![0],
        vec![1],
        vec![1, 0],
        vec![1, 1],
        vec![1, 4],
        vec![1, 0, 4],
        vec![1, 3, 4],
        vec![1, 4, 0],
        vec![1, 896, 1],
        vec![1, 896, 16],
        vec![1, 4, 1, 1],
        vec![1, 1, 1, 1],
        vec![1, 0, 2, 2],
        vec![1, 4, 0, 3],
        vec![2, 4, 3, 3],
    ];
    for p in Parser::ALL {
        for a in &odd {
            for b in &odd {
                let ta = Tensor::zeros("a_cov", a.clone());
                let tb = Tensor::zeros("b_bbox", b.clone());
                let _ = decode(p, &[ta.clone(), tb.clone()], 0, &c);
                let _ = decode(p, &[ta], 0, &c);
                let _ = check_outputs(p, &[("x".into(), a.clone()), ("y".into(), b.clone())], 3);
            }
        }
        let _ = decode(p, &[], 0, &c);
    }
}
