//! Starts the real server on port 0 with a fresh database (a SQLite file, or a PostgreSQL database
//! of its own) and talks to it over HTTPS, trusting only the certificate it generated.

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;

use assent_server::store::{Db, Pool};
use assent_shared::api::{LoginResponse, User};
use assent_shared::domain::Role;
use reqwest::{Method, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server tests use: `ASSENT_TEST_PG_URL`, else the local one.
pub fn pg_base_url() -> String {
    std::env::var("ASSENT_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// `base` with its database name replaced.
pub fn pg_url_for(base: &str, database: &str) -> String {
    let (without_query, query) = match base.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (base, None),
    };
    let authority_end = without_query.find("://").map(|i| i + 3).unwrap_or(0);
    let server = match without_query[authority_end..].find('/') {
        Some(slash) => &without_query[..authority_end + slash],
        None => without_query,
    };
    match query {
        Some(q) => format!("{server}/{database}?{q}"),
        None => format!("{server}/{database}"),
    }
}

/// Creates an empty PostgreSQL database for one test and returns its URL.
pub async fn create_pg_database() -> (String, String) {
    let base = pg_base_url();
    let name = format!("assent_test_{}", Uuid::new_v4().simple());
    let mut admin = PgConnectOptions::from_str(&base)
        .expect("ASSENT_TEST_PG_URL is a PostgreSQL URL")
        .connect()
        .await
        .unwrap_or_else(|e| {
            panic!("cannot reach the test PostgreSQL server (set ASSENT_TEST_PG_URL): {e}")
        });
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .await
        .expect("create the test database");
    admin.close().await.ok();
    (pg_url_for(&base, &name), name)
}

pub async fn drop_pg_database(name: &str) {
    if let Ok(mut admin) = PgConnectOptions::from_str(&pg_base_url())
        .expect("a PostgreSQL URL")
        .connect()
        .await
    {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&mut admin)
            .await;
        admin.close().await.ok();
    }
}

/// A running server with its own database.
#[derive(Clone)]
pub struct TestApp {
    pub backend: Backend,
    pub base_url: String,
    /// The public pages' listener.
    pub public_url: String,
    pub client: reqwest::Client,
    pub db: Db,
    /// Kept so the directory lives as long as the server.
    data_dir: Arc<tempfile::TempDir>,
    pg_database: Option<String>,
    handle: assent_server::startup::ShutdownHandle,
}

/// The real server on a fresh store of `backend`, with the test settings and `extra`
/// (`ASSENT_*` variables).
pub async fn spawn_app_with(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
    let data_dir = tempfile::tempdir().expect("a temporary data directory");
    let (database_url, pg_database) = match backend {
        Backend::Sqlite => (None, None),
        Backend::Postgres => {
            let (url, name) = create_pg_database().await;
            (Some(url), Some(name))
        }
    };
    let data_dir_text = data_dir.path().display().to_string();
    let mut settings = vec![
        ("ASSENT_DATA_DIR", data_dir_text.as_str()),
        // The sender's identity, which marketing must carry.
        ("ASSENT_ORGANISATION_NAME", "Harbour Heating Ltd"),
        (
            "ASSENT_ORGANISATION_POSTAL_ADDRESS",
            "1 Quay Street, Bristol BS1 4DJ",
        ),
        (
            "ASSENT_UNSUBSCRIBE_MAILTO",
            "unsubscribe@harbour-heating.example",
        ),
    ];
    settings.extend_from_slice(extra);
    if let Some(url) = &database_url {
        settings.push(("ASSENT_DATABASE_URL", url));
    }
    let server = assent_tests::start_server(&settings).await;
    let base_url = server.address;
    let public_url = server.public_address;
    let client = pinned_client(&server.certificate_pem);
    let db = server.db;
    let handle = server.handle;
    TestApp {
        backend,
        base_url,
        public_url,
        client,
        db,
        data_dir: Arc::new(data_dir),
        pg_database,
        handle,
    }
}

/// A client that trusts exactly one certificate: the server's.
pub fn pinned_client(certificate_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(certificate_pem.as_bytes()).expect("a PEM certificate"),
        )
        .build()
        .expect("a TLS client")
}

/// Runs `body` against a fresh server on `backend`, then stops the server and drops its database
/// whether or not the body panicked.
pub async fn run<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    run_with(backend, &[], body).await
}

