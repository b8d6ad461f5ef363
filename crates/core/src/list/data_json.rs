//! The list's `data.json`: `{"repositories": [{name, link, label?,
//! technologies?, description?}, ...]}`, the source the README is generated
//! from.
//!
//! Field types are read leniently: `label` may be a string (comma-joined
//! labels are split) or an array of strings; `technologies` an array of
//! strings or a single string. Anything else in those fields is ignored with
//! a warning. Other top-level keys (`sponsors`, `technologies`) are ignored.

use serde_json::Value;

use super::{resolve_link, split_labels, Entry, ListBuilder, ListError, ParsedList, SkipReason};

/// Parses the list's `data.json`.
///
/// Errors when the text is not JSON, has no `repositories` array, or yields
/// no GitHub repository. Individual bad entries (not an object, no link, a
/// link that is not a string, not a GitHub repository URL) are reported in
/// [`ParsedList::skipped`] and the rest are kept.
pub fn parse_data_json(text: &str) -> Result<ParsedList, ListError> {
    // serde_json refuses nesting deeper than 128 levels, so hostile input
    // cannot exhaust the stack.
    let root: Value =
        serde_json::from_str(text).map_err(|e| ListError::InvalidJson(e.to_string()))?;
    let Value::Object(root) = root else {
        return Err(ListError::WrongShape(format!(
            "top level is a {}, not an object",
            kind(&root)
        )));
    };
    let repositories = match root.get("repositories") {
        Some(Value::Array(entries)) => entries,
        Some(other) => {
            return Err(ListError::WrongShape(format!(
                "`repositories` is a {}, not an array",
                kind(other)
            )))
        }
        None => return Err(ListError::WrongShape("no `repositories` key".to_owned())),
    };

    let mut builder = ListBuilder::default();
    for (index, value) in repositories.iter().enumerate() {
        let Value::Object(fields) = value else {
            let found = kind(value).to_owned();
            builder.skip(index, None, SkipReason::NotAnObject { found });
            continue;
        };
        let name = fields.get("name").and_then(Value::as_str);
        let link = match fields.get("link") {
            None | Some(Value::Null) => Err(SkipReason::MissingLink),
            Some(Value::String(link)) => resolve_link(link),
            Some(other) => Err(SkipReason::LinkNotAString {
                found: kind(other).to_owned(),
            }),
        };
        let url = match link {
            Ok(url) => url,
            Err(reason) => {
                builder.skip(index, name, reason);
                continue;
            }
        };

        let mut entry = Entry {
            name,
            ..Entry::default()
        };
        match fields.get("label") {
            None | Some(Value::Null) => {}
            Some(Value::String(field)) => {
                entry.labels.extend(split_labels(field).map(str::to_owned));
            }
            Some(Value::Array(items)) => {
                for item in items {
                    if let Value::String(field) = item {
                        entry.labels.extend(split_labels(field).map(str::to_owned));
                    }
                }
            }
            Some(other) => builder.warn(format!(
                "entry {index}: `label` is a {}; ignored",
                kind(other)
            )),
        }
        match fields.get("technologies") {
            None | Some(Value::Null) => {}
            Some(Value::String(one)) => entry.technologies.push(one),
            Some(Value::Array(items)) => {
                entry
                    .technologies
                    .extend(items.iter().filter_map(Value::as_str));
            }
            Some(other) => builder.warn(format!(
                "entry {index}: `technologies` is a {}; ignored",
                kind(other)
            )),
        }
        entry.description = fields.get("description").and_then(Value::as_str);
        builder.add(url.slug, entry);
    }
    builder.finish()
}

/// The JSON type of a value, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
