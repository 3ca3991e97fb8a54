//! Test fixture (not a recipe): a signaling namespace `/` whose sockets may
//! present a token naming a user, and `/admin` admitting the admin token or
//! an admin user's token through the same [`Authenticator`]. It stands in
//! for JWT authentication so the admin suite can check user ids, kick by
//! user and admin identities through the real socket.io-client.
//!
//! `PORT` (0 = any), `ADMIN_TOKEN`, and `FIXTURE_USERS`: a JSON object of
//! token → `{ "userId", "name"?, "admin"? }`. Prints `listening on ADDR`.

use std::collections::HashMap;
use std::sync::Arc;

use rtcio::identity::{AuthError, AuthFuture};
use rtcio::{Admin, Authenticator, Builder, Identity, RelayScope, Rooms};
use rtcio_engine::ConnectError;
use serde_json::Value;

struct Users(HashMap<String, Identity>);

impl Authenticator for Users {
    fn authenticate(&self, token: &str) -> AuthFuture {
        let found = self
            .0
            .get(token)
            .cloned()
            .ok_or(AuthError::Invalid("unknown-user"));
        Box::pin(async move { found })
    }
}

fn users() -> Users {
    let text = std::env::var("FIXTURE_USERS").unwrap_or_else(|_| "{}".into());
    let table: HashMap<String, Value> = serde_json::from_str(&text).expect("FIXTURE_USERS is JSON");
    Users(
        table
            .into_iter()
            .map(|(token, user)| {
                let identity = Identity {
                    user_id: user["userId"].as_str().expect("userId").into(),
                    name: user["name"].as_str().map(Into::into),
                    admin: user["admin"].as_bool().unwrap_or(false),
                    rooms: None,
                };
                (token, identity)
            })
            .collect(),
    )
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let users: Arc<dyn Authenticator> = Arc::new(users());
    let mut io = Builder::new(Default::default(), RelayScope::SharedRoom);
    let rooms = Rooms::new();
    let calls = io.signaling("/");
    rooms.attach(calls);
    let check = users.clone();
    calls.middleware(move |socket| {
        let check = check.clone();
        async move {
            let token = socket
                .auth::<Value>()
                .and_then(|a| a.get("token").and_then(Value::as_str).map(str::to_owned));
            if let Some(token) = token {
                let identity = check
                    .authenticate(&token)
                    .await
                    .map_err(|e| ConnectError::new(e.client_message()))?;
                socket.insert(identity);
            }
            Ok(())
        }
    });
    let mut admin = Admin::new().with_authenticator(users).with_rooms(rooms);
    if let Ok(token) = std::env::var("ADMIN_TOKEN") {
        admin = admin.with_token(token);
    }
    let admin = Arc::new(admin);
    admin.attach(io.namespace("/admin"));
    let io = io.build();
    admin.manage(&io, "/").expect("/ exists");

    let port = std::env::var("PORT").unwrap_or_else(|_| "0".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("listening on {}", listener.local_addr()?);
    let app = axum::Router::new().route_service("/socket.io/", io.service());
    axum::serve(listener, app).await
}