/// [`run`] on a server with more settings (`ASSENT_*` variables).
pub async fn run_with<F, Fut>(backend: Backend, settings: &[(&str, &str)], body: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    assent_server::tls::install_crypto_provider();
    let app = spawn_app_with(backend, settings).await;
    let outcome = tokio::spawn(body(app.clone())).await;
    app.handle.shutdown();
    app.db.close().await;
    if let Some(name) = &app.pg_database {
        drop_pg_database(name).await;
    }
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// Declares a test that runs once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! store_test {
    ($(#[$meta:meta])* async fn $name:ident($app:ident: $app_type:ty) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($app: $app_type) $body

            $(#[$meta])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::helpers::run($crate::helpers::Backend::Sqlite, body).await
            }

            $(#[$meta])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::helpers::run($crate::helpers::Backend::Postgres, body).await
            }
        }
    };
}

pub use assent_tests::PASSWORD;

/// A response: its status and JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_value(self.body.clone())
            .unwrap_or_else(|e| panic!("unexpected body {}: {e}", self.body))
    }

    /// The `code` of an error body.
    pub fn code(&self) -> &str {
        self.body["code"]
            .as_str()
            .unwrap_or_else(|| panic!("not an error body: {}", self.body))
    }

    /// The fields named by a 422.
    pub fn fields(&self) -> Vec<String> {
        self.body["fields"]
            .as_array()
            .map(|f| {
                f.iter()
                    .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

async fn into_reply(response: Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a response body");
    // JSON Lines and other text bodies are kept as a string.
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Reply {
        status,
        headers,
        body,
    }
}

impl TestApp {
    /// The URL of the test's PostgreSQL database (none on SQLite), for a second store on it: a
    /// second replica.
    pub fn pg_url(&self) -> Option<String> {
        self.pg_database
            .as_ref()
            .map(|name| pg_url_for(&pg_base_url(), name))
    }

    /// Stops the server gracefully, as SIGTERM does (its store stays open for the test).
    pub fn stop(&self) {
        self.handle.shutdown();
    }

    /// The server's data directory (its maildir is `mail/` in it).
    pub fn data_dir(&self) -> &std::path::Path {
        self.data_dir.path()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// The address of `path` on the public pages' listener.
    pub fn public_url(&self, path: &str) -> String {
        format!("{}{}", self.public_url, path)
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        into_reply(request.send().await.expect("the server answers")).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.send(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(Method::PUT, path, Some(token), Some(body)).await
    }

    /// Creates a user directly in the store (as the `create-user` command does).
    pub async fn create_user(&self, email: &str, roles: &[Role]) -> User {
        assent_tests::create_user(&self.db, email, roles).await
    }

    /// Logs in and returns the response.
    pub async fn login_as(&self, email: &str, password: &str, device: &str) -> Reply {
        let body = serde_json::json!({"email": email, "password": password, "device_name": device});
        self.send(Method::POST, "/api/v1/sessions", None, Some(body))
            .await
    }

    /// Logs in with the standard password and returns the token.
    pub async fn token(&self, email: &str, device: &str) -> String {
        let reply = self.login_as(email, PASSWORD, device).await;
        assert_eq!(reply.status, StatusCode::CREATED, "login: {}", reply.body);
        reply.json::<LoginResponse>().token
    }

    /// A user with `roles` and a logged-in token.
    pub async fn user_with_token(&self, email: &str, roles: &[Role]) -> (User, String) {
        let user = self.create_user(email, roles).await;
        let token = self.token(email, "test device").await;
        (user, token)
    }

    /// Runs a statement directly against the database, as an attacker with database access would.
    pub async fn raw_sql(&self, sql: &str) -> Result<u64, sqlx::Error> {
        match self.db.pool() {
            Pool::Sqlite(pool) => sqlx::query(sql)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
            Pool::Postgres(pool) => sqlx::query(sql)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
        }
    }
}

/// Runs every future on a task of its own (so they run at once on the runtime's threads), and
/// waits for them all; a task's failed assertion fails the test.
pub async fn join_all<T: Send + 'static>(
    futures: impl IntoIterator<Item = impl std::future::Future<Output = T> + Send + 'static>,
) -> Vec<T> {
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut results = Vec::new();
    for handle in handles {
        results.push(handle.await.expect("the task finished"));
    }
    results
}
