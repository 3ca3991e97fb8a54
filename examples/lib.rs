//! Runnable Rust counterparts of the recipes in the rtc.io-server documentation.
//! Each example is one recipe; run one with
//! `cargo run -p rtcio-examples --example join_room` (port from `PORT`, default 3001).

/// The address an example listens on.
pub fn addr() -> String {
    format!(
        "0.0.0.0:{}",
        std::env::var("PORT").unwrap_or_else(|_| "3001".into())
    )
}

/// `join-room { roomId }` reduced to `socket.join(roomId)`: for recipes
/// that need sockets in rooms but are about something else.
pub fn bare_join(socket: &rtcio_engine::Socket, event: rtcio_engine::Event) {
    if let Ok(request) = event.arg::<serde_json::Value>(0) {
        if let Some(room) = request["roomId"].as_str() {
            socket.join(room);
        }
    }
}
