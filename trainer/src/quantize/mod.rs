//! INT8 post-training quantization (`trainer calibrate`): activation ranges from calibration
//! images, written as a TensorRT calibration table (what nvinfer's `int8-calib-file` reads) and
//! as a QDQ ONNX model (explicit quantization: TensorRT, onnxruntime, tract).
//!
//! Ranges come from every float tensor the graph computes, collected by running the model in
//! tract with all of them as outputs: the global min / max, and a histogram of |x| (2048 bins
//! over [0, the first image's max |x|], widened by bins of the same width when a later image
//! goes further — the same histogram onnxruntime's calibrators keep). From those:
//! - `max`: amax = max |x|;
//! - `percentile`: amax = the left edge of the bin where the cumulative share reaches `p`
//!   (at most max |x|);
//! - `entropy`: TensorRT's KL-divergence calibration: the threshold (a bin edge from 128 bins up)
//!   whose 128-level quantized distribution is closest to the clipped original (bin 0, the
//!   zeros of ReLUs, counted like bin 1).

pub mod qdq;
pub mod table;

use std::collections::BTreeMap;

use tract_onnx::pb::{ModelProto, ValueInfoProto};
use tract_onnx::prelude::*;

/// How activation ranges are chosen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum Method {
    /// The largest |x| seen.
    Max,
    /// A percentile of |x| (outliers clipped).
    Percentile,
    /// TensorRT's entropy (KL divergence) calibration.
    #[default]
    Entropy,
}

#[derive(Debug, thiserror::Error)]
pub enum QuantizeError {
    #[error("the ONNX model holds no graph")]
    NoGraph,
    #[error("tract cannot run the model for calibration: {0}")]
    Tract(String),
    #[error("no calibration images")]
    NoImages,
    #[error("calibration input has {got} values, the model's input {shape:?} needs {expected}")]
    Input {
        got: usize,
        expected: usize,
        shape: Vec<usize>,
    },
    #[error("{0}")]
    Invalid(String),
}

/// Histogram bins of |x| (onnxruntime's and TensorRT's default).
pub const BINS: usize = 2048;

/// What one tensor showed over the calibration set.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorStats {
    pub min: f32,
    pub max: f32,
    /// Counts of |x| per bin of width `bin_width`, from 0.
    pub histogram: Vec<u64>,
    pub bin_width: f32,
}

impl TensorStats {
    fn new(values: &[f32]) -> TensorStats {
        let (min, max) = min_max(values);
        let amax = max.abs().max(min.abs());
        let bin_width = if amax > 0.0 { amax / BINS as f32 } else { 1.0 };
        let mut stats = TensorStats {
            min,
            max,
            histogram: vec![0; BINS],
            bin_width,
        };
        stats.count(values);
        stats
    }

    fn add(&mut self, values: &[f32]) {
        let (min, max) = min_max(values);
        self.min = self.min.min(min);
        self.max = self.max.max(max);
        let amax = max.abs().max(min.abs());
        let top = self.histogram.len() as f32 * self.bin_width;
        if amax > top {
            let extra = ((amax - top) / self.bin_width).ceil() as usize + 1;
            self.histogram.resize(self.histogram.len() + extra, 0);
        }
        self.count(values);
    }

    fn count(&mut self, values: &[f32]) {
        let last = self.histogram.len() - 1;
        for v in values.iter().filter(|v| v.is_finite()) {
            let bin = ((v.abs() / self.bin_width) as usize).min(last);
            self.histogram[bin] += 1;
        }
    }

    /// The largest |x| seen.
    pub fn amax(&self) -> f32 {
        self.max.abs().max(self.min.abs())
    }

    /// The left edge of the bin where the cumulative share of |x| reaches `percentile` (0..100),
    /// at most [`Self::amax`].
    pub fn percentile(&self, percentile: f64) -> f32 {
        let total: u64 = self.histogram.iter().sum();
        if total == 0 {
            return 0.0;
        }
        let target = percentile / 100.0;
        let mut cumulative = 0u64;
        for (i, &count) in self.histogram.iter().enumerate() {
            cumulative += count;
            if cumulative as f64 / total as f64 >= target {
                return (i as f32 * self.bin_width).min(self.amax());
            }
        }
        self.amax()
    }

