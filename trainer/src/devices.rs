//! Where training runs: the spec's `train.devices` (or `finetune --devices`) names burn devices,
//! and with more than one the trainer trains data parallel.
//!
//! Data parallel, as burn's multi-device strategy does it: every optimizer step's batch is split
//! into one shard per device; each device runs forward and backward on its shard with its own
//! replica of the model (`Module::fork`); the shard gradients move to the first device
//! (`GradientsParams::to_device`) and are summed there by burn's `GradientsAccumulator`; one
//! optimizer step updates the model, which the next step forks again. Each shard's loss is
//! weighted by its share of the batch, so the summed gradient is the batch-mean gradient.
//! BatchNormalization's batch statistics are combined exactly over the shards (as a batch of
//! the whole step would give them), not per replica.

use std::fmt;

use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Device, Tensor};

use crate::data::Batch;
use crate::graph::{BatchNormUpdate, GraphModule};

/// Why the devices cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("\"{text}\": expected \"cpu\", \"cuda\" or \"cuda:0,1,...\"")]
    Syntax { text: String },
    #[error("\"{text}\": GPU {index} is listed twice")]
    Duplicate { text: String, index: usize },
    #[error(
        "devices \"{text}\": this trainer was built without CUDA; build it with \
         `cargo build --release -p nvtl-trainer --features cuda` (or train with devices = \"cpu\")"
    )]
    NoCuda { text: String },
    #[error("devices \"{text}\": GPU {index} cannot be used: {reason}")]
    Unusable {
        text: String,
        index: usize,
        reason: String,
    },
}

/// A parsed `train.devices` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceList {
    /// burn's flex backend on the CPU's threads.
    Cpu,
    /// burn-cuda on these GPU indices (data parallel when more than one).
    Cuda(Vec<usize>),
}

impl DeviceList {
    /// `cpu`, `cuda` (GPU 0) or `cuda:0,1,...`.
    pub fn parse(text: &str) -> Result<DeviceList, DeviceError> {
        let syntax = || DeviceError::Syntax { text: text.into() };
        match text.trim().split_once(':') {
            None => match text.trim() {
                "cpu" => Ok(DeviceList::Cpu),
                "cuda" => Ok(DeviceList::Cuda(vec![0])),
                _ => Err(syntax()),
            },
            Some(("cuda", list)) => {
                let mut indices = Vec::new();
                for item in list.split(',') {
                    let index: usize = item.trim().parse().map_err(|_| syntax())?;
                    if indices.contains(&index) {
                        return Err(DeviceError::Duplicate {
                            text: text.into(),
                            index,
                        });
                    }
                    indices.push(index);
                }
                Ok(DeviceList::Cuda(indices))
            }
            Some(_) => Err(syntax()),
        }
    }

    /// The autodiff devices to train on, the first one holding the model and the optimizer.
    pub fn training_devices(&self) -> Result<Vec<Device>, DeviceError> {
        match self {
            DeviceList::Cpu => Ok(vec![Device::flex().autodiff()]),
            DeviceList::Cuda(indices) => cuda_devices(indices, &self.to_string()),
        }
    }
}

impl fmt::Display for DeviceList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceList::Cpu => f.write_str("cpu"),
            DeviceList::Cuda(indices) => {
                let list: Vec<String> = indices.iter().map(usize::to_string).collect();
                write!(f, "cuda:{}", list.join(","))
            }
        }
    }
}

/// Whether this build has burn's CUDA backend (cargo feature `cuda`).
pub const CUDA_BUILT: bool = cfg!(feature = "cuda");

#[cfg(feature = "cuda")]
fn cuda_devices(indices: &[usize], text: &str) -> Result<Vec<Device>, DeviceError> {
    check_gpus(indices, text, nvtl_core::backend::gpu::gpu_info)?;
    Ok(indices
        .iter()
        .map(|&i| Device::cuda(i).autodiff())
        .collect())
}

/// Asks the driver for every listed GPU before burn-cuda does: burn-cuda panics on its device
/// thread when libcuda is missing or a GPU does not exist.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
fn check_gpus<T>(
    indices: &[usize],
    text: &str,
    probe: impl Fn(u32) -> Result<T, String>,
) -> Result<(), DeviceError> {
    for &index in indices {
        probe(index as u32).map_err(|reason| DeviceError::Unusable {
            text: text.into(),
            index,
            reason,
        })?;
    }
    Ok(())
}

#[cfg(not(feature = "cuda"))]
fn cuda_devices(_indices: &[usize], text: &str) -> Result<Vec<Device>, DeviceError> {
    Err(DeviceError::NoCuda { text: text.into() })
}

