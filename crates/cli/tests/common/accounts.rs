//! A registry with access control on, as the client login tests want it: the first
//! administrator from the configuration, and users `dev` (write on team/**) and `reader` (read
//! on team/**), all made through the management API.

use serde_json::{Value, json};

use super::{TestServer, client};

/// The first administrator, from the server's configuration.
pub const ADMIN: (&str, &str) = ("admin", "admin-password-1");
/// The password of every other user these tests make.
pub const PASSWORD: &str = "a-long-password";

/// POSTs `body` to `path` as the administrator; the answer must be a success. Its JSON body,
/// or `Null` when it has none.
pub async fn admin_post(s: &TestServer, path: &str, body: Value) -> Value {
    let resp = client()
        .post(s.url(path))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    assert!(status.is_success(), "POST {path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// A registry with access control on: `dev` writes team/**, `reader` reads it.
pub async fn team_registry() -> TestServer {
    let s =
        TestServer::start_with(|c| c.first_admin = Some((ADMIN.0.into(), ADMIN.1.into()))).await;
    for (name, role) in [("dev", "write"), ("reader", "read")] {
        admin_post(
            &s,
            "/api/v1/users",
            json!({"name": name, "password": PASSWORD}),
        )
        .await;
        admin_post(
            &s,
            "/api/v1/roles",
            json!({"subject": format!("user:{name}"), "pattern": "team/**", "role": role}),
        )
        .await;
    }
    s
}
