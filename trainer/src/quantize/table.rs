//! TensorRT's INT8 calibration cache as text (what nvinfer's `int8-calib-file` reads): a header
//! line `TRT-<version>-<algorithm>`, then one `<tensor>: <scale>` line per tensor, the scale
//! (amax / 127) as the 8 hex digits of its IEEE-754 float32 bits.

use std::collections::BTreeMap;
use std::fmt::Write;

/// The header nvinfer's entropy calibrator (IInt8EntropyCalibrator2) accepts for TensorRT
/// `version` (e.g. 100300 for 10.3.0, 8601 for 8.6.1).
pub fn header(version: u32) -> String {
    format!("TRT-{version}-EntropyCalibration2")
}

/// The cache text for per-tensor `amax` values.
pub fn write(version: u32, amax: &BTreeMap<String, f32>) -> String {
    let mut out = header(version);
    out.push('\n');
    for (name, a) in amax {
        let scale = (a / 127.0).max(f32::MIN_POSITIVE);
        let _ = writeln!(out, "{name}: {:08x}", scale.to_bits());
    }
    out
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TableError {
    #[error("line 1: '{0}' is not a TensorRT calibration header (TRT-<version>-<algorithm>)")]
    Header(String),
    #[error("line {line}: '{text}': {reason}")]
    Line {
        line: usize,
        text: String,
        reason: String,
    },
}

/// A parsed cache: the header's version and algorithm, and scale per tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub version: u32,
    pub algorithm: String,
    pub scales: BTreeMap<String, f32>,
}

pub fn parse(text: &str) -> Result<Table, TableError> {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default().trim();
    let mut parts = first.splitn(3, '-');
    let (Some("TRT"), Some(version), Some(algorithm)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(TableError::Header(first.into()));
    };
    let version = version
        .parse()
        .map_err(|_| TableError::Header(first.into()))?;
    let mut scales = BTreeMap::new();
    for (i, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: &str| TableError::Line {
            line: i + 2,
            text: line.into(),
            reason: reason.into(),
        };
        // Tensor names may hold ':'; the scale follows the last one.
        let (name, hex) = line
            .rsplit_once(": ")
            .ok_or_else(|| bad("expected '<tensor>: <hex>'"))?;
        if hex.len() != 8 {
            return Err(bad("the scale is not 8 hex digits"));
        }
        let bits = u32::from_str_radix(hex, 16).map_err(|_| bad("the scale is not hex"))?;
        let scale = f32::from_bits(bits);
        if !scale.is_finite() || scale <= 0.0 {
            return Err(bad("the scale is not a positive finite float"));
        }
        scales.insert(name.to_string(), scale);
    }
    Ok(Table {
        version,
        algorithm: algorithm.into(),
        scales,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_known_bits() {
        let amax: BTreeMap<String, f32> = [
            ("input".to_string(), 127.0),
            ("tower_0/conv:0".to_string(), 6.35),
        ]
        .into();
        let text = write(100300, &amax);
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("TRT-100300-EntropyCalibration2"));
        // 127 / 127 = 1.0 = 0x3f800000.
        assert_eq!(lines.next(), Some("input: 3f800000"));
        let table = parse(&text).unwrap();
        assert_eq!(table.version, 100300);
        assert_eq!(table.algorithm, "EntropyCalibration2");
        assert_eq!(table.scales["input"], 1.0);
        assert!((table.scales["tower_0/conv:0"] - 0.05).abs() < 1e-7);
    }

    #[test]
    fn malformed_lines_are_named() {
        assert!(matches!(parse("calibration\n"), Err(TableError::Header(_))));
        let err = parse("TRT-8601-EntropyCalibration2\na: 3f800000\nb 3f800000\n").unwrap_err();
        assert!(matches!(err, TableError::Line { line: 3, .. }), "{err}");
        let err = parse("TRT-8601-EntropyCalibration2\na: zz800000\n").unwrap_err();
        assert!(err.to_string().contains("not hex"), "{err}");
    }
}
