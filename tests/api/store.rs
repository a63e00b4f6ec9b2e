use std::collections::BTreeSet;

use assent_server::store::{self, DatabaseLocation, Db, Pool};
use assent_shared::api::ActorRef;
use assent_shared::domain::SystemJob;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::helpers::{create_pg_database, drop_pg_database};

/// (table, column) pairs and index names of a migrated database.
async fn shape(db: &Db) -> (BTreeSet<(String, String)>, BTreeSet<String>) {
    match db.pool() {
        Pool::Sqlite(pool) => {
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
        Pool::Postgres(pool) => {
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
    let postgres = Db::connect(&DatabaseLocation::Postgres(
        assent_server::config::Secret::new(url),
    ))
    .await
    .unwrap();
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

/// A database of each backend, migrated: SQLite in `dir`, PostgreSQL in a database of its own
/// (named, to be dropped).
async fn both_stores(dir: &std::path::Path) -> (DatabaseLocation, DatabaseLocation, String) {
    let (url, name) = create_pg_database().await;
    (
        DatabaseLocation::SqliteFile(dir.join("assent.db")),
        DatabaseLocation::Postgres(assent_server::config::Secret::new(url)),
        name,
    )
}

#[tokio::test]
async fn sqlite_commits_are_flushed_as_configured() {
    use store::{SqliteSync, Tx};
    let dir = tempfile::tempdir().unwrap();
    let location = DatabaseLocation::SqliteFile(dir.path().join("assent.db"));
    // SQLite's numbers: NORMAL is 1, FULL is 2.
    for (sync, expected) in [(SqliteSync::Normal, 1_i64), (SqliteSync::Full, 2)] {
        let db = Db::connect_with(&location, sync).await.unwrap();
        let mut tx = db.begin().await.unwrap();
        let Tx::Sqlite(conn) = &mut *tx else {
            unreachable!("a SQLite file")
        };
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        assert_eq!(
            synchronous, expected,
            "{sync:?}: the write connection's setting"
        );
        drop(tx);
        db.close().await;
    }
}

#[tokio::test]
async fn migrations_run_again_on_an_up_to_date_database_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (sqlite, postgres, name) = both_stores(dir.path()).await;
    for location in [sqlite, postgres] {
        let first = Db::connect(&location).await.unwrap();
        let before = shape(&first).await;
        first.close().await;
        let again = Db::connect(&location).await.unwrap();
        again.migrate().await.unwrap();
        assert_eq!(shape(&again).await, before, "{}", again.backend_name());
        again.close().await;
    }
    drop_pg_database(&name).await;
}

/// The migrations of `backend` up to and including `last`.
async fn migrations_up_to(backend: &str, last: i64) -> sqlx::migrate::Migrator {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../server/migrations")
        .join(backend);
    let mut migrator = sqlx::migrate::Migrator::new(dir).await.unwrap();
    migrator.migrations = migrator
        .migrations
        .iter()
        .filter(|m| m.version <= last)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    migrator
}

/// A ledger event row, every column of it: each is covered by the event's hash.
#[derive(Debug, PartialEq, sqlx::FromRow)]
struct EventRow {
    id: Uuid,
    contact_id: Uuid,
    seq: i64,
    at: DateTime<Utc>,
    recorded_at: DateTime<Utc>,
    recorded_by: Option<Uuid>,
    recorded_via: String,
    external_id: Option<String>,
    event_type: String,
    event: String,
    wording_id: Option<Uuid>,
    source: Option<String>,
    prev_hash: String,
    hash: String,
}

const EVENT_COLUMNS: &str =
    "SELECT id, contact_id, seq, at, recorded_at, recorded_by, recorded_via, external_id, \
    event_type, event, wording_id, source, prev_hash, hash FROM ledger_events ORDER BY id";

/// Writes, as version 5 of the schema had them, a user created at the command line and one
/// created by them, a company and a contact created and changed by the second, with an email,
/// a change in the history and a ledger event; returns the two users, the contact and the event.
macro_rules! old_records {
    ($pool:expr) => {{
        let pool = $pool;
        let (admin, sales, company, contact) =
            (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let at = chrono::DateTime::parse_from_rfc3339("2026-10-01T09:00:00Z").unwrap().with_timezone(&Utc);
        for (id, email, roles) in [(admin, "admin@example.org", "admin"), (sales, "sam@example.org", "sales")] {
            sqlx::query("INSERT INTO users (id, email, email_key, display_name, password_hash, roles, active, created_at, updated_at) VALUES ($1, $2, $2, 'Someone', 'x', $3, TRUE, $4, $4)")
                .bind(id).bind(email).bind(roles).bind(at).execute(pool).await.unwrap();
        }
        let audit = [(1_i64, None, "user_created", admin), (2, Some(admin), "user_created", sales), (3, Some(admin), "user_updated", sales)];
        for (seq, actor, action, object) in audit {
            sqlx::query("INSERT INTO audit_events (seq, at, actor_id, session_id, action, object_kind, object_id, outcome, prev_hash, hash) VALUES ($1, $2, $3, NULL, $4, 'user', $5, 'ok', 'p', 'h')")
                .bind(seq).bind(at).bind(actor).bind(action).bind(object).execute(pool).await.unwrap();
        }
        sqlx::query("INSERT INTO companies (id, version, name, name_key, owner_id, active, created_at, created_by, updated_at, updated_by) VALUES ($1, 1, 'Harbour Mutual', 'harbour mutual', $2, TRUE, $3, $2, $3, $2)")
            .bind(company).bind(sales).bind(at).execute(pool).await.unwrap();
        sqlx::query("INSERT INTO contacts (id, version, first_name, last_name, sort_key, company_id, subscriber_kind, owner_id, active, created_at, created_by, updated_at, updated_by) VALUES ($1, 2, 'Jane', 'Doe', 'doe jane', $2, 'individual', $3, TRUE, $4, $3, $4, $3)")
            .bind(contact).bind(company).bind(sales).bind(at).execute(pool).await.unwrap();
        sqlx::query("INSERT INTO contact_emails (contact_id, position, email, email_key) VALUES ($1, 0, 'jane@example.com', 'jane@example.com')")
            .bind(contact).execute(pool).await.unwrap();
        sqlx::query("INSERT INTO record_changes (record_kind, record_id, version, field, old_value, new_value, changed_by, changed_at) VALUES ('contact', $1, 2, 'last_name', 'Smith', 'Doe', $2, $3)")
            .bind(contact).bind(sales).bind(at).execute(pool).await.unwrap();
        let event = Uuid::now_v7();
        sqlx::query("INSERT INTO ledger_events (id, contact_id, seq, at, recorded_at, recorded_by, recorded_via, external_id, event_type, event, wording_id, source, prev_hash, hash) VALUES ($1, $2, 1, $3, $3, $4, 'user', NULL, 'opt_out', '{\"type\":\"opt_out\",\"channel\":\"email\",\"topic\":\"*\"}', NULL, NULL, 'genesis', 'first')")
            .bind(event).bind(contact).bind(at).bind(sales).execute(pool).await.unwrap();
        (admin, sales, contact)
    }};
}

/// Brings `pool`'s database (of `backend`) to version 5 of the schema, writes [`old_records!`]
/// and returns the two users, the contact and every ledger event row, then closes the pool.
macro_rules! at_version_5 {
    ($pool:expr, $backend:literal) => {{
        let pool = $pool;
        migrations_up_to($backend, 5)
            .await
            .run(&pool)
            .await
            .unwrap();
        let (admin, sales, contact) = old_records!(&pool);
        let events: Vec<EventRow> = sqlx::query_as(EVENT_COLUMNS)
            .fetch_all(&pool)
            .await
            .unwrap();
        pool.close().await;
        ((admin, sales), contact, events)
    }};
}

#[tokio::test]
async fn migration_6_keeps_every_record_and_names_who_made_it() {
    let dir = tempfile::tempdir().unwrap();
    let (sqlite, postgres, name) = both_stores(dir.path()).await;
    for location in [sqlite, postgres] {
        // The schema as it was before records could name any actor, with records in it.
        let (users, contact, events_before) = match &location {
            DatabaseLocation::SqliteFile(path) => {
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true);
                at_version_5!(
                    sqlx::SqlitePool::connect_with(options).await.unwrap(),
                    "sqlite"
                )
            }
            DatabaseLocation::Postgres(url) => {
                at_version_5!(
                    sqlx::PgPool::connect(url.expose()).await.unwrap(),
                    "postgres"
                )
            }
        };
        let db = Db::connect(&location).await.unwrap();
        let backend = db.backend_name();
        let mut tx = db.begin().await.unwrap();
        let kept = store::contacts::get(&mut tx, contact)
            .await
            .unwrap()
            .expect("the contact is kept");
        assert_eq!(kept.emails, ["jane@example.com"], "{backend}");
        assert_eq!(kept.owner_id, Some(users.1), "{backend}");
        assert_eq!(
            kept.created_by,
            ActorRef::Staff { id: users.1 },
            "{backend}"
        );
        assert_eq!(
            kept.updated_by,
            ActorRef::Staff { id: users.1 },
            "{backend}"
        );
        let history =
            store::history::for_record(&mut tx, store::history::RecordKind::Contact, contact)
                .await
                .unwrap();
        assert_eq!(
            history[0].changed_by,
            ActorRef::Staff { id: users.1 },
            "{backend}"
        );
        // Who last changed each user comes from the audit trail; the command line when it names
        // nobody.
        let (_, admin_change) = store::users::get(&mut tx, users.0).await.unwrap().unwrap();
        assert_eq!(
            admin_change.by,
            ActorRef::System {
                job: SystemJob::CommandLine
            },
            "{backend}"
        );
        let (sales_user, sales_change) =
            store::users::get(&mut tx, users.1).await.unwrap().unwrap();
        assert_eq!(
            sales_change.by,
            ActorRef::Staff { id: users.0 },
            "{backend}"
        );
        assert_eq!(sales_user.user.version, 1, "{backend}");
        drop(tx);
        // Every column of every event is as it was, so every event's hash still holds.
        let events_after: Vec<EventRow> = match db.pool() {
            Pool::Sqlite(pool) => sqlx::query_as(EVENT_COLUMNS).fetch_all(pool).await.unwrap(),
            Pool::Postgres(pool) => sqlx::query_as(EVENT_COLUMNS).fetch_all(pool).await.unwrap(),
        };
        assert_eq!(events_after, events_before, "{backend}");
        // The append-only guard is back on the rebuilt table.
        let refused = match db.pool() {
            Pool::Sqlite(pool) => sqlx::query("DELETE FROM ledger_events")
                .execute(pool)
                .await
                .map(|_| ()),
            Pool::Postgres(pool) => sqlx::query("DELETE FROM ledger_events")
                .execute(pool)
                .await
                .map(|_| ()),
        };
        assert!(
            refused.unwrap_err().to_string().contains("append-only"),
            "{backend}"
        );
        db.close().await;
    }
    drop_pg_database(&name).await;
}

/// Writes, at version 6 of the schema, two records of the audit trail's format 1 with their
/// real hashes (the fields of that format, joined by U+001F), and its head; returns the head's
/// hash.
macro_rules! format_1_trail {
    ($pool:expr) => {{
        let pool = $pool;
        let at = "2026-10-01T09:00:00.000000Z";
        let mut prev = assent_server::chain::GENESIS_HASH.to_owned();
        for (seq, action) in [(1_i64, "user_created"), (2, "user_read")] {
            let object = Uuid::now_v7();
            let hash = assent_server::chain::hash_fields(&[
                &seq.to_string(), at, "", "", action, "user", &object.to_string(), "ok", &prev,
            ]);
            let at: DateTime<Utc> = at.parse().unwrap();
            sqlx::query("INSERT INTO audit_events (seq, at, actor_id, session_id, action, object_kind, object_id, outcome, prev_hash, hash) VALUES ($1, $2, NULL, NULL, $3, 'user', $4, 'ok', $5, $6)")
                .bind(seq).bind(at).bind(action).bind(object).bind(&prev).bind(&hash).execute(pool).await.unwrap();
            prev = hash;
        }
        sqlx::query("UPDATE audit_chain_head SET last_seq = 2, last_hash = $1 WHERE id = 1")
            .bind(&prev).execute(pool).await.unwrap();
        prev
    }};
}

#[tokio::test]
async fn migration_7_closes_the_format_1_trail_and_the_new_chains_extend_it() {
    use assent_server::audit::{genesis, Action, AuditRecord, Outcome};
    use assent_server::store::audit::{ChainName, Verification};
    let dir = tempfile::tempdir().unwrap();
    let (sqlite, postgres, name) = both_stores(dir.path()).await;
    for location in [sqlite, postgres] {
        let closed_head = match &location {
            DatabaseLocation::SqliteFile(path) => {
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true);
                let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
                migrations_up_to("sqlite", 6)
                    .await
                    .run(&pool)
                    .await
                    .unwrap();
                let head = format_1_trail!(&pool);
                pool.close().await;
                head
            }
            DatabaseLocation::Postgres(url) => {
                let pool = sqlx::PgPool::connect(url.expose()).await.unwrap();
                migrations_up_to("postgres", 6)
                    .await
                    .run(&pool)
                    .await
                    .unwrap();
                let head = format_1_trail!(&pool);
                pool.close().await;
                head
            }
        };
        let db = Db::connect(&location).await.unwrap();
        let backend = db.backend_name();
        assert_eq!(
            store::audit::verify(&db).await.unwrap(),
            Verification::Intact { records: 2 },
            "{backend}"
        );

        let mut tx = db.begin().await.unwrap();
        store::audit::append(&mut tx, &AuditRecord::new(Action::Logout, Outcome::Ok))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            store::audit::verify(&db).await.unwrap(),
            Verification::Intact { records: 3 },
            "{backend}"
        );
        let sql = "SELECT prev_hash FROM audit_records WHERE chain_id = 1 AND seq = 1";
        let first_link: String = match db.pool() {
            Pool::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
            Pool::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        };
        assert_eq!(
            first_link,
            genesis(1, &closed_head),
            "{backend}: chain 1 starts from the closed head"
        );

        // The closed chain is still checked by its own hash.
        let tamper = match db.pool() {
            Pool::Sqlite(_) => "DROP TRIGGER audit_events_no_update; UPDATE audit_events SET action = 'logout' WHERE seq = 2",
            Pool::Postgres(_) => "ALTER TABLE audit_events DISABLE TRIGGER USER; UPDATE audit_events SET action = 'logout' WHERE seq = 2",
        };
        match db.pool() {
            Pool::Sqlite(pool) => sqlx::raw_sql(tamper)
                .execute(pool)
                .await
                .map(|_| ())
                .unwrap(),
            Pool::Postgres(pool) => sqlx::raw_sql(tamper)
                .execute(pool)
                .await
                .map(|_| ())
                .unwrap(),
        }
        match store::audit::verify(&db).await.unwrap() {
            Verification::Broken { chain, link } => {
                assert_eq!((chain, link.seq), (ChainName::Closed, 2), "{backend}")
            }
            intact => panic!("{backend}: tampering went unnoticed: {intact:?}"),
        }
        db.close().await;
    }
    drop_pg_database(&name).await;
}
