//! nvinfer label files: one line per class for detectors; for classifiers, one line per output
//! layer with that layer's labels separated by `;`.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LabelsError {
    #[error("cannot read label file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("label file {path} is empty")]
    Empty { path: PathBuf },
    #[error("label file {path}, line {line}: {reason}")]
    Malformed {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Labels {
    lines: Vec<Vec<String>>,
}

impl Labels {
    pub fn from_file(path: &Path) -> Result<Labels, LabelsError> {
        let bytes = std::fs::read(path).map_err(|source| LabelsError::Read {
            path: path.to_owned(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|e| LabelsError::Malformed {
            path: path.to_owned(),
            line: 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count(),
            reason: "not UTF-8 text".into(),
        })?;
        let labels = Labels::parse(&text);
        if labels.lines.is_empty() {
            return Err(LabelsError::Empty {
                path: path.to_owned(),
            });
        }
        Ok(labels)
    }

    /// Parses label text. Blank lines at the end are ignored; a blank line inside the file is a
    /// class without a name (kept, so class ids stay aligned with line numbers).
    pub fn parse(text: &str) -> Labels {
        let mut lines: Vec<Vec<String>> = text
            .lines()
            .map(|line| {
                line.trim_end_matches('\r')
                    .split(';')
                    .map(|s| s.trim().to_string())
                    .collect()
            })
            .collect();
        while lines.last().is_some_and(|l| l.iter().all(|s| s.is_empty())) {
            lines.pop();
        }
        Labels { lines }
    }

    pub fn from_names<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Labels {
        Labels {
            lines: names.into_iter().map(|n| vec![n.into()]).collect(),
        }
    }

    /// Number of detector classes (lines).
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The label of detector class `class_id`.
    pub fn detector_label(&self, class_id: u32) -> Option<&str> {
        self.lines
            .get(class_id as usize)
            .and_then(|l| l.first())
            .map(String::as_str)
    }

    /// The label of class `class_id` of classifier output layer `attribute_index`. A
    /// single-output classifier whose file lists one label per line (a common variant) is read
    /// the same way as a detector file.
    pub fn classifier_label(&self, attribute_index: u32, class_id: u32) -> Option<&str> {
        let one_per_line = self.lines.len() > 1 && self.lines.iter().all(|l| l.len() == 1);
        if one_per_line {
            return if attribute_index == 0 {
                self.detector_label(class_id)
            } else {
                None
            };
        }
        self.lines
            .get(attribute_index as usize)
            .and_then(|l| l.get(class_id as usize))
            .map(String::as_str)
    }

    /// Writes the detector form (one label per line).
    pub fn to_detector_text(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            out.push_str(&line.join(";"));
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detector_labels_one_per_line() {
        let labels = Labels::parse("person\nbicycle\r\ncar\n\n");
        assert_eq!(labels.len(), 3);
        assert_eq!(labels.detector_label(1), Some("bicycle"));
        assert_eq!(labels.detector_label(2), Some("car"));
        assert_eq!(labels.detector_label(3), None);
    }

    #[test]
    fn classifier_labels_per_output_layer() {
        let labels = Labels::parse("black;blue;red\nsedan;suv\n");
        assert_eq!(labels.classifier_label(0, 2), Some("red"));
        assert_eq!(labels.classifier_label(1, 1), Some("suv"));
        assert_eq!(labels.classifier_label(1, 2), None);
        let one_per_line = Labels::parse("zero\none\ntwo\n");
        assert_eq!(one_per_line.classifier_label(0, 1), Some("one"));
        assert_eq!(one_per_line.classifier_label(1, 1), None);
    }

    #[test]
    fn unreadable_and_empty_files_are_errors_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("nvtl-labels-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.txt");
        std::fs::write(&empty, "\n\n").unwrap();
        let err = Labels::from_file(&empty).unwrap_err().to_string();
        assert!(err.contains("empty.txt") && err.contains("empty"), "{err}");
        let binary = dir.join("binary.txt");
        std::fs::write(&binary, b"ok\n\xff\xfe\n").unwrap();
        let err = Labels::from_file(&binary).unwrap_err().to_string();
        assert!(
            err.contains("binary.txt") && err.contains("line 2"),
            "{err}"
        );
        let err = Labels::from_file(&dir.join("missing.txt"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.txt"), "{err}");
    }
}