    /// TensorRT's entropy calibration over this histogram (128 quantization levels).
    pub fn entropy(&self) -> f32 {
        const LEVELS: usize = 128;
        let mut hist: Vec<f64> = self.histogram.iter().map(|&c| c as f64).collect();
        // The exact zeros a ReLU makes would dominate every candidate's first level and pull
        // the threshold down to nothing; they count like their neighbour bin (as NVIDIA's
        // pytorch-quantization does).
        if hist.len() > 1 {
            hist[0] = hist[1];
        }
        let n = hist.len();
        if n <= LEVELS || hist.iter().sum::<f64>() == 0.0 {
            return self.amax();
        }
        let mut best = (f64::INFINITY, n);
        for i in LEVELS..=n {
            // Reference: the first i bins, with everything beyond folded into the last one.
            let mut p: Vec<f64> = hist[..i].to_vec();
            p[i - 1] += hist[i..].iter().sum::<f64>();
            // Candidate: the first i bins merged into LEVELS levels, spread back over the
            // non-empty bins of each level.
            let mut q = vec![0f64; i];
            for level in 0..LEVELS {
                let start = level * i / LEVELS;
                let end = ((level + 1) * i / LEVELS).max(start + 1);
                let sum: f64 = hist[start..end].iter().sum();
                let nonzero = hist[start..end].iter().filter(|&&c| c > 0.0).count();
                if nonzero > 0 {
                    for (j, &c) in hist[start..end].iter().enumerate() {
                        if c > 0.0 {
                            q[start + j] = sum / nonzero as f64;
                        }
                    }
                }
            }
            let kl = kl_divergence(&p, &q);
            if kl < best.0 {
                best = (kl, i);
            }
        }
        ((best.1 as f32 + 0.5) * self.bin_width).min(self.amax())
    }

    pub fn amax_by(&self, method: Method, percentile: f64) -> f32 {
        match method {
            Method::Max => self.amax(),
            Method::Percentile => self.percentile(percentile),
            Method::Entropy => self.entropy(),
        }
    }
}

/// KL(p || q) of two unnormalised histograms; bins where p has mass but q none cost as if q held
/// a tiny share there (TensorRT smooths the same way).
fn kl_divergence(p: &[f64], q: &[f64]) -> f64 {
    let (ps, qs): (f64, f64) = (p.iter().sum(), q.iter().sum());
    if ps == 0.0 || qs == 0.0 {
        return f64::INFINITY;
    }
    let eps = 1e-10;
    p.iter()
        .zip(q)
        .filter(|(&pi, _)| pi > 0.0)
        .map(|(&pi, &qi)| {
            let pn = pi / ps;
            let qn = (qi / qs).max(eps);
            pn * (pn / qn).ln()
        })
        .sum()
}

