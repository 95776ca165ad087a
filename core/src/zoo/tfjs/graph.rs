//! Reading a TF.js graph model: `model.json` (`modelTopology.node`, `weightsManifest`) and its
//! binary weight shards, dequantised to f32 / i32.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::ConvertError;

/// One node of the TF graph, as `model.json` stores it.
#[derive(Clone, Debug)]
pub struct TfNode {
    pub name: String,
    pub op: String,
    /// Data inputs (`name` or `name:k`); control inputs (`^name`) are dropped.
    pub inputs: Vec<String>,
    pub attrs: Map<String, Value>,
}

/// A constant tensor: weights from the shards, or a value inlined in a `Const` node.
#[derive(Clone, Debug, PartialEq)]
pub struct TfTensor {
    /// TF order (NHWC for images, HWIO for conv filters).
    pub shape: Vec<usize>,
    pub data: TfData,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TfData {
    F32(Vec<f32>),
    I32(Vec<i32>),
}

impl TfTensor {
    pub fn len(&self) -> usize {
        match &self.data {
            TfData::F32(v) => v.len(),
            TfData::I32(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values as f32 (integers converted).
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.data {
            TfData::F32(v) => v.clone(),
            TfData::I32(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// Values as i64 (floats truncated).
    pub fn to_i64(&self) -> Vec<i64> {
        match &self.data {
            TfData::F32(v) => v.iter().map(|&x| x as i64).collect(),
            TfData::I32(v) => v.iter().map(|&x| i64::from(x)).collect(),
        }
    }
}

/// A parsed graph model.
#[derive(Clone, Debug, Default)]
pub struct GraphModel {
    /// Nodes in file order.
    pub nodes: Vec<TfNode>,
    /// Weights by node name.
    pub weights: HashMap<String, TfTensor>,
    /// Weights named in the manifest that could not be read, with the reason (an error only if the
    /// converted subgraph needs them).
    pub unreadable: HashMap<String, String>,
}

impl GraphModel {
    /// Parses `model.json`; `read_shard` returns the bytes of a shard named in
    /// `weightsManifest[].paths` (relative to the json file).
    pub fn parse(
        json: &[u8],
        read_shard: &mut dyn FnMut(&str) -> Result<Vec<u8>, ConvertError>,
    ) -> Result<GraphModel, ConvertError> {
        let root: Value =
            serde_json::from_slice(json).map_err(|e| ConvertError::Json(e.to_string()))?;
        let root = root
            .as_object()
            .ok_or_else(|| ConvertError::Json("top level is not an object".into()))?;
        if let Some(format) = root.get("format").and_then(Value::as_str) {
            if format != "graph-model" {
                return Err(ConvertError::Json(format!(
                    "format is '{format}', only 'graph-model' is supported"
                )));
            }
        }
        let topology = root
            .get("modelTopology")
            .and_then(Value::as_object)
            .ok_or_else(|| ConvertError::Json("no modelTopology object".into()))?;
        let nodes_json = topology
            .get("node")
            .and_then(Value::as_array)
            .ok_or_else(|| ConvertError::Json("modelTopology.node is not a list".into()))?;
        let mut model = GraphModel::default();
        for (i, n) in nodes_json.iter().enumerate() {
            model.nodes.push(
                parse_node(n)
                    .map_err(|m| ConvertError::Json(format!("modelTopology.node[{i}]: {m}")))?,
            );
        }
        if let Some(groups) = root.get("weightsManifest") {
            let groups = groups
                .as_array()
                .ok_or_else(|| ConvertError::Json("weightsManifest is not a list".into()))?;
            for (gi, group) in groups.iter().enumerate() {
                read_group(gi, group, read_shard, &mut model)?;
            }
        }
        // Constants inlined in the graph (small ones the converter did not move to the shards).
        for node in &model.nodes {
            if node.op == "Const" && !model.weights.contains_key(&node.name) {
                if let Some(t) = node.attrs.get("value").and_then(|v| v.get("tensor")) {
                    match inline_tensor(t) {
                        Ok(Some(t)) => {
                            model.weights.insert(node.name.clone(), t);
                        }
                        Ok(None) => {}
                        Err(m) => {
                            model.unreadable.insert(node.name.clone(), m);
                        }
                    }
                }
            }
        }
        Ok(model)
    }
}

fn parse_node(n: &Value) -> Result<TfNode, String> {
    let name = n
        .get("name")
        .and_then(Value::as_str)
        .ok_or("no name")?
        .to_string();
    let op = n
        .get("op")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("node '{name}' has no op"))?
        .to_string();
    let inputs = match n.get("input") {
        None => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("node '{name}': input is not a string"))
            })
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|s| !s.starts_with('^'))
            .collect(),
        Some(_) => return Err(format!("node '{name}': input is not a list")),
    };
    let attrs = match n.get("attr") {
        None => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(format!("node '{name}': attr is not an object")),
    };
    Ok(TfNode {
        name,
        op,
        inputs,
        attrs,
    })
}

fn read_group(
    gi: usize,
    group: &Value,
    read_shard: &mut dyn FnMut(&str) -> Result<Vec<u8>, ConvertError>,
    model: &mut GraphModel,
) -> Result<(), ConvertError> {
    let bad = |m: String| ConvertError::Weights(format!("weightsManifest[{gi}]: {m}"));
    let paths = group
        .get("paths")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no paths list".into()))?;
    let weights = group
        .get("weights")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no weights list".into()))?;
    let mut bytes = Vec::new();
    for p in paths {
        let p = p
            .as_str()
            .ok_or_else(|| bad("a path is not a string".into()))?;
        bytes.extend(read_shard(p)?);
    }
    let shard_names = paths
        .iter()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    let mut offset = 0usize;
    let mut stopped: Option<String> = None;
    for (wi, w) in weights.iter().enumerate() {
        let name = w
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("weights[{wi}] has no name")))?
            .to_string();
        if let Some(reason) = &stopped {
            model.unreadable.insert(name, reason.clone());
            continue;
        }
        match read_weight(w, &bytes, &mut offset) {
            Ok(t) => {
                model.weights.insert(name, t);
            }
            Err(WeightError::Fatal(m)) => {
                return Err(ConvertError::Weights(format!(
                    "weight '{name}' in shard(s) {shard_names}: {m}"
                )))
            }
            Err(WeightError::Unsized(m)) => {
                // Offsets of everything after an unsized weight are unknown.
                let reason = format!("follows weight '{name}' ({m}) in shard(s) {shard_names}");
                model.unreadable.insert(name, m);
                stopped = Some(reason);
            }
        }
    }
    Ok(())
}

