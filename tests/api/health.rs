use reqwest::{Method, StatusCode};

use crate::helpers::TestApp;
use crate::store_test;

store_test! {
    async fn healthz_answers_over_tls_without_authentication(app: TestApp) {
        let reply = app.send(Method::GET, "/healthz", None, None).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body["status"], "ok");
        assert_eq!(reply.headers["cache-control"], "no-store");
        assert_eq!(reply.headers["x-content-type-options"], "nosniff");
        assert!(reply.headers["strict-transport-security"].to_str().unwrap().starts_with("max-age="));
        assert!(reply.headers.contains_key("x-request-id"));
    }
}

store_test! {
    async fn a_client_that_does_not_trust_the_servers_certificate_is_refused(app: TestApp) {
        let other = assent_server::tls::load_or_generate(tempfile::tempdir().unwrap().path(), "127.0.0.1:0".parse().unwrap()).unwrap();
        let wrong_pin = crate::helpers::pinned_client(&other.leaf_pem());
        let error = wrong_pin.get(app.url("/healthz")).send().await.unwrap_err();
        assert!(error.is_connect(), "the handshake fails: {error:?}");
        let no_roots = reqwest::Client::builder().use_rustls_tls().tls_built_in_root_certs(false).build().unwrap();
        assert!(no_roots.get(app.url("/healthz")).send().await.is_err());
    }
}

store_test! {
    async fn unknown_routes_and_methods_get_the_error_shape(app: TestApp) {
        let reply = app.send(Method::GET, "/api/v1/nothing-here", None, None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert_eq!(reply.code(), "route_not_found");
        let reply = app.send(Method::DELETE, "/healthz", None, None).await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(reply.code(), "method_not_allowed");
    }
}
