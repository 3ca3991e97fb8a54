//! Durable chat history behind the [`ChatStore`] trait, and its `sqlx`
//! implementation [`SqlStore`] for SQLite (the default: one file, no other
//! service to run) and PostgreSQL (selected by a `postgres://` URL).
//!
//! The store is opened lazily: nothing here connects until the first
//! operation, and every operation first makes sure the migrations have run.
//! A database that is down at start-up, or goes away later, therefore costs
//! the server nothing but failed chat operations (`unavailable`), and the
//! store recovers by itself when the database is back, without a restart.
//! Queries are built at run time (no compile-time checked macros), with the
//! same SQL for both databases; [`sqlx::QueryBuilder`] writes each one's
//! placeholders.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Postgres, QueryBuilder, Sqlite};

/// The database used when none is configured: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://rtcio.db";

/// How long an operation waits for a database connection before it fails
/// (and the message is refused as `unavailable`).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// The migrations, embedded in the binary so it runs from any directory.
const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "chat messages",
    include_str!("../migrations/0001_chat_messages.sql"),
)];

/// One stored chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// Server-generated and time-ordered: later messages have larger ids.
    pub id: i64,
    pub room_id: String,
    /// The sender's user id when authenticated, else its socket id.
    pub from: String,
    /// The sender's display name.
    pub name: String,
    pub text: String,
    /// Milliseconds since the Unix epoch.
    pub at: i64,
}

impl ChatMessage {
    /// The id as clients see it: 16 lowercase hex digits, so that ordering
    /// the strings orders the messages (a 64-bit number would not survive
    /// JavaScript's doubles).
    pub fn id_text(&self) -> String {
        format_id(self.id)
    }
}

/// `id` as 16 lowercase hex digits.
pub fn format_id(id: i64) -> String {
    format!("{id:016x}")
}

/// The id a client sent back (`before`), if it is one this server issues.
pub fn parse_id(text: &str) -> Option<i64> {
    if text.len() != 16 {
        return None;
    }
    u64::from_str_radix(text, 16)
        .ok()
        .and_then(|v| i64::try_from(v).ok())
}

impl Serialize for ChatMessage {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(6))?;
        map.serialize_entry("id", &self.id_text())?;
        map.serialize_entry("roomId", &self.room_id)?;
        map.serialize_entry("from", &self.from)?;
        map.serialize_entry("name", &self.name)?;
        map.serialize_entry("text", &self.text)?;
        map.serialize_entry("at", &self.at)?;
        map.end()
    }
}

/// Which messages of a room to read.
#[derive(Debug, Clone, Copy)]
pub struct HistoryQuery<'a> {
    pub room_id: &'a str,
    /// Only messages with an id below this one (paging back).
    pub before: Option<i64>,
    /// Only messages with an id up to this one (the history a joiner gets is
    /// cut where its live messages start, so none arrives twice).
    pub up_to: Option<i64>,
    /// At most this many, the most recent ones.
    pub limit: u32,
}

/// What the periodic retention task removes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Messages older than this go.
    pub max_age: Option<Duration>,
    /// Only the newest this-many messages of each room stay.
    pub max_per_room: Option<u32>,
}

/// Why a store operation failed. The text is the database driver's, which
/// never contains the connection URL or its password.
#[derive(Debug)]
pub struct StoreError {
    pub message: String,
    /// A write collided with a row already stored (an id another node of a
    /// cluster issued too): the same messages under new ids may succeed.
    pub conflict: bool,
}