enum WeightError {
    /// The data is corrupt (truncated shard, bad shape).
    Fatal(String),
    /// A dtype whose byte size is unknown to us (string): this and the following weights of the
    /// group cannot be read.
    Unsized(String),
}

fn read_weight(w: &Value, bytes: &[u8], offset: &mut usize) -> Result<TfTensor, WeightError> {
    let shape = w
        .get("shape")
        .and_then(Value::as_array)
        .ok_or_else(|| WeightError::Fatal("no shape".into()))?
        .iter()
        .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
        .collect::<Option<Vec<usize>>>()
        .ok_or_else(|| WeightError::Fatal("shape has a negative or non-integer dim".into()))?;
    let numel = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| WeightError::Fatal(format!("shape {shape:?} overflows")))?;
    let dtype = w.get("dtype").and_then(Value::as_str).unwrap_or("float32");
    let quant = w.get("quantization");
    let stored = match quant {
        Some(q) => q
            .get("dtype")
            .and_then(Value::as_str)
            .ok_or_else(|| WeightError::Fatal("quantization without dtype".into()))?,
        None => dtype,
    };
    let width = match stored {
        "float32" | "int32" => 4,
        "float16" | "uint16" => 2,
        "uint8" | "bool" => 1,
        other => {
            return Err(WeightError::Unsized(format!(
                "dtype '{other}' is not supported"
            )))
        }
    };
    let nbytes = numel
        .checked_mul(width)
        .ok_or_else(|| WeightError::Fatal("size overflows".into()))?;
    let end = offset
        .checked_add(nbytes)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| {
            WeightError::Fatal(format!(
                "needs bytes {}..{} but the shards hold {} bytes (truncated?)",
                offset,
                offset.saturating_add(nbytes),
                bytes.len()
            ))
        })?;
    let raw = &bytes[*offset..end];
    *offset = end;
    let values: Vec<f32> = match (stored, quant) {
        ("float16", _) => raw
            .chunks_exact(2)
            .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        ("uint8" | "uint16", Some(q)) => {
            let scale = q
                .get("scale")
                .and_then(Value::as_f64)
                .ok_or_else(|| WeightError::Fatal("no scale".into()))?;
            let min = q
                .get("min")
                .and_then(Value::as_f64)
                .ok_or_else(|| WeightError::Fatal("no min".into()))?;
            let qs: Vec<u32> = if stored == "uint8" {
                raw.iter().map(|&b| u32::from(b)).collect()
            } else {
                raw.chunks_exact(2)
                    .map(|c| u32::from(u16::from_le_bytes([c[0], c[1]])))
                    .collect()
            };
            qs.into_iter()
                .map(|q| (f64::from(q) * scale + min) as f32)
                .collect()
        }
        ("float32", _) => raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        ("int32", _) => {
            let v = raw
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            return Ok(TfTensor {
                shape,
                data: TfData::I32(v),
            });
        }
        ("bool", _) => {
            return Ok(TfTensor {
                shape,
                data: TfData::I32(raw.iter().map(|&b| i32::from(b != 0)).collect()),
            })
        }
        (other, _) => {
            return Err(WeightError::Fatal(format!(
                "quantisation dtype '{other}' without scale/min"
            )))
        }
    };
    let data = if dtype == "int32" {
        TfData::I32(values.iter().map(|v| v.round() as i32).collect())
    } else {
        TfData::F32(values)
    };
    Ok(TfTensor { shape, data })
}

