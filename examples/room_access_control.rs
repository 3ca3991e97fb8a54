//! Customization — "Room access control": refuse `join-room` for users not on
//! the allow-list. The policy is asked before the join; a refused socket never
//! joins, so the room's peers never hear of it and never offer to it.
use std::sync::Arc;

use rtcio::auth::{require_auth, JwtAuthenticator, JwtOptions, KeySource};
use rtcio::policy::{Decision, JoinRequest};
use rtcio::{Builder, RelayScope, RoomRules, Rooms};

/// Whatever your membership model is: a database, an in-memory set, an API call.
async fn is_member(user_id: &str, room_id: &str) -> bool {
    matches!(
        (user_id, room_id),
        ("alice", _) | ("bob", "standup") | (_, "lobby")
    )
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt::init();
    let secret = std::env::var("JWT_SECRET").expect("set JWT_SECRET");
    let auth = JwtAuthenticator::new(KeySource::Secret(secret.into()), JwtOptions::default())
        .expect("a usable key");
    let mut io = Builder::new(Default::default(), RelayScope::SharedRoom);
    let calls = io.signaling("/");
    require_auth(calls, Arc::new(auth));
    let policy = |join: JoinRequest| async move {
        let user = join.identity.map(|i| i.user_id).unwrap_or_default();
        if is_member(&user, &join.room).await {
            Decision::Allow
        } else {
            Decision::Forbid // join-error + error { code: "forbidden", roomId }
        }
    };
    Rooms::with_rules(RoomRules {
        policy: Some(Arc::new(policy)),
        ..RoomRules::default()
    })
    .attach(calls);
    rtcio::serve(io.build(), &rtcio_examples::addr()).await
}
