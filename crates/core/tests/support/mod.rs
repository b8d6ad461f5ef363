//! A D1 stand-in for native tests: SQLite with `migrations/` applied, and a
//! batch runner that returns rows in D1's JSON shape.

use std::future::Future;
use std::path::PathBuf;
use std::task::{Context, Poll, Waker};

use contribot_core::sql::{SqlValue, Statement, MAX_BOUND_PARAMS};
use rusqlite::types::{Value as SqliteValue, ValueRef};
use rusqlite::Connection;
use serde_json::{Map, Value};

/// Run a future whose every await is ready at once (the native doubles of
/// SQLite, queues and upstream never wait).
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

/// An in-memory database with every migration applied in order, and
/// foreign keys enforced as D1 enforces them.
pub fn migrated() -> Connection {
    let conn = Connection::open_in_memory().expect("open in-memory SQLite");
    conn.execute_batch("PRAGMA foreign_keys = ON;")
        .expect("enable foreign keys");
    for path in migration_files() {
        let sql = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        conn.execute_batch(&sql)
            .unwrap_or_else(|e| panic!("apply {}: {e}", path.display()));
    }
    conn
}

/// `migrations/*.sql`, in name order.
pub fn migration_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no migrations in {}", dir.display());
    files
}

/// What a batch returned: rows per statement, and rows written per statement.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchResult {
    pub rows: Vec<Vec<Value>>,
    pub changes: Vec<u64>,
}

impl BatchResult {
    /// Rows written by the whole batch.
    pub fn written(&self) -> u64 {
        self.changes.iter().sum()
    }
}

/// Run `statements` as one D1 batch: one transaction, all or nothing.
pub fn try_run(conn: &Connection, statements: &[Statement]) -> Result<BatchResult, String> {
    let tx = conn.unchecked_transaction().map_err(|e| e.to_string())?;
    let mut out = BatchResult {
        rows: Vec::new(),
        changes: Vec::new(),
    };
    for s in statements {
        let before = conn.total_changes();
        let rows = execute(conn, s).map_err(|e| format!("{e}\n  in: {}", s.sql))?;
        out.rows.push(rows);
        out.changes.push(conn.total_changes() - before);
    }
    // Dropping `tx` on an early return above rolls the batch back.
    tx.commit().map_err(|e| e.to_string())?;
    Ok(out)
}

/// Run a batch that must succeed; rows per statement, as D1 returns them.
pub fn run(conn: &Connection, statements: &[Statement]) -> Vec<Vec<Value>> {
    run_counted(conn, statements).rows
}

/// Run a batch that must succeed, keeping the per-statement write counts.
pub fn run_counted(conn: &Connection, statements: &[Statement]) -> BatchResult {
    try_run(conn, statements).unwrap_or_else(|e| panic!("D1 batch failed: {e}"))
}

/// Rows written by a batch that must succeed.
pub fn written(conn: &Connection, statements: &[Statement]) -> u64 {
    run_counted(conn, statements).written()
}

/// Rows of one ad-hoc query (for checking effects), in D1's shape.
pub fn select(conn: &Connection, sql: &str) -> Vec<Value> {
    run(conn, &[Statement::new(sql, vec![])]).remove(0)
}

/// The one value of a one-row, one-column query.
pub fn scalar(conn: &Connection, sql: &str) -> Value {
    let rows = select(conn, sql);
    assert_eq!(rows.len(), 1, "expected one row from {sql}, got {rows:?}");
    let obj = rows[0].as_object().expect("row is an object");
    assert_eq!(obj.len(), 1, "expected one column from {sql}");
    obj.values().next().cloned().unwrap_or(Value::Null)
}

/// D1's limits: at most 100 bound parameters, and exactly as many bound as
/// the text has placeholders (SQLite counts `?NNN` by its largest index).
pub fn assert_d1_shape(conn: &Connection, s: &Statement) {
    assert!(
        s.params.len() <= MAX_BOUND_PARAMS,
        "{} parameters (D1 allows {MAX_BOUND_PARAMS}) in: {}",
        s.params.len(),
        s.sql
    );
    let prepared = conn
        .prepare(&s.sql)
        .unwrap_or_else(|e| panic!("prepare failed: {e}\n  in: {}", s.sql));
    assert_eq!(
        prepared.parameter_count(),
        s.params.len(),
        "placeholders vs bound parameters in: {}",
        s.sql
    );
}

/// Execute one statement, checking D1's limits on it first.
fn execute(conn: &Connection, s: &Statement) -> rusqlite::Result<Vec<Value>> {
    let mut stmt = conn.prepare(&s.sql)?;
    assert!(
        s.params.len() <= MAX_BOUND_PARAMS,
        "{} parameters (D1 allows {MAX_BOUND_PARAMS}) in: {}",
        s.params.len(),
        s.sql
    );
    assert_eq!(
        stmt.parameter_count(),
        s.params.len(),
        "placeholders vs bound parameters in: {}",
        s.sql
    );
    for (i, p) in s.params.iter().enumerate() {
        stmt.raw_bind_parameter(i + 1, to_sqlite(p))?;
    }
    let columns: Vec<String> = stmt
        .column_names()
        .into_iter()
        .map(str::to_string)
        .collect();
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut obj = Map::new();
        for (i, name) in columns.iter().enumerate() {
            obj.insert(name.clone(), to_json(row.get_ref(i)?));
        }
        out.push(Value::Object(obj));
    }
    Ok(out)
}

fn to_sqlite(v: &SqlValue) -> SqliteValue {
    match v {
        SqlValue::Null => SqliteValue::Null,
        SqlValue::Integer(i) => SqliteValue::Integer(*i),
        SqlValue::Real(f) => SqliteValue::Real(*f),
        SqlValue::Text(t) => SqliteValue::Text(t.clone()),
    }
}

/// D1's JSON for a column value: integers and reals as numbers, text as
/// strings, NULL as null, blobs as arrays of bytes.
fn to_json(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => Value::from(f),
        ValueRef::Text(t) => Value::from(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::from(b.to_vec()),
    }
}
