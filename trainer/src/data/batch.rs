//! Samples -> network input batches, pre-processed exactly as nvtlinfer feeds the model
//! (`nvtl_core::preprocess::preprocess` with the bundle's nvinfer pre-processing), decoded in
//! parallel, augmented and shuffled with seeds derived from `(seed, epoch, sample)` so every run
//! sees the same batches whatever the thread count.

use std::path::Path;

use image::RgbImage;
use nvtl_core::config::{InferConfig, TensorOrder};
use nvtl_core::preprocess::{self, PreprocessParams, Rect};
use nvtl_core::BBox;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::augment::Augmenter;
use super::{DataError, Dataset, Object};
use crate::spec::AugmentSpec;

/// One batch of network inputs with their targets.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// `shape.iter().product()` values: the samples' network inputs one after the other, each
    /// laid out as the model wants (NCHW or NHWC), values `(pixel - offset) * net-scale-factor`.
    pub input: Vec<f32>,
    /// `[n, channels, height, width]` (NCHW) or `[n, height, width, channels]` (NHWC).
    pub shape: [usize; 4],
    /// Per sample, its objects in network-input pixels (after scaling and letterbox padding),
    /// clipped to the input; empty boxes dropped.
    pub objects: Vec<Vec<Object>>,
    /// Per sample, its class (classification sets).
    pub labels: Vec<Option<usize>>,
    /// Per sample, its index in the dataset.
    pub indices: Vec<usize>,
}

impl Batch {
    /// Consecutive sub-batches of `sizes` samples each (they must add up to the batch's size),
    /// in order: the shards of a data-parallel step.
    pub fn split(&self, sizes: &[usize]) -> Vec<Batch> {
        let n = self.indices.len();
        assert_eq!(
            sizes.iter().sum::<usize>(),
            n,
            "shard sizes must cover the batch"
        );
        let per_sample = self.input.len().checked_div(n).unwrap_or(0);
        let mut start = 0;
        sizes
            .iter()
            .map(|&size| {
                let range = start..start + size;
                start += size;
                let mut shape = self.shape;
                shape[0] = size;
                Batch {
                    input: self.input[range.start * per_sample..range.end * per_sample].to_vec(),
                    shape,
                    objects: self.objects[range.clone()].to_vec(),
                    labels: self.labels[range.clone()].to_vec(),
                    indices: self.indices[range].to_vec(),
                }
            })
            .collect()
    }
}

/// Turns dataset samples into [`Batch`]es.
#[derive(Clone, Debug)]
pub struct Batcher {
    params: PreprocessParams,
    augmenter: Option<Augmenter>,
    seed: u64,
    threads: usize,
}

/// The pre-processing of a bundle's nvinfer config into a `width` x `height` network input.
pub fn preprocess_params(config: &InferConfig, width: usize, height: usize) -> PreprocessParams {
    PreprocessParams::from_config(config, width, height)
}