fn min_max(values: &[f32]) -> (f32, f32) {
    values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

/// Runs a model with every float tensor it computes as an output and accumulates their stats.
pub struct Collector {
    plan: Arc<TypedRunnableModel>,
    names: Vec<String>,
    input_shape: Vec<usize>,
    pub stats: BTreeMap<String, TensorStats>,
    pub images: usize,
}

impl Collector {
    /// `input_shape`: the model's (fixed) input shape, batch 1.
    pub fn new(proto: &ModelProto, input_shape: &[usize]) -> Result<Collector, QuantizeError> {
        let mut model = proto.clone();
        let graph = model.graph.as_mut().ok_or(QuantizeError::NoGraph)?;
        let existing: std::collections::HashSet<String> =
            graph.output.iter().map(|o| o.name.clone()).collect();
        let input = graph
            .input
            .iter()
            .find(|i| !graph.initializer.iter().any(|t| t.name == i.name))
            .map(|i| i.name.clone())
            .ok_or(QuantizeError::NoGraph)?;
        let mut names = vec![input.clone()];
        names.extend(graph.output.iter().map(|o| o.name.clone()));
        let shape_ops = ["Shape", "Constant", "ConstantOfShape", "Size"];
        let mut extra = Vec::new();
        for node in graph
            .node
            .iter()
            .filter(|n| !shape_ops.contains(&n.op_type.as_str()))
        {
            for out in &node.output {
                if !out.is_empty() && !existing.contains(out) {
                    extra.push(out.clone());
                }
            }
        }
        for name in &extra {
            graph.output.push(ValueInfoProto {
                name: name.clone(),
                ..Default::default()
            });
        }
        names.extend(extra);
        // The graph input itself comes back as an Identity output.
        graph.node.push(tract_onnx::pb::NodeProto {
            op_type: "Identity".into(),
            name: "nvtl_calibration_input".into(),
            input: vec![input.clone()],
            output: vec!["nvtl_calibration_input".into()],
            ..Default::default()
        });
        graph.output.insert(
            0,
            ValueInfoProto {
                name: "nvtl_calibration_input".into(),
                ..Default::default()
            },
        );
        let err = |e: TractError| QuantizeError::Tract(format!("{e:#}"));
        let plan = tract_onnx::onnx()
            .model_for_proto_model(&model)
            .map_err(err)?
            .with_input_fact(
                0,
                InferenceFact::dt_shape(f32::datum_type(), input_shape.to_vec()),
            )
            .map_err(err)?
            .into_optimized()
            .map_err(err)?
            .into_runnable()
            .map_err(err)?;
        Ok(Collector {
            plan,
            names,
            input_shape: input_shape.to_vec(),
            stats: BTreeMap::new(),
            images: 0,
        })
    }

    /// Adds one pre-processed input (the model's input layout, batch 1).
    pub fn add(&mut self, input: &[f32]) -> Result<(), QuantizeError> {
        let expected: usize = self.input_shape.iter().product();
        if input.len() != expected {
            return Err(QuantizeError::Input {
                got: input.len(),
                expected,
                shape: self.input_shape.clone(),
            });
        }
        let array =
            tract_ndarray::ArrayD::from_shape_vec(self.input_shape.as_slice(), input.to_vec())
                .map_err(|e| QuantizeError::Invalid(e.to_string()))?;
        let outputs = self
            .plan
            .run(tvec![TValue::from(Tensor::from(array))])
            .map_err(|e| QuantizeError::Tract(format!("{e:#}")))?;
        for (name, value) in self.names.iter().zip(outputs) {
            if value.datum_type() != f32::datum_type() {
                continue;
            }
            let Ok(plain) = value.try_as_plain_ram() else {
                continue;
            };
            let Ok(values) = plain.as_slice::<f32>() else {
                continue;
            };
            match self.stats.get_mut(name) {
                Some(s) => s.add(values),
                None => {
                    self.stats.insert(name.clone(), TensorStats::new(values));
                }
            }
        }
        self.images += 1;
        Ok(())
    }

    /// amax per tensor by `method`.
    pub fn ranges(&self, method: Method, percentile: f64) -> BTreeMap<String, f32> {
        self.stats
            .iter()
            .map(|(name, s)| (name.clone(), s.amax_by(method, percentile)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_grows_and_percentiles_follow_it() {
        let first: Vec<f32> = (0..1000).map(|i| i as f32 / 1000.0).collect();
        let mut s = TensorStats::new(&first);
        assert_eq!(s.histogram.len(), BINS);
        assert!((s.amax() - 0.999).abs() < 1e-6);
        s.add(&[-3.0, 0.5]);
        assert_eq!((s.min, s.max), (-3.0, 0.999));
        // The histogram widened by whole bins of the same width to hold 3.0.
        assert!(s.histogram.len() as f32 * s.bin_width >= 3.0);
        assert_eq!(s.histogram.iter().sum::<u64>(), 1002);
        assert_eq!(s.amax(), 3.0);
        // 50 % of |x| lies below ~0.5.
        let p50 = s.percentile(50.0);
        assert!((p50 - 0.5).abs() < 2.0 * s.bin_width, "{p50}");
        // 100 %: the left edge of the largest value's bin, never beyond the value.
        let p100 = s.percentile(100.0);
        assert!(p100 <= 3.0 && p100 > 3.0 - s.bin_width, "{p100}");
    }

    #[test]
    fn entropy_clips_a_rare_outlier() {
        // A bell of values in [-1, 1] and one outlier at 20: max calibration spends almost all
        // levels on the empty range, entropy keeps the threshold near the bulk.
        let mut values: Vec<f32> = (0..20000)
            .map(|i| {
                let u = (i as f32 + 0.5) / 20000.0;
                (u - 0.5) * 2.0 * (1.0 - (u - 0.5).abs())
            })
            .collect();
        values.push(20.0);
        let s = TensorStats::new(&values);
        assert_eq!(s.amax(), 20.0);
        let t = s.entropy();
        assert!(t > 0.3 && t < 2.0, "entropy threshold {t}");
    }
}
