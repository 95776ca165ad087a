//! The untyped form both readers produce: groups of `key = value` entries, values in key-file
//! syntax (GLib escapes, `;`-separated lists). [`apply`] turns it into an [`InferConfig`] through
//! the same per-key code for both file forms.

use std::collections::BTreeSet;
use std::path::Path;

use super::error::{ConfigError, ConfigWarning, KeyCtx};
use super::keys::{self, GroupKind};
use super::InferConfig;

#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Document {
    pub groups: Vec<Group>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Group {
    pub name: String,
    pub line: Option<usize>,
    pub entries: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entry {
    pub key: String,
    /// Key-file syntax: escapes not yet resolved, lists joined with `;`.
    pub value: String,
    pub line: Option<usize>,
}

impl Document {
    /// Adds an entry, merging repeated groups as GLib does.
    pub fn push(&mut self, group: &str, group_line: Option<usize>, entry: Entry) {
        self.group_mut(group, group_line).entries.push(entry);
    }

    pub fn group_mut(&mut self, name: &str, line: Option<usize>) -> &mut Group {
        let index = match self.groups.iter().position(|g| g.name == name) {
            Some(index) => index,
            None => {
                self.groups.push(Group {
                    name: name.to_string(),
                    line,
                    entries: Vec::new(),
                });
                self.groups.len() - 1
            }
        };
        &mut self.groups[index]
    }
}

/// The result of applying a document: the config, its warnings, and which `(group, key)` pairs
/// (canonical key names) the file set.
pub(crate) struct Applied {
    pub config: InferConfig,
    pub warnings: Vec<ConfigWarning>,
    pub from_file: BTreeSet<(String, String)>,
}

/// nvinfer's order, whatever the order in the file: `[property]` (legacy keys after the keys
/// that replace them), then `[class-attrs-all]`, then each `[class-attrs-N]` starting from
/// `[class-attrs-all]`.
pub(crate) fn apply(doc: Document, source: Option<&Path>) -> Result<Applied, ConfigError> {
    let mut config = InferConfig {
        source: source.map(Path::to_path_buf),
        ..InferConfig::default()
    };
    let mut warnings = Vec::new();
    let mut from_file = BTreeSet::new();

    let mut property = None;
    let mut all = None;
    let mut classes = Vec::new();
    for group in doc.groups {
        match keys::group_kind(&group.name) {
            Ok(GroupKind::Property) => property = Some(group),
            Ok(GroupKind::ClassAll) => all = Some(group),
            Ok(GroupKind::Class(id)) => classes.push((id, group)),
            Ok(GroupKind::Unknown) => warnings.push(ConfigWarning {
                file: source.map(Path::to_path_buf),
                line: group.line,
                group: group.name.clone(),
                key: None,
                message: "unknown group, ignored (nvinfer reads [property], [class-attrs-all] and [class-attrs-<class-id>])".into(),
            }),
            Err(reason) => {
                return Err(ConfigError::InvalidGroup {
                    file: source.map(Path::to_path_buf),
                    line: group.line,
                    group: group.name,
                    reason,
                })
            }
        }
    }
    let Some(property) = property else {
        return Err(ConfigError::MissingPropertyGroup {
            file: source.map(Path::to_path_buf),
        });
    };

    let entries = dedup(&property, source, &mut warnings);
    let present: BTreeSet<&str> = entries.iter().map(|e| e.key.as_str()).collect();
    let (legacy, modern): (Vec<&Entry>, Vec<&Entry>) = entries
        .iter()
        .partition(|e| keys::is_superseded_legacy(&e.key));
    for entry in modern.into_iter().chain(legacy) {
        if let Some(replacement) = keys::replacement_present(&entry.key, &present) {
            warnings.push(ctx(source, &property.name, entry).warning(format!(
                "deprecated and ignored because '{replacement}' is set"
            )));
            continue;
        }
        apply_entry(
            &mut config,
            &property.name,
            entry,
            source,
            &mut warnings,
            &mut from_file,
        )?;
    }

    if let Some(all) = all {
        for entry in dedup(&all, source, &mut warnings) {
            apply_entry(
                &mut config,
                &all.name,
                &entry,
                source,
                &mut warnings,
                &mut from_file,
            )?;
        }
    }
    classes.sort_by_key(|(id, _)| *id);
    for (id, group) in classes {
        config
            .class_attrs
            .per_class
            .entry(id)
            .or_insert_with(|| config.class_attrs.all.clone());
        if id >= config.num_detected_classes {
            warnings.push(ConfigWarning {
                file: source.map(Path::to_path_buf),
                line: group.line,
                group: group.name.clone(),
                key: None,
                message: format!(
                    "class id {id} is not below num-detected-classes={}; DeepStream's nvinfer rejects this",
                    config.num_detected_classes
                ),
            });
        }
        for entry in dedup(&group, source, &mut warnings) {
            apply_entry(
                &mut config,
                &group.name,
                &entry,
                source,
                &mut warnings,
                &mut from_file,
            )?;
        }
    }

    Ok(Applied {
        config,
        warnings,
        from_file,
    })
}

fn ctx<'a>(source: Option<&'a Path>, group: &'a str, entry: &'a Entry) -> KeyCtx<'a> {
    KeyCtx {
        file: source,
        line: entry.line,
        group,
        key: &entry.key,
        value: &entry.value,
    }
}

fn apply_entry(
    config: &mut InferConfig,
    group: &str,
    entry: &Entry,
    source: Option<&Path>,
    warnings: &mut Vec<ConfigWarning>,
    from_file: &mut BTreeSet<(String, String)>,
) -> Result<(), ConfigError> {
    let outcome = config.apply_key(ctx(source, group, entry))?;
    warnings.extend(outcome.warning);
    if let Some(key) = outcome.canonical {
        from_file.insert((group.to_string(), key.to_string()));
    }
    Ok(())
}

/// A key given twice: GLib keeps the last value; so do we, with a warning.
fn dedup(group: &Group, source: Option<&Path>, warnings: &mut Vec<ConfigWarning>) -> Vec<Entry> {
    let mut kept: Vec<Entry> = Vec::with_capacity(group.entries.len());
    for entry in &group.entries {
        if let Some(previous) = kept.iter_mut().find(|e| e.key == entry.key) {
            warnings.push(
                ctx(source, &group.name, previous)
                    .warning("given more than once; the last value wins".to_string()),
            );
            *previous = entry.clone();
        } else {
            kept.push(entry.clone());
        }
    }
    kept
}
