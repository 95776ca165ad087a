//! DeepStream's YAML config form: top-level maps `property:`, `class-attrs-all:`,
//! `class-attrs-<id>:`; values are scalars, YAML sequences, or `;`-separated strings.
//! Values are turned into key-file syntax so that `keys` interprets both forms alike.

use std::path::Path;

use serde_yaml::Value;

use super::document::{Document, Entry};
use super::error::ConfigError;
use super::keyfile;

pub(crate) fn parse(text: &str, source: Option<&Path>) -> Result<Document, ConfigError> {
    let syntax = |line: Option<usize>, message: String| ConfigError::Syntax {
        file: source.map(Path::to_path_buf),
        line,
        message,
    };
    let root: Value = serde_yaml::from_str(text)
        .map_err(|e| syntax(e.location().map(|l| l.line()), e.to_string()))?;
    let mut doc = Document::default();
    let map = match root {
        Value::Mapping(map) => map,
        // An empty document has no [property] group; `apply` reports that.
        Value::Null => return Ok(doc),
        other => {
            return Err(syntax(
                None,
                format!(
                    "expected a map of groups at the top level, found {}",
                    kind(&other)
                ),
            ))
        }
    };
    for (name, body) in map {
        let name = scalar_text(&name).ok_or_else(|| {
            syntax(
                None,
                format!("group name must be a scalar, found {}", kind(&name)),
            )
        })?;
        let group = doc.group_mut(&name, None);
        let entries = match body {
            Value::Mapping(entries) => entries,
            Value::Null => continue,
            other => {
                return Err(syntax(
                    None,
                    format!(
                        "group '{name}' must be a map of keys, found {}",
                        kind(&other)
                    ),
                ))
            }
        };
        for (key, value) in entries {
            let key = scalar_text(&key).ok_or_else(|| {
                syntax(
                    None,
                    format!("a key in group '{name}' is not a scalar ({})", kind(&key)),
                )
            })?;
            let value = match &value {
                Value::Sequence(items) => {
                    let mut texts = Vec::with_capacity(items.len());
                    for item in items {
                        texts.push(scalar_text(item).ok_or_else(|| {
                            syntax(
                                None,
                                format!(
                                    "[{name}] {key}: list items must be scalars, found {}",
                                    kind(item)
                                ),
                            )
                        })?);
                    }
                    keyfile::join_list(&texts)
                }
                scalar => {
                    let text = scalar_text(scalar).ok_or_else(|| {
                        syntax(
                            None,
                            format!(
                                "[{name}] {key}: expected a value or a list, found {}",
                                kind(scalar)
                            ),
                        )
                    })?;
                    // `;` stays a list separator in a YAML string, as in DeepStream's samples.
                    keyfile::escape(&text, false)
                }
            };
            group.entries.push(Entry {
                key,
                value,
                line: None,
            });
        }
    }
    Ok(doc)
}

/// A YAML scalar as nvinfer would read it; `None` for maps, sequences and tagged values.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => Some(String::new()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        Value::Sequence(_) | Value::Mapping(_) | Value::Tagged(_) => None,
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a map",
        Value::Tagged(_) => "a tagged value",
    }
}
