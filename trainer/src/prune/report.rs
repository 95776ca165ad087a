//! What pruning does to each layer and to the whole model, as text tables.

use std::fmt::Write;

use std::path::Path;
use std::time::Instant;

use tract_onnx::pb::ModelProto;

use super::{groups, Plan, PruneError};
use crate::runner::BundleRunner;

/// One Conv/Gemm/MatMul layer before and after pruning.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerRow {
    pub layer: String,
    pub op: String,
    pub kept_channels: usize,
    pub channels: usize,
    pub params_before: usize,
    pub params_after: usize,
    pub flops_before: u64,
    pub flops_after: u64,
    /// Why the output channels stay (graph output, excluded, ...), if they are fixed.
    pub fixed: Option<String>,
}

/// Rows in graph order.
pub fn layer_rows(plan: &Plan) -> Vec<LayerRow> {
    plan.analysis
        .layers
        .iter()
        .map(|l| {
            let (ki, ko) = plan.layer_kept(l);
            let full_in = l.input.channels() * l.input.inner;
            let full_out = l.output.channels();
            let fixed = if l.depthwise {
                Some("depthwise: follows its input".into())
            } else {
                l.output
                    .segments
                    .iter()
                    .find_map(|s| plan.analysis.groups[s.group].fixed.clone())
            };
            LayerRow {
                layer: l.node.clone(),
                op: if l.depthwise {
                    "Conv(dw)".into()
                } else {
                    l.op.clone()
                },
                kept_channels: ko,
                channels: full_out,
                params_before: l.weight_params + l.bias_params,
                params_after: l.params(ki, ko),
                flops_before: l.flops(full_in, full_out),
                flops_after: l.flops(ki, ko),
                fixed,
            }
        })
        .collect()
}

/// A number with a unit suffix: 1234567 -> "1.23M".
pub fn human(n: f64) -> String {
    let (value, unit) = if n >= 1e9 {
        (n / 1e9, "G")
    } else if n >= 1e6 {
        (n / 1e6, "M")
    } else if n >= 1e3 {
        (n / 1e3, "k")
    } else {
        (n, "")
    };
    if unit.is_empty() {
        format!("{value:.0}")
    } else {
        format!("{value:.2}{unit}")
    }
}

/// The `--dry-run` table: one line per layer, then the totals.
pub fn layer_table(rows: &[LayerRow]) -> String {
    let width = rows
        .iter()
        .map(|r| r.layer.len())
        .max()
        .unwrap_or(5)
        .clamp(5, 60);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<width$} {:<9} {:>11} {:>19} {:>19}  note",
        "layer", "op", "kept/total", "params", "FLOPs"
    );
    for r in rows {
        let name: String = if r.layer.len() > width {
            format!("...{}", &r.layer[r.layer.len() - (width - 3)..])
        } else {
            r.layer.clone()
        };
        let _ = writeln!(
            out,
            "{:<width$} {:<9} {:>11} {:>19} {:>19}  {}",
            name,
            r.op,
            format!("{}/{}", r.kept_channels, r.channels),
            format!(
                "{} -> {}",
                human(r.params_before as f64),
                human(r.params_after as f64)
            ),
            format!(
                "{} -> {}",
                human(r.flops_before as f64),
                human(r.flops_after as f64)
            ),
            r.fixed.as_deref().unwrap_or("")
        );
    }
    out
}

/// Size, cost and speed of one model, for the comparison table and plot.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ModelStats {
    pub name: String,
    pub params: usize,
    /// Conv/Gemm/MatMul FLOPs per image.
    pub flops: u64,
    pub file_bytes: u64,
    /// Median milliseconds per image on the element's CPU engine (pre-process, inference,
    /// decode, clustering).
    pub latency_ms: f64,
    /// Top-1 accuracy or mAP, when a validation set was given.
    pub accuracy: Option<f64>,
}

