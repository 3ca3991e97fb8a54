//! Customization — "Authentication": verify a JWT before the socket joins its
//! namespace. A missing token fails the connection with `missing token`, a
//! bad one with `invalid token`; `sub` becomes the user id (and `userId` in
//! presence), `username` the default display name.
use std::sync::Arc;

use rtcio::auth::{require_auth, JwtAuthenticator, JwtOptions, KeySource};
use rtcio::{Builder, Identity, RelayScope, Rooms};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt::init();
    let secret = std::env::var("JWT_SECRET").expect("set JWT_SECRET");
    let auth = JwtAuthenticator::new(KeySource::Secret(secret.into()), JwtOptions::default())
        .expect("a usable key");
    let mut io = Builder::new(Default::default(), RelayScope::SharedRoom);
    let calls = io.signaling("/");
    require_auth(calls, Arc::new(auth));
    calls.on_connect(|socket| {
        // The identity is in place before any handler runs.
        let user = Identity::user_id(socket).unwrap_or_default();
        tracing::info!(%user, socket = %socket.id(), "connected");
    });
    Rooms::new().attach(calls);
    rtcio::serve(io.build(), &rtcio_examples::addr()).await
}
