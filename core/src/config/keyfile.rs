//! GLib key-file syntax, as nvinfer's `.txt` configs use it: `[group]` lines, `key=value`
//! lines, comment lines starting with `#` (and `;`, which GLib itself does not allow), values
//! with GLib escapes (`\s \n \t \r \\`, and `\;` inside lists), lists separated by `;`.

use std::path::Path;

use super::document::{Document, Entry};
use super::error::ConfigError;

/// Splits key-file text into groups and entries. Only the syntax is checked here; values are
/// interpreted by `keys`.
pub(crate) fn parse(text: &str, source: Option<&Path>) -> Result<Document, ConfigError> {
    let syntax = |line: usize, message: String| ConfigError::Syntax {
        file: source.map(Path::to_path_buf),
        line: Some(line),
        message,
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut doc = Document::default();
    let mut current: Option<(String, usize)> = None;
    for (index, raw) in text.split('\n').enumerate() {
        let number = index + 1;
        let line = raw.trim_start_matches(is_blank);
        if line.trim_matches(is_blank).is_empty() || line.starts_with('#') || line.starts_with(';')
        {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let Some(name) = rest.trim_end_matches(is_blank).strip_suffix(']') else {
                return Err(syntax(
                    number,
                    format!("group line '{line}' has no closing ']'"),
                ));
            };
            if name.is_empty() || name.contains(['[', ']']) || name.chars().any(char::is_control) {
                return Err(syntax(number, format!("invalid group name '[{name}]'")));
            }
            doc.group_mut(name, Some(number));
            current = Some((name.to_string(), number));
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(syntax(
                number,
                format!("'{line}' is not a group, a key=value pair or a comment"),
            ));
        };
        let key = key.trim_end_matches(is_blank);
        if key.is_empty() {
            return Err(syntax(number, format!("'{line}' has no key before '='")));
        }
        if key.chars().any(char::is_control) {
            return Err(syntax(number, format!("invalid key name '{key}'")));
        }
        let Some((group, group_line)) = &current else {
            return Err(syntax(
                number,
                format!("key '{key}' comes before any [group]"),
            ));
        };
        doc.push(
            group,
            Some(*group_line),
            Entry {
                key: key.to_string(),
                value: value.trim_matches(is_blank).to_string(),
                line: Some(number),
            },
        );
    }
    Ok(doc)
}

/// The whitespace the key-file reader trims from lines, keys and values.
pub(crate) fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\r'
}

/// Resolves GLib escapes. An unknown escape is kept as written (GLib would reject it; paths
/// with backslashes are worth keeping).
pub(crate) fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('s') => out.push(' '),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some(';') => out.push(';'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Writes a string so that [`unescape`] after the reader's trimming gives it back. In a list
/// element `;` is escaped too.
pub(crate) fn escape(value: &str, in_list: bool) -> String {
    let chars: Vec<char> = value.chars().collect();
    let first_solid = chars.iter().position(|&c| c != ' ');
    let last_solid = chars.iter().rposition(|&c| c != ' ');
    let mut out = String::with_capacity(value.len());
    for (i, &c) in chars.iter().enumerate() {
        let edge = first_solid.is_none_or(|f| i < f) || last_solid.is_none_or(|l| i > l);
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            ';' if in_list => out.push_str("\\;"),
            ' ' if edge => out.push_str("\\s"),
            c => out.push(c),
        }
    }
    out
}

/// Splits a raw list value at unescaped `;`. A trailing `;` ends the list, as in GLib, so
/// `a;b;` is two elements.
pub(crate) fn split_list(raw: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                current.push('\\');
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            ';' => items.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        items.push(current);
    }
    items
}

/// Joins list elements so that [`split_list`] gives them back.
pub(crate) fn join_list<S: AsRef<str>>(items: &[S]) -> String {
    let mut out = String::new();
    for item in items {
        out.push_str(&escape(item.as_ref(), true));
        out.push(';');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_keys_comments() {
        let doc = parse(
            "# head\n\n[property]\n  gpu-id = 0 \r\n; semicolon comment\nbatch-size=2\n[class-attrs-all]\neps=0.2\n",
            None,
        )
        .unwrap();
        assert_eq!(doc.groups.len(), 2);
        assert_eq!(doc.groups[0].name, "property");
        assert_eq!(doc.groups[0].entries[0].key, "gpu-id");
        assert_eq!(doc.groups[0].entries[0].value, "0");
        assert_eq!(doc.groups[0].entries[0].line, Some(4));
        assert_eq!(doc.groups[0].entries[1].line, Some(6));
        assert_eq!(doc.groups[1].entries[0].value, "0.2");
    }

    #[test]
    fn repeated_groups_merge() {
        let doc = parse("[property]\na=1\n[x]\n[property]\nb=2\n", None).unwrap();
        assert_eq!(doc.groups.len(), 2);
        assert_eq!(doc.groups[0].entries.len(), 2);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        for (text, line) in [
            ("a=1\n", 1),
            ("[property]\nnot a pair\n", 2),
            ("[property]\n\n[oops\n", 3),
            ("[property]\n=3\n", 2),
        ] {
            match parse(text, Some(Path::new("x.txt"))) {
                Err(ConfigError::Syntax { line: l, .. }) => assert_eq!(l, Some(line), "{text}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn escapes_and_lists() {
        assert_eq!(unescape(r"a\sb\\c\;d\q"), "a b\\c;d\\q");
        assert_eq!(split_list("a;b;"), vec!["a", "b"]);
        assert_eq!(split_list(r"a\;b;c"), vec![r"a\;b", "c"]);
        assert_eq!(split_list("a;;b"), vec!["a", "", "b"]);
        assert!(split_list("").is_empty());
        for s in [
            "",
            " lead",
            "trail ",
            "x;y",
            "back\\slash",
            "two\nlines",
            " ",
        ] {
            let written = escape(s, true);
            assert_eq!(
                unescape(written.trim_matches(is_blank)),
                s,
                "{s:?} -> {written:?}"
            );
        }
        let items = vec!["a;1".to_string(), String::new(), " b ".to_string()];
        let joined = join_list(&items);
        let back: Vec<String> = split_list(&joined)
            .iter()
            .map(|s| unescape(s.trim_matches(is_blank)))
            .collect();
        assert_eq!(back, items);
    }
}
