//! [`WriteTx`]: the store's write transaction, begun and committed with cached statements.
//!
//! `rusqlite`'s `Transaction` parses `BEGIN IMMEDIATE` and `COMMIT` anew at every write (an
//! `execute_batch` each): 7 300 instructions per location write under
//! `scripts/profile-callgrind.sh`, 5 200 with cached statements (most of it is the commit
//! itself), on a write that is otherwise one cached `UPDATE`.

use std::ops::Deref;

use rnd_domain::ports::StoreError;
use rusqlite::Connection;

use crate::codec::DbResultExt;

/// A write transaction on `conn`, begun `IMMEDIATE` (it takes the write lock at once, so a write
/// never fails half-way for another writer's lock). Reads and writes go through it as through
/// the connection; it rolls back when dropped without [`commit`](Self::commit).
pub(crate) struct WriteTx<'c> {
    conn: &'c Connection,
    /// Begun and neither committed nor rolled back.
    open: bool,
}

impl<'c> WriteTx<'c> {
    /// Begins a write transaction. Takes the connection mutably, as `rusqlite`'s does, so
    /// transactions cannot nest.
    ///
    /// Fails with [`StoreError::Backend`] when SQLite fails (e.g. another process holds the
    /// write lock past the busy timeout).
    pub(crate) fn begin(conn: &'c mut Connection) -> Result<Self, StoreError> {
        let conn: &'c Connection = conn;
        conn.prepare_cached("BEGIN IMMEDIATE")
            .db()?
            .execute([])
            .db()?;
        Ok(Self { conn, open: true })
    }

    /// Commits what was written. When the commit fails the transaction rolls back.
    ///
    /// Fails with [`StoreError::Backend`] when SQLite fails.
    pub(crate) fn commit(mut self) -> Result<(), StoreError> {
        self.conn.prepare_cached("COMMIT").db()?.execute([]).db()?;
        self.open = false;
        Ok(())
    }
}

impl Deref for WriteTx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for WriteTx<'_> {
    fn drop(&mut self) {
        // A failed COMMIT may have ended the transaction already (SQLite rolls back on some
        // errors): roll back only what is still open.
        if self.open
            && !self.conn.is_autocommit()
            && let Err(e) = self.conn.execute_batch("ROLLBACK")
        {
            tracing::error!(error = %e, "could not roll a transaction back");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(conn: &Connection) -> i64 {
        conn.query_row("SELECT count(*) FROM t", [], |row| row.get(0))
            .unwrap()
    }

    fn connection() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        conn
    }

    #[test]
    fn a_committed_write_stays_and_a_dropped_one_is_rolled_back() {
        // GIVEN a connection
        let mut conn = connection();
        // WHEN one transaction writes and commits, and another writes and is dropped
        let tx = WriteTx::begin(&mut conn).unwrap();
        tx.execute("INSERT INTO t VALUES (1)", []).unwrap();
        tx.commit().unwrap();
        {
            let tx = WriteTx::begin(&mut conn).unwrap();
            tx.execute("INSERT INTO t VALUES (2)", []).unwrap();
            assert_eq!(count(&tx), 2, "the transaction sees its own write");
        }
        // THEN only the committed row is there, and the connection is out of any transaction
        assert_eq!(count(&conn), 1);
        assert!(conn.is_autocommit());
        // AND the cached statements begin and commit again
        for x in 3..6 {
            let tx = WriteTx::begin(&mut conn).unwrap();
            tx.execute("INSERT INTO t VALUES (?1)", [x]).unwrap();
            tx.commit().unwrap();
        }
        assert_eq!(count(&conn), 4);
    }

    #[test]
    fn a_transaction_is_immediate_so_another_connection_cannot_write_meanwhile() {
        // GIVEN two connections to one database file, the first in a write transaction that
        // has not written yet
        let dir = std::env::temp_dir().join(format!("rnd-tx-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tx.db");
        let mut first = Connection::open(&path).unwrap();
        first.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        let second = Connection::open(&path).unwrap();
        second
            .busy_timeout(std::time::Duration::from_millis(0))
            .unwrap();
        let tx = WriteTx::begin(&mut first).unwrap();
        // WHEN the second tries to write
        let refused = second.execute("INSERT INTO t VALUES (1)", []);
        // THEN it is refused as busy (the lock was taken at BEGIN), and succeeds once the first
        // commits
        assert!(refused.is_err());
        tx.commit().unwrap();
        second.execute("INSERT INTO t VALUES (1)", []).unwrap();
        assert_eq!(count(&first), 1);
        drop((first, second));
        let _ = std::fs::remove_dir_all(dir);
    }
}
