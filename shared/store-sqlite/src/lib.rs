//! The embedded SQLite store: every RND Realtime port ([`ConnectionStore`], [`OrderStore`],
//! [`LiveLocationStore`], [`ProfileStore`], [`InboxStore`], [`DeviceStore`], [`PushLedger`])
//! over one SQLite database, plus a durable change log of the orders
//! "table" that the local stack polls to emulate the DynamoDB stream.
//!
//! It mirrors the DynamoDB design (`docs/table-design.md`): the same items and the same
//! conditions, expressed as SQL. An order is two rows (the order document and its small live
//! row), a transition is one transaction conditioned on both rows' `seq`, and a driver location
//! is one conditional `UPDATE` of the live row. Every write to an order's rows logs the change
//! with its old and new image, as part of the write, so a poller sees every change once, in
//! order: on a file in the `change_log` table (in the same SQLite transaction, images as JSON of
//! [`OrderRecord`]), which survives restarts; in memory in the log's own memory.
//!
//! [`SqliteStore`] is `Send + Sync`: it keeps one connection behind a mutex, so many tasks may
//! use it at once. A store on a file runs each call on tokio's blocking pool; an in-memory store
//! runs it on the caller's task, yielding while another task holds the connection. Write transactions are
//! `BEGIN IMMEDIATE`, so two processes sharing a database file serialise too.
//!
//! # Layout
//! - [`SqliteStore`] (this module): opening a database and running work off the async runtime.
//! - `schema`: the tables, indexes and migrations (versioned with `PRAGMA user_version`).
//! - `codec`: row values ↔ domain values (timestamps, JSON documents, the list cursor), and
//!   error mapping.
//! - `connections`: [`ConnectionStore`] (connections, room memberships, sessions).
//! - `orders`: [`OrderStore`] (orders, live rows, order numbers, listing).
//! - `location`: [`LiveLocationStore`] (the rate-limited driver location write).
//! - `profiles`: [`ProfileStore`] (one JSON document per user).
//! - `inbox`: [`InboxStore`] (the per-user inbox of user-room events).
//! - `devices`: [`DeviceStore`] and [`PushLedger`] (push notification devices, pushes sent).
//! - `change_log`: the change log ([`SqliteStore::changes_after`], [`LoggedChange`]) and
//!   consumer checkpoints ([`SqliteStore::checkpoint`], [`SqliteStore::save_checkpoint`]).
//! - `testing` (feature `test-support`): raw column readers for the conformance harness.
//!
//! [`ConnectionStore`]: rnd_domain::ports::ConnectionStore
//! [`OrderStore`]: rnd_domain::ports::OrderStore
//! [`LiveLocationStore`]: rnd_domain::ports::LiveLocationStore
//! [`ProfileStore`]: rnd_domain::ports::ProfileStore
//! [`InboxStore`]: rnd_domain::ports::InboxStore
//! [`DeviceStore`]: rnd_domain::ports::DeviceStore
//! [`PushLedger`]: rnd_domain::ports::PushLedger
//! [`OrderRecord`]: rnd_domain::OrderRecord

mod change_log;
mod codec;
mod connections;
mod devices;
mod idempotency;
mod inbox;
mod limits;
mod location;
mod orders;
mod presence;
mod profiles;
mod schema;
#[cfg(feature = "test-support")]
mod testing;
mod tx;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rnd_domain::ports::StoreError;
use rusqlite::Connection;
use rusqlite::config::DbConfig;

use crate::codec::DbResultExt;

/// `mutex`'s guard, also when a panic poisoned it: what the store keeps behind its small
/// mutexes is whole after every statement, so it is sound.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub use change_log::LoggedChange;
pub use rnd_domain::change::{ChangeKind, UnknownChangeKind};

/// How long a statement waits for another process's lock before failing with `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How many prepared statements the connection keeps (rusqlite's default, 16, is fewer than the
/// statements the location and fan-out paths alone run, so they evicted one another).
const STATEMENT_CACHE: usize = 64;