/// How many images each of `parts` shards of an `n`-image batch gets: as equal as possible,
/// earlier shards one larger, never an empty shard (fewer shards than `parts` when `n < parts`).
pub fn shard_sizes(n: usize, parts: usize) -> Vec<usize> {
    let parts = parts.clamp(1, n.max(1));
    (0..parts)
        .map(|i| n / parts + usize::from(i < n % parts))
        .collect()
}

/// What one shard's forward pass gives the step: its loss (the mean over its images) and its
/// BatchNormalization batch statistics.
pub struct ShardLoss {
    pub loss: Tensor<1>,
    pub batch_norm: Vec<BatchNormUpdate>,
}

/// The result of one data-parallel step's forward and backward passes.
pub struct StepGradients {
    /// Gradients of the batch-mean loss, on the first device, for `model`'s parameters.
    pub grads: GradientsParams,
    /// The batch-mean loss.
    pub loss: f32,
    /// Batch statistics over the whole batch, on the first device.
    pub batch_norm: Vec<BatchNormUpdate>,
}

/// One shard's share of a step, its gradients already on the first device.
struct ShardGradients {
    images: usize,
    loss: f32,
    grads: GradientsParams,
    batch_norm: Vec<BatchNormUpdate>,
}

/// Forward and backward of `batch` over `devices` (the first holds `model`): one shard per
/// device, each device's replica computing `shard_loss` on its shard, in parallel threads.
/// With one device this is a plain step on the whole batch.
pub fn step_gradients<E, F>(
    model: &GraphModule,
    devices: &[Device],
    batch: &Batch,
    shard_loss: F,
) -> Result<StepGradients, E>
where
    E: Send,
    F: Fn(&GraphModule, &Batch, &Device) -> Result<ShardLoss, E> + Sync,
{
    let main = devices
        .first()
        .cloned()
        .unwrap_or_else(|| Device::flex().autodiff());
    let n = batch.indices.len();
    if devices.len() <= 1 {
        let ShardLoss { loss, batch_norm } = shard_loss(model, batch, &main)?;
        let value = crate::heads::scalar(&loss);
        let grads = GradientsParams::from_grads(loss.backward(), model);
        return Ok(StepGradients {
            grads,
            loss: value,
            batch_norm,
        });
    }
    let sizes = shard_sizes(n, devices.len());
    let shards = batch.split(&sizes);
    let results: Vec<Result<ShardGradients, E>> = std::thread::scope(|scope| {
        let handles: Vec<_> = shards
            .iter()
            .zip(devices)
            .map(|(shard, device)| {
                let shard_loss = &shard_loss;
                let main = &main;
                scope.spawn(move || {
                    let replica = model.clone().fork(device);
                    let images = shard.indices.len();
                    let ShardLoss { loss, batch_norm } = shard_loss(&replica, shard, device)?;
                    let loss = loss.mul_scalar(images as f32 / n as f32);
                    let value = crate::heads::scalar(&loss);
                    let grads = GradientsParams::from_grads(loss.backward(), &replica)
                        .to_device(&main.clone().inner(), &replica);
                    Ok(ShardGradients {
                        images,
                        loss: value,
                        grads,
                        batch_norm,
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut accumulator = GradientsAccumulator::<GraphModule>::new();
    let mut loss = 0.0;
    let mut statistics = Vec::with_capacity(results.len());
    for result in results {
        let shard = result?;
        accumulator.accumulate(model, shard.grads);
        loss += shard.loss;
        statistics.push((shard.images, shard.batch_norm));
    }
    Ok(StepGradients {
        grads: accumulator.grads(),
        loss,
        batch_norm: combine_batch_norm(statistics, &main),
    })
}

/// The batch statistics of the union of shards from each shard's own (`images` per shard):
/// mean = sum(n_i m_i) / N, variance = sum(n_i (v_i + (m_i - mean)^2)) / N (population
/// variances, as [`BatchNormUpdate`] holds them). Nodes missing from a shard are dropped.
pub fn combine_batch_norm(
    shards: Vec<(usize, Vec<BatchNormUpdate>)>,
    device: &Device,
) -> Vec<BatchNormUpdate> {
    let Some((_, first)) = shards.first() else {
        return Vec::new();
    };
    let total: usize = shards.iter().map(|(n, _)| n).sum();
    let nodes: Vec<String> = first.iter().map(|u| u.node.clone()).collect();
    let mut combined = Vec::with_capacity(nodes.len());
    for node in nodes {
        let parts: Vec<(f32, Tensor<1>, Tensor<1>)> = shards
            .iter()
            .filter_map(|(n, updates)| {
                updates.iter().find(|u| u.node == node).map(|u| {
                    (
                        *n as f32 / total as f32,
                        u.mean.clone().to_device(device),
                        u.var.clone().to_device(device),
                    )
                })
            })
            .collect();
        if parts.len() != shards.len() {
            continue;
        }
        let mean = parts
            .iter()
            .map(|(w, m, _)| m.clone().mul_scalar(*w))
            .reduce(|a, b| a + b)
            .expect("at least one shard");
        let var = parts
            .iter()
            .map(|(w, m, v)| {
                let offset = m.clone() - mean.clone();
                (v.clone() + offset.clone() * offset).mul_scalar(*w)
            })
            .reduce(|a, b| a + b)
            .expect("at least one shard");
        combined.push(BatchNormUpdate { node, mean, var });
    }
    combined
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_cuda_and_gpu_lists() {
        assert_eq!(DeviceList::parse("cpu").unwrap(), DeviceList::Cpu);
        assert_eq!(
            DeviceList::parse("cuda").unwrap(),
            DeviceList::Cuda(vec![0])
        );
        assert_eq!(
            DeviceList::parse("cuda:1, 0,3").unwrap(),
            DeviceList::Cuda(vec![1, 0, 3])
        );
        assert_eq!(
            DeviceList::parse("cuda:0,2").unwrap().to_string(),
            "cuda:0,2"
        );
        for bad in ["gpu", "cuda:", "cuda:a", "cpu:2", "", "cuda:0,,1"] {
            assert!(
                matches!(DeviceList::parse(bad), Err(DeviceError::Syntax { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(
            DeviceList::parse("cuda:0,1,0"),
            Err(DeviceError::Duplicate { index: 0, .. })
        ));
    }

    #[test]
    fn cpu_is_one_autodiff_device() {
        let devices = DeviceList::Cpu.training_devices().unwrap();
        assert_eq!(devices.len(), 1);
        assert!(devices[0].is_autodiff());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_how_to_build_it() {
        let error = DeviceList::parse("cuda:0,1")
            .unwrap()
            .training_devices()
            .unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("cuda:0,1") && text.contains("--features cuda"),
            "{text}"
        );
    }

    #[test]
    fn gpus_are_checked_through_the_driver_before_burn_touches_them() {
        let present = |index: u32| {
            if index < 2 {
                Ok(())
            } else {
                Err(format!(
                    "cuDeviceGet failed with CUDA error 101 for {index}"
                ))
            }
        };
        assert!(check_gpus(&[0, 1], "cuda:0,1", present).is_ok());
        let error = check_gpus(&[0, 3], "cuda:0,3", present).unwrap_err();
        assert_eq!(
            error.to_string(),
            "devices \"cuda:0,3\": GPU 3 cannot be used: cuDeviceGet failed with CUDA error 101 for 3"
        );
        // The real driver probe: on a machine without one, the error names libcuda.
        if let Err(error) = check_gpus(&[0], "cuda", nvtl_core::backend::gpu::gpu_info) {
            assert!(error.to_string().contains("libcuda"), "{error}");
        }
    }

    #[test]
    fn shards_are_balanced_and_never_empty() {
        assert_eq!(shard_sizes(16, 2), vec![8, 8]);
        assert_eq!(shard_sizes(10, 3), vec![4, 3, 3]);
        assert_eq!(shard_sizes(2, 4), vec![1, 1]);
        assert_eq!(shard_sizes(5, 1), vec![5]);
        assert_eq!(shard_sizes(0, 3), vec![0]);
    }

    #[test]
    fn combined_statistics_equal_those_of_the_whole_batch() {
        let device = Device::flex();
        // Channel values of a 5-image batch (one value per image), split 3 + 2.
        let c0 = [1.0f32, 2.0, 6.0, -1.0, 3.0];
        let c1 = [0.5f32, 0.5, 0.5, 4.0, 2.0];
        let stats = |v: &[f32]| {
            let m = v.iter().sum::<f32>() / v.len() as f32;
            (
                m,
                v.iter().map(|x| (x - m).powi(2)).sum::<f32>() / v.len() as f32,
            )
        };
        let update = |range: std::ops::Range<usize>| {
            let (m0, v0) = stats(&c0[range.clone()]);
            let (m1, v1) = stats(&c1[range]);
            BatchNormUpdate {
                node: "bn".into(),
                mean: Tensor::<1>::from_floats([m0, m1], &device),
                var: Tensor::<1>::from_floats([v0, v1], &device),
            }
        };
        let combined = combine_batch_norm(
            vec![(3, vec![update(0..3)]), (2, vec![update(3..5)])],
            &device,
        );
        assert_eq!(combined.len(), 1);
        let mean = combined[0].mean.to_data().try_to_vec::<f32>().unwrap();
        let var = combined[0].var.to_data().try_to_vec::<f32>().unwrap();
        for (c, values) in [c0, c1].iter().enumerate() {
            let (m, v) = stats(values);
            assert!(
                (mean[c] - m).abs() < 1e-5,
                "channel {c}: mean {} vs {m}",
                mean[c]
            );
            assert!(
                (var[c] - v).abs() < 1e-5,
                "channel {c}: var {} vs {v}",
                var[c]
            );
        }
    }
}
