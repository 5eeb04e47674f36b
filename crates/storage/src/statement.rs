//! Raw statements, written once for both databases.

use sea_orm::{DatabaseBackend, Statement, Value};

use crate::Backend;

impl Backend {
    /// A raw statement, written with Postgres's `$1`, `$2`… placeholders. On
    /// SQLite they become plain `?` (each use its own value, in order) so
    /// that sea-orm's debug log (`RUST_LOG=sea_orm=debug`) shows the
    /// statement with its values, as it does sea-query's own.
    pub(crate) fn statement(self, sql: impl AsRef<str>, values: impl IntoIterator<Item = Value>) -> Statement {
        let sql = sql.as_ref();
        match self {
            Backend::Postgres => Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, values),
            Backend::Sqlite => {
                let values: Vec<Value> = values.into_iter().collect();
                let mut ordered = Vec::with_capacity(values.len());
                let mut plain = String::with_capacity(sql.len());
                let mut rest = sql;
                while let Some(at) = rest.find('$') {
                    let digits = rest[at + 1..].bytes().take_while(u8::is_ascii_digit).count();
                    let value = rest[at + 1..at + 1 + digits]
                        .parse::<usize>()
                        .ok()
                        .and_then(|number| values.get(number.wrapping_sub(1)));
                    plain.push_str(&rest[..at]);
                    match value {
                        Some(value) => {
                            plain.push('?');
                            ordered.push(value.clone());
                        }
                        None => plain.push_str(&rest[at..at + 1 + digits]),
                    }
                    rest = &rest[at + 1 + digits..];
                }
                plain.push_str(rest);
                Statement::from_sql_and_values(DatabaseBackend::Sqlite, plain, ordered)
            }
        }
    }
}

#[cfg(test)]
mod statement_tests {
    use crate::Backend;

    #[test]
    fn sqlite_statements_carry_their_values_in_order_into_the_debug_log() {
        let statement =
            Backend::Sqlite.statement("SELECT $2, $1 WHERE a = $2 AND b = '$x'", ["one".into(), 2_i64.into()]);
        assert_eq!(statement.sql, "SELECT ?, ? WHERE a = ? AND b = '$x'");
        assert_eq!(statement.to_string(), "SELECT 2, 'one' WHERE a = 2 AND b = '$x'");
    }

    #[test]
    fn postgres_statements_keep_their_numbered_placeholders() {
        let statement = Backend::Postgres.statement("SELECT $2, $1", ["one".into(), 2_i64.into()]);
        assert_eq!(statement.sql, "SELECT $2, $1");
        assert_eq!(statement.to_string(), "SELECT 2, 'one'");
    }
}