/// A `Const` node's inline `TensorProto` (JSON form): `floatVal`, `intVal` or base64
/// `tensorContent`. `Ok(None)` when it holds no value (the shards must have it).
fn inline_tensor(t: &Value) -> Result<Option<TfTensor>, String> {
    let dtype = t.get("dtype").and_then(Value::as_str).unwrap_or("DT_FLOAT");
    let shape = tensor_shape(t.get("tensorShape")).map_err(|m| format!("tensorShape: {m}"))?;
    let numel = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or("shape overflows")?;
    let shape_text = format!("{shape:?}");
    let fill = |mut v: Vec<f64>| -> Result<Vec<f64>, String> {
        // TF stores a splat as a single value.
        if v.len() == 1 && numel > 1 {
            v = vec![v[0]; numel];
        }
        if v.len() != numel {
            return Err(format!("{} values for shape {shape_text}", v.len()));
        }
        Ok(v)
    };
    if let Some(content) = t.get("tensorContent").and_then(Value::as_str) {
        let raw = base64_decode(content).ok_or("tensorContent is not base64")?;
        let (width, is_float) = match dtype {
            "DT_FLOAT" => (4, true),
            "DT_INT32" => (4, false),
            other => return Err(format!("inline dtype {other} is not supported")),
        };
        if raw.len() != numel * width {
            return Err(format!(
                "tensorContent has {} bytes for shape {shape:?}",
                raw.len()
            ));
        }
        let data = if is_float {
            TfData::F32(
                raw.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            )
        } else {
            TfData::I32(
                raw.chunks_exact(4)
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            )
        };
        return Ok(Some(TfTensor { shape, data }));
    }
    let list = |key: &str| -> Option<Vec<f64>> {
        t.get(key).and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(|v| {
                    v.as_f64()
                        .or_else(|| v.as_str().and_then(|s| s.parse::<f64>().ok()))
                })
                .collect()
        })
    };
    if let Some(v) = list("floatVal") {
        return Ok(Some(TfTensor {
            shape,
            data: TfData::F32(fill(v)?.into_iter().map(|x| x as f32).collect()),
        }));
    }
    if let Some(v) = list("intVal") {
        return Ok(Some(TfTensor {
            shape,
            data: TfData::I32(fill(v)?.into_iter().map(|x| x as i32).collect()),
        }));
    }
    Ok(None)
}

/// `{"dim": [{"size": "1"}, ...]}` -> dims; `-1` (unknown) comes back as `None` via `dims_opt`.
fn tensor_shape(v: Option<&Value>) -> Result<Vec<usize>, String> {
    dims_opt(v)?
        .into_iter()
        .map(|d| {
            d.and_then(|d| usize::try_from(d).ok())
                .ok_or_else(|| "unknown dim".to_string())
        })
        .collect()
}

/// Dims of a `TensorShapeProto` in JSON form; unknown (`-1`) dims are `None`.
pub(crate) fn dims_opt(v: Option<&Value>) -> Result<Vec<Option<i64>>, String> {
    let Some(v) = v else { return Ok(Vec::new()) };
    if v.get("unknownRank").and_then(Value::as_bool) == Some(true) {
        return Err("unknown rank".into());
    }
    let Some(dims) = v.get("dim") else {
        return Ok(Vec::new());
    };
    let dims = dims.as_array().ok_or("dim is not a list")?;
    dims.iter()
        .map(|d| {
            let size = match d.get("size") {
                None => 0,
                Some(Value::String(s)) => {
                    s.parse::<i64>().map_err(|_| format!("dim size '{s}'"))?
                }
                Some(Value::Number(n)) => n.as_i64().ok_or("dim size is not an integer")?,
                Some(_) => return Err("dim size is not a number".to_string()),
            };
            Ok(if size < 0 { None } else { Some(size) })
        })
        .collect()
}

/// IEEE 754 half -> single precision.
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let mant = u32::from(h & 0x3ff);
    if exp == 0 {
        // Zero or subnormal: mant * 2^-24.
        let v = mant as f32 * f32::from_bits(0x3380_0000);
        if sign != 0 {
            -v
        } else {
            v
        }
    } else if exp == 31 {
        f32::from_bits(sign | 0x7f80_0000 | (mant << 13))
    } else {
        f32::from_bits(sign | ((exp + 112) << 23) | (mant << 13))
    }
}

/// Standard base64 (with or without padding); `None` on any other character.
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            b'\n' | b'\r' | b' ' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_floats() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
        assert!(f16_to_f32(0x7c00).is_infinite());
    }

    #[test]
    fn base64() {
        assert_eq!(base64_decode("U0FNRQ==").unwrap(), b"SAME");
        assert_eq!(base64_decode("Qmlhc0FkZA==").unwrap(), b"BiasAdd");
        assert!(base64_decode("a*b").is_none());
    }
}
