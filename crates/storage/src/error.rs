use sea_orm::{DbErr, RuntimeErr, SqlErr};

/// What went wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An insert hit a unique key (e.g. a code that is taken). Callers turn
    /// this into the domain's `…_ALREADY_EXISTS`.
    #[error("a row with the same unique key exists: {0}")]
    UniqueViolation(String),
    /// The database could not be reached or gave no connection in time.
    /// Its cause is part of the message (once: sea-orm's errors repeat
    /// their source in their own text).
    #[error("database unavailable: {}", cause(.0))]
    Unavailable(DbErr),
    /// Any other database failure.
    #[error("database error")]
    Database(#[source] DbErr),
    /// A time outside the years 1–9999, which SQLite (times as text) would
    /// not order correctly: a bug upstream, refused before it is stored.
    #[error("time {0} is outside the storable years 1-9999")]
    TimeOutOfRange(chrono::DateTime<chrono::Utc>),
    /// A stored row no longer parses into a domain value.
    #[error("corrupt {table} row {key}: {detail}")]
    Corrupt {
        table: &'static str,
        key: String,
        detail: String,
    },
}

impl From<DbErr> for StorageError {
    fn from(error: DbErr) -> Self {
        if let Some(SqlErr::UniqueConstraintViolation(detail)) = error.sql_err() {
            return StorageError::UniqueViolation(detail);
        }
        if is_outage(&error) {
            return StorageError::Unavailable(error);
        }
        StorageError::Database(error)
    }
}

impl StorageError {
    /// A connection of our own (a notification listener) is gone.
    pub(crate) fn connection_lost(why: impl std::fmt::Display) -> Self {
        StorageError::Unavailable(DbErr::Conn(RuntimeErr::Internal(why.to_string())))
    }
}

/// The root of a database error, as the database or the driver said it.
fn cause(error: &DbErr) -> String {
    let runtime = match error {
        DbErr::Conn(runtime) | DbErr::Exec(runtime) | DbErr::Query(runtime) => runtime,
        other => return other.to_string(),
    };
    match runtime {
        RuntimeErr::SqlxError(sqlx_error) => match sqlx_error.as_database_error() {
            Some(database_error) => database_error.message().to_owned(),
            None => sqlx_error.to_string(),
        },
        RuntimeErr::Internal(why) => why.clone(),
    }
}

/// A connection refused because the database named in `url` does not exist
/// (SQLSTATE 3D000) becomes an error that says how to create it.
pub(crate) fn explain_missing_database(error: DbErr, url: &str) -> StorageError {
    let missing = matches!(&error, DbErr::Conn(RuntimeErr::SqlxError(sqlx_error))
        if sqlx_error.as_database_error().and_then(|database_error| database_error.code()).is_some_and(|code| code == "3D000"));
    let Some(options) = missing
        .then(|| url.parse::<sea_orm::sqlx::postgres::PgConnectOptions>().ok())
        .flatten()
    else {
        return StorageError::from(error);
    };
    let name = options.get_database().unwrap_or(options.get_username());
    StorageError::Unavailable(DbErr::Conn(RuntimeErr::Internal(format!(
        "{}; create it first (createdb -h {} -p {} -U {} {name}) or point database.url at one that exists",
        cause(&error),
        options.get_host(),
        options.get_port(),
        options.get_username(),
    ))))
}

/// Whether a statement gave up waiting for a lock (Postgres `lock_timeout`,
/// SQLSTATE 55P03).
pub(crate) fn is_lock_timeout(error: &DbErr) -> bool {
    let (DbErr::Exec(RuntimeErr::SqlxError(sqlx_error)) | DbErr::Query(RuntimeErr::SqlxError(sqlx_error))) = error
    else {
        return false;
    };
    sqlx_error
        .as_database_error()
        .and_then(|database_error| database_error.code())
        .is_some_and(|code| code == "55P03")
}

/// Whether the database could not be reached, as opposed to refusing a
/// statement: a retry later may succeed.
fn is_outage(error: &DbErr) -> bool {
    let runtime = match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return true,
        DbErr::Exec(runtime) | DbErr::Query(runtime) => runtime,
        _ => return false,
    };
    let RuntimeErr::SqlxError(sqlx_error) = runtime else {
        return false;
    };
    use sea_orm::sqlx::Error;
    match sqlx_error.as_ref() {
        Error::Io(_) | Error::Tls(_) | Error::PoolTimedOut | Error::PoolClosed | Error::WorkerCrashed => true,
        // Postgres SQLSTATE class 08 (connection exception), 57P01–57P03
        // (shutdown, crash, not accepting connections), 3D000 (the database
        // does not exist).
        Error::Database(database_error) => database_error
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P0") || code == "3D000"),
        _ => false,
    }
}

/// `time`, if both databases store and order it correctly: SQLite keeps
/// times as ISO 8601 text, which sorts by value only for four-digit years
/// (`+262143-…` would sort before `2026-…`).
pub(crate) fn storable(time: chrono::DateTime<chrono::Utc>) -> Result<chrono::DateTime<chrono::Utc>, StorageError> {
    use chrono::Datelike;
    if (1..=9999).contains(&time.year()) {
        Ok(time)
    } else {
        Err(StorageError::TimeOutOfRange(time))
    }
}