impl StoreError {
    pub fn new(message: impl Into<String>) -> Self {
        StoreError {
            message: message.into(),
            conflict: false,
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreError {}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        let conflict = e
            .as_database_error()
            .is_some_and(|d| d.is_unique_violation());
        StoreError {
            message: e.to_string(),
            conflict,
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::new(format!("migration failed: {e}"))
    }
}

/// The future a [`ChatStore`] operation returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Where chat messages are kept. Implement it to keep them elsewhere; the
/// chat building block ([`crate::chat`]) only ever calls these.
pub trait ChatStore: Send + Sync + 'static {
    /// Stores `batch` atomically: all of it or, on error, none of it.
    fn insert<'a>(&'a self, batch: &'a [ChatMessage]) -> StoreFuture<'a, ()>;
    /// The messages `query` selects, oldest first.
    fn recent<'a>(&'a self, query: HistoryQuery<'a>) -> StoreFuture<'a, Vec<ChatMessage>>;
    /// Applies `retention` (ages measured from `now_ms`); returns how many messages went.
    fn prune(&self, retention: Retention, now_ms: i64) -> StoreFuture<'_, u64>;
    /// The largest id stored, to keep ids increasing across restarts.
    fn last_id(&self) -> StoreFuture<'_, Option<i64>>;
    /// A cheap "can the database be reached right now" check (for `/ready`).
    fn ping(&self) -> StoreFuture<'_, ()>;
}

enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A [`ChatStore`] on SQLite or PostgreSQL.
pub struct SqlStore {
    pool: Pool,
    migrated: AtomicBool,
    migrating: tokio::sync::Mutex<()>,
}

/// Runs `$body` with `$pool` bound to whichever pool the store has (the SQL is the same).
macro_rules! with_pool {
    ($store:expr, $db:ident, $pool:ident => $body:expr) => {
        match &$store.pool {
            Pool::Sqlite($pool) => {
                type $db = Sqlite;
                $body
            }
            Pool::Postgres($pool) => {
                type $db = Postgres;
                $body
            }
        }
    };
}

impl SqlStore {
    /// A store for `url` (`sqlite://PATH`, `sqlite::memory:`, `postgres://...`);
    /// connects on first use. SQLite files are created when missing and put in
    /// WAL mode with `synchronous=FULL`: a message is acknowledged only once it
    /// is on disk. Errors name what is wrong, never the URL's password.
    pub fn open(url: &str) -> Result<SqlStore, StoreError> {
        let pool = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::new(format!("bad SQLite database URL: {e}")))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(5));
            // Each connection to an in-memory database is a database of its own.
            let memory = url.contains(":memory:") || url.contains("mode=memory");
            Pool::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(if memory { 1 } else { 4 })
                    .min_connections(0)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .connect_lazy_with(options),
            )
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url).map_err(|_| {
                StoreError::new(
                    "bad PostgreSQL database URL (postgres://user:password@host:port/db)",
                )
            })?;
            Pool::Postgres(
                PgPoolOptions::new()
                    .max_connections(8)
                    .min_connections(0)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_lazy_with(options),
            )
        } else {
            return Err(StoreError::new(
                "the database URL must start with sqlite: or postgres://",
            ));
        };
        Ok(SqlStore {
            pool,
            migrated: AtomicBool::new(false),
            migrating: tokio::sync::Mutex::new(()),
        })
    }

    /// `sqlite` or `postgres`.
    pub fn kind(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Runs the migrations once (again after a failure, at the next operation).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        if self.migrated.load(Ordering::Acquire) {
            return Ok(());
        }
        let _one_at_a_time = self.migrating.lock().await;
        if self.migrated.load(Ordering::Acquire) {
            return Ok(());
        }
        let migrator = Migrator::new(Embedded).await?;
        match &self.pool {
            Pool::Sqlite(pool) => migrator.run(pool).await?,
            Pool::Postgres(pool) => migrator.run(pool).await?,
        }
        self.migrated.store(true, Ordering::Release);
        Ok(())
    }
}