/// The embedded store. Cheap to share: wrap it in an `Arc` (it is `Send + Sync`).
///
/// Besides the ports, it serves the change log to a poller:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rnd_domain::ports::StoreError> {
/// use rnd_store_sqlite::SqliteStore;
///
/// let store = SqliteStore::in_memory()?;
/// let mut position = store.checkpoint("fanout").await?;
/// for change in store.changes_after(position, 100).await? {
///     // derive and send events from change.change (its kind, old and new item) …
///     position = change.position;
/// }
/// store.save_checkpoint("fanout", position).await?;
/// # Ok(())
/// # }
/// ```
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// The database file, `None` for an in-memory database.
    path: Option<PathBuf>,
    /// Moved on after every write that logged a change: what wakes the change log's pollers.
    changes: tokio::sync::watch::Sender<u64>,
    /// An in-memory store's change log (a file's is its `change_log` table).
    memory: Option<Arc<Mutex<change_log::MemoryLog>>>,
    /// An in-memory store's room members as last read, which every membership write clears
    /// for the rooms it touches; `None` on a file (other processes write it).
    rooms: Option<Arc<connections::RoomCache>>,
    /// Told every time an in-memory store's work releases the connection: what a task that
    /// found it held waits for.
    released: tokio::sync::Notify,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (or creates) the database file at `path`, creating its parent directory, and
    /// brings its schema up to date. The database runs in WAL mode with foreign keys on and a
    /// busy timeout, so several processes may share the file.
    ///
    /// Fails with [`StoreError::Backend`] when the directory or file cannot be created or
    /// opened, and with [`StoreError::Corrupt`] when the file was written by a newer version
    /// of this crate (a schema version this build does not know).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(StoreError::backend)?;
        }
        let mut conn = Connection::open(path).db()?;
        configure(&conn, true)?;
        schema::migrate(&mut conn)?;
        tracing::debug!(path = %path.display(), "opened sqlite store");
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            path: Some(path.to_path_buf()),
            changes: tokio::sync::watch::Sender::new(0),
            memory: None,
            rooms: None,
            released: tokio::sync::Notify::new(),
        })
    }

    /// A fresh, private in-memory database with the current schema (tests, throwaway runs).
    /// Nothing survives dropping the store.
    ///
    /// Fails with [`StoreError::Backend`] only if SQLite itself cannot start.
    pub fn in_memory() -> Result<Self, StoreError> {
        let mut conn = Connection::open_in_memory().db()?;
        configure(&conn, false)?;
        schema::migrate(&mut conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            path: None,
            changes: tokio::sync::watch::Sender::new(0),
            memory: Some(Arc::default()),
            rooms: Some(Arc::default()),
            released: tokio::sync::Notify::new(),
        })
    }

    /// The database file, `None` for an in-memory store.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// A receiver that sees a change every time this store has logged a change (a committed
    /// write of an order or live row), so a change log poller can wait for one instead of
    /// sleeping. Writes by another process sharing the file are not seen: poll for those too.
    pub fn subscribe_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Tells the change log's pollers a change was logged (when `logged`).
    pub(crate) fn changed(&self, logged: bool) {
        if logged {
            self.changes
                .send_modify(|version| *version = version.wrapping_add(1));
        }
    }

    /// Runs `work` with the connection and returns its result.
    ///
    /// An in-memory store runs `work` right here, on the caller's thread: its statements take
    /// microseconds and nothing outside this process can hold its lock, so handing them to
    /// tokio's blocking pool (a thread woken, a task scheduled, per call) cost more than the work
    /// (the profile of `make bench-knee` showed it). A file may be locked by another process
    /// (busy timeout: seconds), so a store on a file runs `work` on the blocking pool, where
    /// waiting blocks no async worker. Either way the mutex is never held across an await.
    ///
    /// A panic inside `work` is resumed in the caller. A poisoned mutex is recovered: a panic
    /// mid-transaction rolled that transaction back when it unwound, so the connection is sound.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        if let Some(log) = &self.memory {
            let mut conn = self.lock_without_blocking().await;
            // Positioned and added under the connection's lock: the log keeps commit order.
            let next_position = lock(log).next_position();
            let (mut result, appended) =
                change_log::collect_appended(next_position, || work(&mut conn));
            if result.is_ok()
                && !appended.is_empty()
                && let Err(e) = lock(log).push(appended)
            {
                result = Err(e);
            }
            drop(conn);
            self.released.notify_waiters();
            return result;
        }
        let conn = Arc::clone(&self.conn);
        let task = tokio::task::spawn_blocking(move || {
            let mut guard = lock(&conn);
            // A file may have other writers: its pollers always read the log itself, so the
            // changes logged here are not collected.
            work(&mut guard)
        });
        match task.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(StoreError::backend(e)),
        }
    }
}

