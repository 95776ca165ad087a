//! Training batches: images decoded, augmented and pre-processed exactly as nvtlinfer feeds the
//! model (nvtl_core's preprocess with the bundle's nvinfer keys), boxes mapped to network pixels.

use image::RgbImage;
use nvtl_core::preprocess::{self, FrameView, PixelFormat, PreprocessParams, Rect};
use nvtl_core::BBox;
use rand::SeedableRng;

use crate::data::augment::Augmenter;
use crate::data::Sample;
use crate::heads::Object;

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("reading image {path}: {reason}")]
    Image { path: String, reason: String },
    #[error("pre-processing {path}: {reason}")]
    Preprocess { path: String, reason: String },
}

/// Network input of a batch plus the targets in network pixels.
pub struct Batch {
    pub input: Vec<f32>,
    /// NCHW or NHWC, as the model wants.
    pub shape: [usize; 4],
    /// Classifier labels (one per image; images without one get usize::MAX).
    pub labels: Vec<usize>,
    /// Detector objects per image: (class, [left, top, right, bottom]) in network pixels.
    pub objects: Vec<Vec<Object>>,
}

/// One image prepared for the network.
struct Prepared {
    input: Vec<f32>,
    objects: Vec<Object>,
}

fn prepare(
    sample: &Sample,
    params: &PreprocessParams,
    augmenter: Option<&Augmenter>,
    seed: u64,
) -> Result<Prepared, BatchError> {
    let path = sample.image.display().to_string();
    let image: RgbImage = image::open(&sample.image)
        .map_err(|e| BatchError::Image {
            path: path.clone(),
            reason: e.to_string(),
        })?
        .to_rgb8();
    let mut boxes: Vec<(usize, [f32; 4])> =
        sample.objects.iter().map(|o| (o.class, o.bbox)).collect();
    let image = match augmenter {
        Some(augmenter) => {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let (image, augmented) = augmenter.apply(image, &boxes, &mut rng);
            boxes = augmented;
            image
        }
        None => image,
    };
    let (width, height) = (image.width() as usize, image.height() as usize);
    let frame = FrameView {
        format: PixelFormat::Rgb,
        width,
        height,
        planes: vec![image.as_raw()],
        strides: vec![width * 3],
    };
    let mut input = vec![0.0; params.tensor_len()];
    let transform = preprocess::preprocess(&frame, Rect::full(width, height), params, &mut input)
        .map_err(|e| BatchError::Preprocess {
        path,
        reason: e.to_string(),
    })?;
    let objects = boxes
        .into_iter()
        .map(|(class, b)| {
            let n = transform.to_network(BBox::new(b[0], b[1], b[2] - b[0], b[3] - b[1]));
            (class, [n.left, n.top, n.left + n.width, n.top + n.height])
        })
        .collect();
    Ok(Prepared { input, objects })
}

/// Prepares `samples` on up to `threads` threads; `seeds[i]` drives sample i's augmentation
/// (so a resumed run sees the same batches).
pub fn make_batch(
    samples: &[&Sample],
    seeds: &[u64],
    params: &PreprocessParams,
    augmenter: Option<&Augmenter>,
    threads: usize,
) -> Result<Batch, BatchError> {
    let threads = threads.max(1).min(samples.len().max(1));
    let per_thread = samples.len().div_ceil(threads);
    let prepared: Vec<Result<Prepared, BatchError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = samples
            .chunks(per_thread.max(1))
            .zip(seeds.chunks(per_thread.max(1)))
            .map(|(chunk, chunk_seeds)| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .zip(chunk_seeds)
                        .map(|(s, &seed)| prepare(s, params, augmenter, seed))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("batch worker panicked"))
            .collect()
    });
    let slot = params.tensor_len();
    let mut input = Vec::with_capacity(slot * samples.len());
    let mut objects = Vec::with_capacity(samples.len());
    for p in prepared {
        let p = p?;
        input.extend_from_slice(&p.input);
        objects.push(p.objects);
    }
    let (c, h, w) = (
        params.channels(),
        params.network_height,
        params.network_width,
    );
    let shape = match params.order {
        nvtl_core::config::TensorOrder::Nchw => [samples.len(), c, h, w],
        nvtl_core::config::TensorOrder::Nhwc => [samples.len(), h, w, c],
    };
    Ok(Batch {
        input,
        shape,
        labels: samples
            .iter()
            .map(|s| s.label.unwrap_or(usize::MAX))
            .collect(),
        objects,
    })
}