/// The comparison table (markdown), ratios against the first row.
pub fn model_table(rows: &[ModelStats], metric: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| model | params | FLOPs | file | CPU latency (ms) | speed-up | {metric} |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
    let base = rows.first();
    for r in rows {
        let speedup = base.map_or(1.0, |b| b.latency_ms / r.latency_ms.max(1e-9));
        let ratio = |now: f64, then: f64| {
            if then > 0.0 && (now - then).abs() > f64::EPSILON {
                format!(" ({:.2}x)", now / then)
            } else {
                String::new()
            }
        };
        let _ = writeln!(
            out,
            "| {} | {}{} | {}{} | {:.2} MB | {:.2} | {:.2}x | {} |",
            r.name,
            human(r.params as f64),
            base.map_or(String::new(), |b| ratio(r.params as f64, b.params as f64)),
            human(r.flops as f64),
            base.map_or(String::new(), |b| ratio(r.flops as f64, b.flops as f64)),
            r.file_bytes as f64 / 1e6,
            r.latency_ms,
            speedup,
            r.accuracy.map_or("-".into(), |a| format!("{a:.4}")),
        );
    }
    out
}

/// FLOPs per image of every Conv, ConvTranspose, Gemm and MatMul with a constant weight
/// (multiply-adds counted as two), from the shapes tract infers.
pub fn model_flops(proto: &ModelProto) -> Result<u64, PruneError> {
    let graph = proto.graph.as_ref().ok_or(PruneError::NoGraph)?;
    let shapes = groups::value_shapes(proto)?;
    let initializer_elements = |name: &str| {
        graph
            .initializer
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.dims.iter().product::<i64>().max(0) as u64)
    };
    // A weight is an initializer, or (QDQ models) the DequantizeLinear of one.
    let weight_elements = |name: &str| {
        initializer_elements(name).or_else(|| {
            graph
                .node
                .iter()
                .find(|n| {
                    n.op_type == "DequantizeLinear" && n.output.first().is_some_and(|o| o == name)
                })
                .and_then(|n| n.input.first())
                .and_then(|q| initializer_elements(q))
        })
    };
    let mut flops = 0u64;
    for node in &graph.node {
        let (Some(weight), Some(out)) = (node.input.get(1), node.output.first()) else {
            continue;
        };
        let Some(weights) = weight_elements(weight) else {
            continue;
        };
        let positions: u64 = match node.op_type.as_str() {
            "Conv" | "ConvTranspose" => shapes
                .get(if node.op_type == "Conv" {
                    out
                } else {
                    &node.input[0]
                })
                .map_or(1, |s| s[2..].iter().product::<usize>() as u64),
            "Gemm" => 1,
            // MatMul: every row of the left operand.
            "MatMul" => shapes.get(out).map_or(1, |s| {
                s[..s.len() - 1].iter().skip(1).product::<usize>() as u64
            }),
            _ => continue,
        };
        flops += 2 * weights * positions;
    }
    Ok(flops)
}

/// Parameters (float and INT8 initializer elements) of a graph.
pub fn model_params(proto: &ModelProto) -> usize {
    use tract_onnx::pb::tensor_proto::DataType;
    proto.graph.as_ref().map_or(0, |g| {
        g.initializer
            .iter()
            .filter(|t| {
                t.data_type == DataType::Float as i32 || t.data_type == DataType::Int8 as i32
            })
            .map(|t| t.dims.iter().product::<i64>().max(0) as usize)
            .sum()
    })
}

/// Median milliseconds per frame of each bundle on the element's CPU engine with `threads`
/// threads (0 = every core), on a synthetic 640x480 frame after one warm-up run; measured in
/// turns (one run of each model per round, the first model rotating), so that a machine that
/// slows down or speeds up during the measurement shifts every model alike and the ratios
/// between them hold.
pub fn latencies_ms(
    bundles: &[&Path],
    threads: usize,
    runs: usize,
) -> Result<Vec<f64>, crate::runner::RunError> {
    let mut runners = bundles
        .iter()
        .map(|b| BundleRunner::open(b, threads))
        .collect::<Result<Vec<_>, _>>()?;
    let frame = image::RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([
            (x * 7 % 251) as u8,
            (y * 13 % 241) as u8,
            ((x + y) % 256) as u8,
        ])
    });
    for runner in &mut runners {
        runner.run_rgb(&frame, "latency frame")?;
    }
    let n = runners.len();
    let mut times = vec![Vec::with_capacity(runs.max(1)); n];
    for round in 0..runs.max(1) {
        for k in 0..n {
            let m = (round + k) % n;
            let start = Instant::now();
            runners[m].run_rgb(&frame, "latency frame")?;
            times[m].push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    Ok(times
        .into_iter()
        .map(|mut t| {
            t.sort_by(f64::total_cmp);
            t[t.len() / 2]
        })
        .collect())
}