impl SqliteStore {
    /// An in-memory store's cache of room members; `None` on a file.
    pub(crate) fn room_cache(&self) -> Option<Arc<connections::RoomCache>> {
        self.rooms.clone()
    }

    /// An in-memory store's change log, which keeps each order's last committed live state
    /// ([`MemoryLog::live`](change_log::MemoryLog::live)); `None` on a file.
    pub(crate) fn memory_log(&self) -> Option<Arc<Mutex<change_log::MemoryLog>>> {
        self.memory.clone()
    }

    /// The connection, for an in-memory store's work on an async worker: while another task
    /// holds it (microseconds), this task yields to the worker's other tasks rather than put
    /// the worker thread to sleep on the lock, which stalled every socket that worker serves
    /// (with 2 workers, the stack used 1.2 of its 2 cores at the knee).
    ///
    /// The waiting task sleeps until the holder releases the connection, then tries again
    /// (whoever comes first takes it: no hand-over to a task that is not running yet). It used
    /// to retry after yielding, which spun on both cores once the stack fell behind, and made
    /// it fall further behind (`make bench-knee` at 12 Hz). A holder that does not tell (a
    /// test's thread) is noticed within a millisecond.
    async fn lock_without_blocking(&self) -> std::sync::MutexGuard<'_, Connection> {
        let try_lock = || match self.conn.try_lock() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        };
        if let Some(guard) = try_lock() {
            return guard;
        }
        loop {
            // Listening before trying again, so a release in between is not missed.
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if let Some(guard) = try_lock() {
                return guard;
            }
            let _ = tokio::time::timeout(Duration::from_millis(1), released).await;
        }
    }
}

/// Connection settings: busy timeout, foreign keys, and (for files) WAL journaling with
/// `synchronous = NORMAL`, which in WAL mode loses nothing on a process crash.
fn configure(conn: &Connection, file: bool) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT).db()?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // The query planner stability guarantee: a statement keeps its plan whatever values are
    // bound. Without it, SQLite built with STAT4 (as rusqlite's bundled one is) re-prepares a
    // statement whenever a new value is bound to a parameter its plan compares with an indexed
    // column: the change log read, the room query and the live row read were parsed and
    // planned again on every call, a third of the stack's instructions per location update
    // (callgrind, `docs/load-bench.md`). Our queries have one right plan each.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .db()?;
    conn.pragma_update(None, "foreign_keys", true).db()?;
    if file {
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .db()?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(%mode, "sqlite refused WAL journaling; continuing with its mode");
        }
        conn.pragma_update(None, "synchronous", "NORMAL").db()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + 'static>() {}

    #[test]
    fn the_store_can_be_shared_between_tasks() {
        // GIVEN the store type
        // WHEN it is required to be Send + Sync + 'static
        // THEN it compiles
        assert_send_sync::<SqliteStore>();
    }

    #[test]
    fn a_task_waiting_for_the_in_memory_connection_leaves_its_worker_to_other_tasks() {
        use rnd_domain::ports::LiveLocationStore;
        // GIVEN an in-memory store whose connection another thread holds for 200 ms
        let store = Arc::new(SqliteStore::in_memory().unwrap());
        let held = Arc::clone(&store);
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let holder = std::thread::spawn(move || {
            let _conn = held.conn.lock().unwrap();
            locked_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(200));
        });
        locked_rx.recv().unwrap();
        // WHEN a task on a one-thread runtime reads from the store meanwhile, next to a task
        // that counts while it runs
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let (read, counted_while_waiting) = runtime.block_on(async {
            let ticking = tokio::spawn(async {
                for _ in 0..10 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            });
            let order = rnd_domain::OrderId::parse("o-waiting").unwrap();
            let read = store.get_live(&order).await;
            (read, ticking.is_finished())
        });
        holder.join().unwrap();
        // THEN the read waited for the connection and succeeded
        assert_eq!(read.unwrap(), None);
        // AND the other task ran to its end meanwhile (50 ms of the 200): the one thread was
        // never blocked on the lock
        assert!(counted_while_waiting);
    }

    #[test]
    fn an_in_memory_store_has_foreign_keys_on_and_the_current_schema() {
        // GIVEN a fresh in-memory store
        let store = SqliteStore::in_memory().unwrap();
        // WHEN its settings are read back
        let conn = store.conn.lock().unwrap();
        let fk: bool = conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        // THEN foreign keys are enforced and the schema is current
        assert!(fk);
        assert_eq!(version, schema::SCHEMA_VERSION);
        assert!(store.path().is_none());
    }
}
