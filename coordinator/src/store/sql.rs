//! Statements through the connection's cache of prepared statements: the store's hot paths
//! (lease, heartbeat, report, complete) run the same few dozen statements thousands of times a
//! second under a large fleet, and parsing and planning each one anew cost more than running
//! it. The cache is sized in [`super::schema`] to hold every statement of the store.

use rusqlite::{Connection, Params, Row};

/// `Connection::execute`, prepared once per connection.
pub fn exec<P: Params>(conn: &Connection, sql: &str, params: P) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// `Connection::query_row`, prepared once per connection.
pub fn row<T, P, F>(conn: &Connection, sql: &str, params: P, f: F) -> rusqlite::Result<T>
where
    P: Params,
    F: FnOnce(&Row<'_>) -> rusqlite::Result<T>,
{
    conn.prepare_cached(sql)?.query_row(params, f)
}
