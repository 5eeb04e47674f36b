use sea_orm::{DbErr, SqlErr};

/// What went wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An insert hit a unique key (e.g. a code that is taken). Callers turn
    /// this into the domain's `…_ALREADY_EXISTS`.
    #[error("a row with the same unique key exists: {0}")]
    UniqueViolation(String),
    /// The database could not be reached or gave no connection in time.
    #[error("database unavailable")]
    Unavailable(#[source] DbErr),
    /// Any other database failure.
    #[error("database error")]
    Database(#[source] DbErr),
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
        match error {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => StorageError::Unavailable(error),
            other => StorageError::Database(other),
        }
    }
}
