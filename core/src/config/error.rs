//! What reading an nvinfer config can go wrong with: [`ConfigError`] stops the read,
//! [`ConfigWarning`] is reported and the read goes on.

use std::fmt;
use std::path::{Path, PathBuf};

/// Shown in place of a file name for configs read from a string.
const NO_FILE: &str = "<config text>";

fn show_file(file: &Option<PathBuf>) -> String {
    match file {
        Some(path) => path.display().to_string(),
        None => NO_FILE.to_string(),
    }
}

fn show_place(file: &Option<PathBuf>, line: &Option<usize>) -> String {
    match line {
        Some(line) => format!("{}:{line}", show_file(file)),
        None => show_file(file),
    }
}

/// A config that cannot be used. Every variant's message names the file (or `<config text>`
/// for configs read from a string) and, where the reader knows it, the line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("nvinfer config {}: file not found", path.display())]
    NotFound { path: PathBuf },

    #[error("nvinfer config {}: cannot read: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The text is not a key file / YAML document at all.
    #[error("{}: syntax error: {message}", show_place(file, line))]
    Syntax {
        file: Option<PathBuf>,
        /// 1-based; `None` where the YAML parser gave no position.
        line: Option<usize>,
        message: String,
    },

    /// nvinfer requires a `[property]` group (`property:` in YAML).
    #[error("{}: no [property] group", show_file(file))]
    MissingPropertyGroup { file: Option<PathBuf> },

    /// A group name nvinfer rejects, e.g. `[class-attrs-car]`.
    #[error("{}: invalid group [{group}]: {reason}", show_place(file, line))]
    InvalidGroup {
        file: Option<PathBuf>,
        line: Option<usize>,
        group: String,
        reason: String,
    },

    /// A value that does not parse or is out of range.
    #[error("{}: [{group}] {key}={value}: {reason}", show_place(file, line))]
    InvalidValue {
        file: Option<PathBuf>,
        /// 1-based line for key files; `None` for YAML and for [`super::InferConfig::set_key`].
        line: Option<usize>,
        group: String,
        key: String,
        value: String,
        reason: String,
    },
}

impl ConfigError {
    /// The config file the error is about, if it came from a file.
    pub fn file(&self) -> Option<&Path> {
        match self {
            ConfigError::NotFound { path } | ConfigError::Unreadable { path, .. } => Some(path),
            ConfigError::Syntax { file, .. }
            | ConfigError::MissingPropertyGroup { file }
            | ConfigError::InvalidGroup { file, .. }
            | ConfigError::InvalidValue { file, .. } => file.as_deref(),
        }
    }
}

/// Something nvinfer would accept but a user should hear about: an unknown or legacy key, an
/// unknown group, a key that nvinfer ignores, a value nvtl approximates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigWarning {
    pub file: Option<PathBuf>,
    /// 1-based line for key files; `None` for YAML.
    pub line: Option<usize>,
    pub group: String,
    /// `None` when the warning is about the whole group.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: [{}]",
            show_place(&self.file, &self.line),
            self.group
        )?;
        if let Some(key) = &self.key {
            write!(f, " {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Where one key's value came from; builds the errors and warnings about it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyCtx<'a> {
    pub file: Option<&'a Path>,
    pub line: Option<usize>,
    pub group: &'a str,
    pub key: &'a str,
    pub value: &'a str,
}

impl KeyCtx<'_> {
    pub fn invalid(&self, reason: impl Into<String>) -> ConfigError {
        ConfigError::InvalidValue {
            file: self.file.map(Path::to_path_buf),
            line: self.line,
            group: self.group.to_string(),
            key: self.key.to_string(),
            value: self.value.to_string(),
            reason: reason.into(),
        }
    }

    pub fn warning(&self, message: impl Into<String>) -> ConfigWarning {
        ConfigWarning {
            file: self.file.map(Path::to_path_buf),
            line: self.line,
            group: self.group.to_string(),
            key: Some(self.key.to_string()),
            message: message.into(),
        }
    }
}