/// The embedded migrations as a `sqlx` migration source.
#[derive(Debug)]
struct Embedded;

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, sqlx::error::BoxDynError>> + Send + 's>>
    {
        Box::pin(async {
            Ok(MIGRATIONS
                .iter()
                .map(|&(version, description, sql)| {
                    Migration::new(
                        version,
                        Cow::Borrowed(description),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

type Row = (String, i64, String, String, String, i64);

fn from_row((room_id, id, from, name, text, at): Row) -> ChatMessage {
    ChatMessage {
        id,
        room_id,
        from,
        name,
        text,
        at,
    }
}

impl ChatStore for SqlStore {
    fn insert<'a>(&'a self, batch: &'a [ChatMessage]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            if batch.is_empty() {
                return Ok(());
            }
            self.migrate().await?;
            // One multi-row INSERT: atomic, and one commit (one fsync) for the batch.
            with_pool!(self, Db, pool => {
                let mut q = QueryBuilder::<Db>::new(
                    "INSERT INTO chat_messages (room_id, id, from_id, name, body, at) ",
                );
                q.push_values(batch, |mut row, m| {
                    row.push_bind(m.room_id.as_str())
                        .push_bind(m.id)
                        .push_bind(m.from.as_str())
                        .push_bind(m.name.as_str())
                        .push_bind(m.text.as_str())
                        .push_bind(m.at);
                });
                q.build().execute(pool).await?;
            });
            Ok(())
        })
    }

    fn recent<'a>(&'a self, query: HistoryQuery<'a>) -> StoreFuture<'a, Vec<ChatMessage>> {
        Box::pin(async move {
            self.migrate().await?;
            let mut rows: Vec<Row> = with_pool!(self, Db, pool => {
                let mut q = QueryBuilder::<Db>::new(
                    "SELECT room_id, id, from_id, name, body, at FROM chat_messages WHERE room_id = ",
                );
                q.push_bind(query.room_id);
                if let Some(before) = query.before {
                    q.push(" AND id < ").push_bind(before);
                }
                if let Some(up_to) = query.up_to {
                    q.push(" AND id <= ").push_bind(up_to);
                }
                q.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(query.limit));
                q.build_query_as::<Row>().fetch_all(pool).await?
            });
            rows.reverse();
            Ok(rows.into_iter().map(from_row).collect())
        })
    }

    fn prune(&self, retention: Retention, now_ms: i64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            self.migrate().await?;
            let mut removed = 0;
            if let Some(age) = retention.max_age {
                let cutoff =
                    now_ms.saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX));
                removed += with_pool!(self, Db, pool => {
                    let mut q = QueryBuilder::<Db>::new("DELETE FROM chat_messages WHERE at < ");
                    q.push_bind(cutoff);
                    q.build().execute(pool).await?.rows_affected()
                });
            }
            if let Some(keep) = retention.max_per_room {
                removed += with_pool!(self, Db, pool => {
                    let mut q = QueryBuilder::<Db>::new(
                        "DELETE FROM chat_messages WHERE (room_id, id) IN (\
                           SELECT room_id, id FROM (\
                             SELECT room_id, id, ROW_NUMBER() OVER (PARTITION BY room_id ORDER BY id DESC) AS n \
                             FROM chat_messages) ranked \
                           WHERE n > ",
                    );
                    q.push_bind(i64::from(keep)).push(")");
                    q.build().execute(pool).await?.rows_affected()
                });
            }
            Ok(removed)
        })
    }

    fn last_id(&self) -> StoreFuture<'_, Option<i64>> {
        Box::pin(async move {
            self.migrate().await?;
            let last: Option<i64> = with_pool!(self, Db, pool => {
                QueryBuilder::<Db>::new("SELECT MAX(id) FROM chat_messages")
                    .build_query_scalar::<Option<i64>>()
                    .fetch_one(pool)
                    .await?
            });
            Ok(last)
        })
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            with_pool!(self, Db, pool => {
                QueryBuilder::<Db>::new("SELECT 1").build().execute(pool).await?;
            });
            self.migrate().await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(room: &str, id: i64) -> ChatMessage {
        ChatMessage {
            id,
            room_id: room.into(),
            from: "u1".into(),
            name: "Ann".into(),
            text: format!("m{id}"),
            at: id >> 16,
        }
    }

    #[test]
    fn ids_round_trip_and_sort_as_text() {
        let (a, b) = (format_id(5 << 16), format_id((5 << 16) + 1));
        assert!(a < b);
        assert_eq!(parse_id(&a), Some(5 << 16));
        assert_eq!(parse_id("xyz"), None);
        assert_eq!(
            parse_id("ffffffffffffffff"),
            None,
            "negative ids are never issued"
        );
    }

    #[test]
    fn bad_urls_are_refused() {
        assert!(SqlStore::open("mysql://x").is_err());
        let e = SqlStore::open("postgres://u:s3cret@[bad").err().unwrap();
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }

    #[tokio::test]
    async fn stores_pages_and_prunes_on_sqlite() {
        let store = SqlStore::open("sqlite::memory:").unwrap();
        let batch: Vec<_> = (1..=5).map(|i| message("r", i)).collect();
        store.insert(&batch).await.unwrap();
        store.insert(&[message("other", 9)]).await.unwrap();
        let q = |before, up_to, limit| HistoryQuery {
            room_id: "r",
            before,
            up_to,
            limit,
        };
        let ids = |v: Vec<ChatMessage>| v.into_iter().map(|m| m.id).collect::<Vec<_>>();
        assert_eq!(
            ids(store.recent(q(None, None, 3)).await.unwrap()),
            [3, 4, 5]
        );
        assert_eq!(
            ids(store.recent(q(Some(3), None, 3)).await.unwrap()),
            [1, 2]
        );
        assert_eq!(
            ids(store.recent(q(None, Some(4), 2)).await.unwrap()),
            [3, 4]
        );
        assert_eq!(store.last_id().await.unwrap(), Some(9));
        // A duplicate id fails the whole batch, and says it was a collision
        // (the chat writer then stamps the batch again).
        let e = store
            .insert(&[message("r", 6), message("r", 5)])
            .await
            .expect_err("id 5 is taken");
        assert!(e.conflict, "{e}");
        assert_eq!(
            ids(store.recent(q(None, None, 10)).await.unwrap()),
            [1, 2, 3, 4, 5]
        );
        let keep_two = Retention {
            max_age: None,
            max_per_room: Some(2),
        };
        assert_eq!(store.prune(keep_two, 0).await.unwrap(), 3);
        assert_eq!(ids(store.recent(q(None, None, 10)).await.unwrap()), [4, 5]);
        store.ping().await.unwrap();
    }
}
