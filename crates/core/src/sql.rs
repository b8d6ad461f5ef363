//! D1 statements as data: SQL text plus bound parameters.
//!
//! The shells execute these with D1's `prepare(..).bind(..)` and `batch`;
//! the native tests execute the very same text on SQLite with `migrations/`
//! applied. Rows come back as JSON objects (D1's shape) and are decoded with
//! serde.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// D1 binds at most 100 parameters per statement.
pub const MAX_BOUND_PARAMS: usize = 100;

/// A bound parameter.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SqlValue {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
}

impl From<i64> for SqlValue {
    fn from(v: i64) -> Self {
        SqlValue::Integer(v)
    }
}
impl From<i32> for SqlValue {
    fn from(v: i32) -> Self {
        SqlValue::Integer(i64::from(v))
    }
}
impl From<u32> for SqlValue {
    fn from(v: u32) -> Self {
        SqlValue::Integer(i64::from(v))
    }
}
impl From<bool> for SqlValue {
    fn from(v: bool) -> Self {
        SqlValue::Integer(i64::from(v))
    }
}
impl From<&str> for SqlValue {
    fn from(v: &str) -> Self {
        SqlValue::Text(v.to_string())
    }
}
impl From<String> for SqlValue {
    fn from(v: String) -> Self {
        SqlValue::Text(v)
    }
}
impl From<&String> for SqlValue {
    fn from(v: &String) -> Self {
        SqlValue::Text(v.clone())
    }
}
impl<T: Into<SqlValue>> From<Option<T>> for SqlValue {
    fn from(v: Option<T>) -> Self {
        v.map_or(SqlValue::Null, Into::into)
    }
}

/// One SQL statement with its parameters (`?1`, `?2`, … or `?`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<SqlValue>,
}

impl Statement {
    pub fn new(sql: impl Into<String>, params: Vec<SqlValue>) -> Self {
        Statement {
            sql: sql.into(),
            params,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not decode D1 row: {0}")]
pub struct RowError(pub String);

/// Decode D1 rows (JSON objects) into a typed struct.
pub fn decode_rows<T: DeserializeOwned>(rows: &[serde_json::Value]) -> Result<Vec<T>, RowError> {
    rows.iter()
        .map(|r| T::deserialize(r).map_err(|e| RowError(e.to_string())))
        .collect()
}

/// The column a [`packed`] select returns its rows in.
pub const PACKED_COLUMN: &str = "packed";

/// Wrap a select of `columns` so SQLite returns every row as one JSON text
/// (`[[c1, c2, …], …]`) in a single row: a large result set then crosses
/// the JS↔wasm boundary once, as one string, and decodes straight into
/// typed tuples. `from_where` is the text after `SELECT <columns>`.
pub fn packed(columns: &[&str], from_where: &str) -> String {
    format!(
        "SELECT COALESCE(json_group_array(json_array({})), '[]') AS {PACKED_COLUMN} FROM (SELECT {} {from_where})",
        columns.join(", "),
        columns.join(", ")
    )
}

/// Decode the rows of a [`packed`] select. `T` decodes from a JSON array
/// (a tuple, or a struct with fields in column order).
pub fn decode_packed<T: DeserializeOwned>(rows: &[serde_json::Value]) -> Result<Vec<T>, RowError> {
    let Some(text) = rows
        .first()
        .and_then(|r| r.get(PACKED_COLUMN))
        .and_then(serde_json::Value::as_str)
    else {
        return Ok(Vec::new());
    };
    serde_json::from_str(text).map_err(|e| RowError(e.to_string()))
}

/// Rows written as one JSON parameter: `INSERT … SELECT … FROM json_each(?1)`,
/// each row anything that serialises as a JSON array of the columns.
/// One bound parameter however many rows (D1 binds at most 100 per
/// statement), and one string across the boundary. Chunks of `per_statement`
/// rows keep each statement well under D1's 2 MB value limit.
pub fn json_rows_insert<R: serde::Serialize>(
    head: &str,
    columns: usize,
    extra: &[SqlValue],
    tail: &str,
    rows: &[R],
    per_statement: usize,
) -> Vec<Statement> {
    let selects: Vec<String> = (0..columns)
        .map(|i| format!("json_extract(value, '$[{i}]')"))
        .collect();
    let extras: Vec<String> = (0..extra.len()).map(|i| format!("?{}", i + 2)).collect();
    let select = [selects, extras].concat().join(", ");
    rows.chunks(per_statement.max(1))
        .map(|chunk| {
            // Each row serialises as a JSON array: no tree is built. Rows of
            // columns (numbers, strings, null) cannot fail to serialise.
            let mut params = vec![SqlValue::Text(
                serde_json::to_string(chunk).expect("a row of columns serialises as JSON"),
            )];
            params.extend(extra.iter().cloned());
            // `WHERE true` lets SQLite parse the upsert after a SELECT.
            Statement::new(
                format!("{head} SELECT {select} FROM json_each(?1) WHERE true {tail}"),
                params,
            )
        })
        .collect()
}

/// Build `INSERT ... VALUES (...), (...)` statements for `rows`, each row
/// with `columns.len()` parameters, chunked to stay under D1's 100-parameter
/// limit. `head` is the text up to `VALUES`, `tail` what follows the tuples
/// (e.g. an `ON CONFLICT` clause).
pub fn chunked_insert(
    head: &str,
    tail: &str,
    columns: usize,
    rows: Vec<Vec<SqlValue>>,
) -> Vec<Statement> {
    if columns == 0 || rows.is_empty() {
        return Vec::new();
    }
    let per_statement = (MAX_BOUND_PARAMS / columns).max(1);
    let tuple = format!("({})", vec!["?"; columns].join(", "));
    let mut out = Vec::new();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<SqlValue>> = rows.by_ref().take(per_statement).collect();
        let tuples = vec![tuple.as_str(); chunk.len()].join(", ");
        let params = chunk.into_iter().flatten().collect();
        out.push(Statement::new(
            format!("{head} VALUES {tuples} {tail}"),
            params,
        ));
    }
    out
}

/// `?, ?, ?` for an `IN (...)` list of `n` items.
pub fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_insert_respects_the_parameter_limit() {
        let rows: Vec<Vec<SqlValue>> = (0..250)
            .map(|i| vec![SqlValue::from(i as i64); 7])
            .collect();
        let stmts = chunked_insert("INSERT INTO t (a,b,c,d,e,f,g)", "", 7, rows);
        assert!(stmts.iter().all(|s| s.params.len() <= MAX_BOUND_PARAMS));
        assert_eq!(stmts.iter().map(|s| s.params.len()).sum::<usize>(), 250 * 7);
        assert_eq!(stmts.len(), 250_usize.div_ceil(14));
    }
}
