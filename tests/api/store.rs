use std::collections::BTreeSet;

use assent_server::store::{DatabaseLocation, Db};

use crate::helpers::{create_pg_database, drop_pg_database};

/// (table, column) pairs and index names of a migrated database.
async fn shape(db: &Db) -> (BTreeSet<(String, String)>, BTreeSet<String>) {
    match db {
        Db::Sqlite(pool) => {
            let columns: Vec<(String, String)> = sqlx::query_as(
                "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx%'",
            )
            .fetch_all(pool)
            .await
            .unwrap();
            let indexes: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
            )
            .fetch_all(pool)
            .await
            .unwrap();
            (columns.into_iter().collect(), indexes.into_iter().collect())
        }
        Db::Postgres(pool) => {
            let columns: Vec<(String, String)> = sqlx::query_as(
                "SELECT table_name::text, column_name::text FROM information_schema.columns \
                 WHERE table_schema = 'public' AND table_name NOT LIKE '\\_sqlx%'",
            )
            .fetch_all(pool)
            .await
            .unwrap();
            let indexes: Vec<String> = sqlx::query_scalar(
                "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public' \
                 AND indexname NOT IN (SELECT conname FROM pg_constraint) AND tablename NOT LIKE '\\_sqlx%'",
            )
            .fetch_all(pool)
            .await
            .unwrap();
            (columns.into_iter().collect(), indexes.into_iter().collect())
        }
    }
}

#[tokio::test]
async fn both_migration_sets_describe_the_same_tables_and_columns() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Db::connect(&DatabaseLocation::SqliteFile(dir.path().join("shape.db")))
        .await
        .unwrap();
    let (url, name) = create_pg_database().await;
    let postgres = Db::connect(&DatabaseLocation::Postgres(url)).await.unwrap();
    let (sqlite_columns, sqlite_indexes) = shape(&sqlite).await;
    let (pg_columns, pg_indexes) = shape(&postgres).await;
    postgres.close().await;
    drop_pg_database(&name).await;
    assert!(sqlite_columns
        .iter()
        .any(|(t, c)| t == "audit_events" && c == "hash"));
    let only_sqlite: Vec<_> = sqlite_columns.difference(&pg_columns).collect();
    let only_pg: Vec<_> = pg_columns.difference(&sqlite_columns).collect();
    assert!(
        only_sqlite.is_empty() && only_pg.is_empty(),
        "only in SQLite: {only_sqlite:?}; only in PostgreSQL: {only_pg:?}"
    );
    assert_eq!(sqlite_indexes, pg_indexes);
}

#[tokio::test]
async fn migrations_run_again_on_an_up_to_date_database_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let location = DatabaseLocation::SqliteFile(dir.path().join("again.db"));
    let first = Db::connect(&location).await.unwrap();
    first.close().await;
    let again = Db::connect(&location).await.unwrap();
    again.migrate().await.unwrap();
}