impl Batcher {
    /// `augment`: `None` for evaluation (images are only pre-processed). `threads`: decoding
    /// threads per batch, 0 = one per core.
    pub fn new(
        params: PreprocessParams,
        augment: Option<AugmentSpec>,
        seed: u64,
        threads: usize,
    ) -> Batcher {
        let threads = if threads == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        } else {
            threads
        };
        Batcher {
            params,
            augmenter: augment.map(Augmenter::new),
            seed,
            threads,
        }
    }

    pub fn params(&self) -> &PreprocessParams {
        &self.params
    }

    /// The order samples are visited in epoch `epoch`: `0..samples` shuffled with a seed of
    /// `(seed, epoch)`, or in order when `shuffle` is false.
    pub fn order(&self, samples: usize, epoch: usize, shuffle: bool) -> Vec<usize> {
        let mut order: Vec<usize> = (0..samples).collect();
        if shuffle {
            let mut rng = rand::rngs::StdRng::seed_from_u64(mix(self.seed, epoch as u64, u64::MAX));
            order.shuffle(&mut rng);
        }
        order
    }

    /// Sample indices of each batch of epoch `epoch` (the last batch may be smaller).
    pub fn epoch_batches(
        &self,
        samples: usize,
        epoch: usize,
        batch_size: usize,
        shuffle: bool,
    ) -> Vec<Vec<usize>> {
        self.order(samples, epoch, shuffle)
            .chunks(batch_size.max(1))
            .map(<[usize]>::to_vec)
            .collect()
    }

    /// The batches of one epoch, loaded one by one as the iterator is advanced.
    pub fn iter<'a>(
        &'a self,
        dataset: &'a Dataset,
        epoch: usize,
        batch_size: usize,
        shuffle: bool,
    ) -> impl Iterator<Item = Result<Batch, DataError>> + 'a {
        self.epoch_batches(dataset.samples.len(), epoch, batch_size, shuffle)
            .into_iter()
            .map(move |indices| self.load(dataset, &indices, epoch))
    }

    /// Decodes, augments (with the plan drawn for `(seed, epoch, index)`) and pre-processes the
    /// samples `indices` of `dataset`, in parallel.
    pub fn load(
        &self,
        dataset: &Dataset,
        indices: &[usize],
        epoch: usize,
    ) -> Result<Batch, DataError> {
        let n = indices.len();
        let len = self.params.tensor_len();
        for &index in indices {
            if index >= dataset.samples.len() {
                return Err(DataError::Invalid(format!(
                    "sample index {index} is outside the dataset of {} samples",
                    dataset.samples.len()
                )));
            }
        }
        let mut input = vec![0f32; n * len];
        let mut jobs: Vec<(usize, &mut [f32])> = indices
            .iter()
            .copied()
            .zip(input.chunks_mut(len.max(1)))
            .collect();
        let per_thread = n.div_ceil(self.threads.max(1)).max(1);
        let results: Vec<Result<Vec<Vec<Object>>, DataError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = jobs
                .chunks_mut(per_thread)
                .map(|chunk| {
                    scope.spawn(move || {
                        chunk
                            .iter_mut()
                            .map(|(index, out)| self.load_one(dataset, *index, epoch, out))
                            .collect::<Result<Vec<_>, _>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(DataError::Invalid("a decoding thread panicked".into()))
                    })
                })
                .collect()
        });
        let mut objects = Vec::with_capacity(n);
        for result in results {
            objects.extend(result?);
        }
        let (c, h, w) = (
            self.params.channels(),
            self.params.network_height,
            self.params.network_width,
        );
        let shape = match self.params.order {
            TensorOrder::Nchw => [n, c, h, w],
            TensorOrder::Nhwc => [n, h, w, c],
        };
        Ok(Batch {
            input,
            shape,
            objects,
            labels: indices.iter().map(|&i| dataset.samples[i].label).collect(),
            indices: indices.to_vec(),
        })
    }

    /// Loads sample `index` into `out`; returns its objects in network pixels.
    fn load_one(
        &self,
        dataset: &Dataset,
        index: usize,
        epoch: usize,
        out: &mut [f32],
    ) -> Result<Vec<Object>, DataError> {
        let sample = &dataset.samples[index];
        let image = read_rgb(&sample.image)?;
        let (image, objects) = match &self.augmenter {
            Some(augmenter) => {
                let mut rng =
                    rand::rngs::StdRng::seed_from_u64(mix(self.seed, epoch as u64, index as u64));
                let plan = augmenter.plan(image.width(), image.height(), &mut rng);
                plan.apply(image, &sample.objects)
            }
            None => (image, sample.objects.clone()),
        };
        let (width, height) = (image.width() as usize, image.height() as usize);
        let frame = crate::runner::rgb_frame(&image);
        let transform =
            preprocess::preprocess(&frame, Rect::full(width, height), &self.params, out).map_err(
                |e| DataError::Image {
                    path: sample.image.clone(),
                    reason: format!("pre-processing: {e}"),
                },
            )?;
        let (nw, nh) = (
            self.params.network_width as f32,
            self.params.network_height as f32,
        );
        Ok(objects
            .into_iter()
            .filter_map(|object| {
                let [x1, y1, x2, y2] = object.bbox;
                let b = transform
                    .to_network(BBox::from_ltrb(x1, y1, x2, y2))
                    .clipped(nw, nh);
                (b.width > 0.0 && b.height > 0.0).then_some(Object {
                    bbox: [b.left, b.top, b.right(), b.bottom()],
                    ..object
                })
            })
            .collect())
    }
}

/// Decodes an image file to 8-bit RGB.
pub fn read_rgb(path: &Path) -> Result<RgbImage, DataError> {
    image::open(path)
        .map(|i| i.to_rgb8())
        .map_err(|e| DataError::Image {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

/// A well-mixed 64-bit seed from three numbers (SplitMix64 finaliser over each).
fn mix(seed: u64, epoch: u64, index: u64) -> u64 {
    let mut state = seed;
    for value in [epoch, index] {
        state ^= value
            .wrapping_add(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(state << 6);
        state = splitmix(state);
    }
    state
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
