//! GitHub-shaped GraphQL errors and the mapping from apollo-compiler
//! validation diagnostics to GitHub's error codes.

use apollo_compiler::parser::{SourceMap, SourceSpan};
use apollo_compiler::validation::DiagnosticList;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Location {
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub(crate) enum PathSegment {
    Key(String),
    Index(usize),
}

/// One entry of a response's `errors`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct GqlError {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<PathSegment>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<Location>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extensions: Option<serde_json::Value>,
}

impl GqlError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        GqlError {
            kind: None,
            path: Vec::new(),
            locations: Vec::new(),
            message: message.into(),
            extensions: None,
        }
    }

    pub(crate) fn typed(kind: &'static str, message: impl Into<String>) -> Self {
        GqlError {
            kind: Some(kind),
            ..GqlError::new(message)
        }
    }

    pub(crate) fn coded(code: &str, message: impl Into<String>) -> Self {
        GqlError {
            extensions: Some(serde_json::json!({ "code": code })),
            ..GqlError::new(message)
        }
    }

    pub(crate) fn at(mut self, span: Option<SourceSpan>, sources: &SourceMap) -> Self {
        if let Some(lc) = span.and_then(|s| s.line_column(sources)) {
            self.locations.push(Location {
                line: lc.line,
                column: lc.column,
            });
        }
        self
    }

    pub(crate) fn with_path(mut self, path: Vec<PathSegment>) -> Self {
        self.path = path;
        self
    }

    pub(crate) fn with_extension(mut self, key: &str, value: serde_json::Value) -> Self {
        let ext = self.extensions.get_or_insert_with(|| serde_json::json!({}));
        if let Some(map) = ext.as_object_mut() {
            map.insert(key.to_string(), value);
        }
        self
    }
}

/// Maps apollo-compiler's diagnostic kinds to the codes GitHub's
/// graphql-ruby stack reports.
fn github_code(apollo_name: Option<&str>) -> &'static str {
    match apollo_name {
        Some("UndefinedField") => "undefinedField",
        Some("UndefinedArgument") => "argumentNotAccepted",
        Some("RequiredArgument") => "missingRequiredArguments",
        Some("UndefinedVariable") => "variableNotDefined",
        Some("UnusedVariable") => "variableNotUsed",
        Some("UndefinedFragment") => "undefinedFragment",
        Some("UnusedFragment") => "useAndDefineFragment",
        Some("DisallowedVariableUsage") => "variableMismatch",
        Some("VariableInputType") => "variableRequiresValidType",
        Some(
            "UnsupportedValueType"
            | "IntCoercionError"
            | "FloatCoercionError"
            | "UndefinedEnumValue"
            | "UndefinedInputValue"
            | "RequiredField",
        ) => "argumentLiteralsIncompatible",
        Some("MissingSubselection" | "SubselectionOnScalarType" | "SubselectionOnEnumType") => {
            "selectionMismatch"
        }
        Some("UndefinedDirective") => "undefinedDirective",
        Some("UnsupportedLocation") => "directiveCannotBeApplied",
        Some(
            "UndefinedDefinition"
            | "UndefinedTypeInNamedFragmentTypeCondition"
            | "UndefinedTypeInInlineFragmentTypeCondition",
        ) => "undefinedType",
        Some("InvalidFragmentSpread") => "cannotSpreadFragment",
        Some("InvalidFragmentTarget") => "fragmentOnNonCompositeType",
        Some("ConflictingFieldType" | "ConflictingFieldName" | "ConflictingFieldArgument") => {
            "fieldConflict"
        }
        Some("UniqueArgument") => "argumentUniqueness",
        Some("UniqueVariable") => "variableUniqueness",
        Some("UniqueDirective") => "directiveUniqueness",
        Some("OperationNameCollision") => "operationNameUniqueness",
        Some("FragmentNameCollision") => "fragmentNamesAreUnique",
        Some("AmbiguousAnonymousOperation") => "loneAnonymousOperation",
        Some("RecursiveFragmentDefinition" | "RecursionError") => "infiniteLoop",
        Some("UndefinedRootOperation") => "missingRootType",
        Some(_) => "validationError",
        None => "parseError",
    }
}

/// Quoted names in a graphql-js style message, in order.
fn quoted(message: &str) -> Vec<String> {
    message
        .split('"')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_string())
        .collect()
}

/// Converts validation diagnostics into GitHub's error list. A selection
/// left empty only because its fields were unknown is not reported twice.
pub(crate) fn from_diagnostics(list: &DiagnosticList) -> Vec<GqlError> {
    let has_undefined_field = list
        .iter()
        .any(|d| d.error.unstable_error_name() == Some("UndefinedField"));
    list.iter()
        .filter(|d| {
            !(has_undefined_field && d.error.unstable_error_name() == Some("MissingSubselection"))
        })
        .map(|d| {
            let name = d.error.unstable_error_name();
            let code = github_code(name);
            let compat = d
                .error
                .unstable_compat_message()
                .unwrap_or_else(|| d.error.to_string());
            let mut ext = serde_json::json!({ "code": code });
            let message = match (name, quoted(&compat).as_slice()) {
                (Some("UndefinedField"), [field, ty, ..]) => {
                    ext["typeName"] = ty.clone().into();
                    ext["fieldName"] = field.clone().into();
                    format!("Field '{field}' doesn't exist on type '{ty}'")
                }
                (None, _) => format!("Parse error: {}", d.error),
                _ => compat,
            };
            let mut err = GqlError::new(message);
            if let Some(range) = d.line_column_range() {
                err.locations.push(Location {
                    line: range.start.line,
                    column: range.start.column,
                });
            }
            err.extensions = Some(ext);
            err
        })
        .collect()
}
