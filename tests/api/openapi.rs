use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::TestApp;
use crate::store_test;

store_test! {
    async fn every_documented_operation_is_routed(app: TestApp) {
        let reply = app.send(Method::GET, "/api/v1/openapi.json", None, None).await;
        assert_eq!(reply.status, StatusCode::OK);
        let paths = reply.body["paths"].as_object().expect("paths").clone();
        assert!(paths.len() >= 10, "the whole API is described: {:?}", paths.keys());
        let mut operations = 0;
        for (path, item) in &paths {
            let concrete = path.replace("{id}", &uuid::Uuid::now_v7().to_string());
            for method in ["get", "post", "put", "patch", "delete"] {
                if item.get(method).is_none() {
                    continue;
                }
                operations += 1;
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let body = (method != Method::GET && method != Method::DELETE).then(|| Value::Object(Default::default()));
                let answer = app.send(method.clone(), &concrete, None, body).await;
                let code = answer.body.get("code").and_then(Value::as_str).unwrap_or("");
                assert!(
                    code != "route_not_found" && code != "method_not_allowed",
                    "{method} {path} is documented but not routed"
                );
            }
        }
        assert!(operations >= 20, "{operations} operations");
    }
}
