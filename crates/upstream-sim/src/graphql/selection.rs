//! Reading an executable document: argument values with variables and
//! defaults applied, `@skip`/`@include`, and field collection through
//! fragments (the spec's CollectFields).

use apollo_compiler::ast::{DirectiveList, Value};
use apollo_compiler::executable::{Field, Selection, SelectionSet};
use apollo_compiler::{ExecutableDocument, Node, Schema};
use serde_json::{Map, Value as Json};

/// Coerced variable values.
pub(crate) type Variables = Map<String, Json>;

pub(crate) fn to_json(value: &Value, vars: &Variables) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Enum(n) => Json::String(n.to_string()),
        Value::Variable(n) => vars.get(n.as_str()).cloned().unwrap_or(Json::Null),
        Value::String(s) => Json::String(s.clone()),
        Value::Float(f) => f
            .try_to_f64()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Json::Null, Json::Number),
        Value::Int(i) => i
            .try_to_i32()
            .map(Json::from)
            .or_else(|_| i.as_str().parse::<i64>().map(Json::from))
            .unwrap_or(Json::Null),
        Value::Boolean(b) => Json::Bool(*b),
        Value::List(items) => Json::Array(items.iter().map(|v| to_json(v, vars)).collect()),
        Value::Object(fields) => Json::Object(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), to_json(v, vars)))
                .collect(),
        ),
    }
}

/// A field's argument: as written (variables substituted), else the schema
/// default, else null.
pub(crate) fn argument(field: &Field, name: &str, vars: &Variables) -> Json {
    if let Some(v) = field.specified_argument_by_name(name) {
        let j = to_json(v, vars);
        // An omitted variable falls back to the argument's default.
        if !(j.is_null()
            && matches!(v.as_ref(), Value::Variable(n) if !vars.contains_key(n.as_str())))
        {
            return j;
        }
    }
    field
        .definition
        .argument_by_name(name)
        .and_then(|d| d.default_value.as_ref())
        .map_or(Json::Null, |d| to_json(d, vars))
}

/// Whether `@skip`/`@include` keep a selection.
pub(crate) fn included(directives: &DirectiveList, vars: &Variables) -> bool {
    let flag = |name: &str| {
        directives
            .get(name)
            .and_then(|d| d.specified_argument_by_name("if"))
            .map(|v| to_json(v, vars).as_bool().unwrap_or(false))
    };
    if flag("skip") == Some(true) {
        return false;
    }
    flag("include") != Some(false)
}

/// One response key and every field occurrence merged under it, each with
/// the type of the selection set it was written in.
pub(crate) struct Collected<'d> {
    pub key: String,
    pub fields: Vec<(&'d str, &'d Node<Field>)>,
}

/// Collects fields of `sets`. With `runtime_type`, fragments apply only when
/// the type satisfies their condition; without it (static analysis) every
/// fragment applies.
pub(crate) fn collect<'d>(
    schema: &Schema,
    doc: &'d ExecutableDocument,
    vars: &Variables,
    sets: &[&'d SelectionSet],
    runtime_type: Option<&str>,
) -> Vec<Collected<'d>> {
    let mut out: Vec<Collected<'d>> = Vec::new();
    let mut visited: Vec<&str> = Vec::new();
    for set in sets {
        collect_into(schema, doc, vars, set, runtime_type, &mut out, &mut visited);
    }
    out
}

fn applies(schema: &Schema, condition: &str, runtime_type: Option<&str>) -> bool {
    match runtime_type {
        None => true,
        Some(t) => condition == t || schema.is_subtype(condition, t),
    }
}

fn collect_into<'d>(
    schema: &Schema,
    doc: &'d ExecutableDocument,
    vars: &Variables,
    set: &'d SelectionSet,
    runtime_type: Option<&str>,
    out: &mut Vec<Collected<'d>>,
    visited: &mut Vec<&'d str>,
) {
    for selection in &set.selections {
        if !included(selection.directives(), vars) {
            continue;
        }
        match selection {
            Selection::Field(field) => {
                let key = field.response_key().to_string();
                let entry = (set.ty.as_str(), field);
                match out.iter_mut().find(|c| c.key == key) {
                    Some(c) => c.fields.push(entry),
                    None => out.push(Collected {
                        key,
                        fields: vec![entry],
                    }),
                }
            }
            Selection::InlineFragment(inline) => {
                let ok = inline
                    .type_condition
                    .as_ref()
                    .is_none_or(|c| applies(schema, c, runtime_type));
                if ok {
                    collect_into(
                        schema,
                        doc,
                        vars,
                        &inline.selection_set,
                        runtime_type,
                        out,
                        visited,
                    );
                }
            }
            Selection::FragmentSpread(spread) => {
                let name = spread.fragment_name.as_str();
                if visited.contains(&name) {
                    continue;
                }
                let Some(fragment) = doc.fragments.get(name) else {
                    continue;
                };
                if !applies(schema, fragment.type_condition(), runtime_type) {
                    continue;
                }
                visited.push(name);
                collect_into(
                    schema,
                    doc,
                    vars,
                    &fragment.selection_set,
                    runtime_type,
                    out,
                    visited,
                );
            }
        }
    }
}

/// The merged sub-selections of every occurrence of a collected field.
pub(crate) fn sub_selections<'d>(c: &Collected<'d>) -> Vec<&'d SelectionSet> {
    c.fields.iter().map(|(_, f)| &f.selection_set).collect()
}
