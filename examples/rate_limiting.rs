//! Rate limiting: per-socket budgets checked before any handler. Here chat is
//! limited to 2 messages a second (burst 2) and everything else keeps the
//! defaults; an event over its budget is dropped and the sender gets
//! `error { code: "rate-limited", message, event }` at most once a second.
use rtcio::ratelimit::{EventLimits, Rate, RateLimiter};
use rtcio::{Builder, RelayScope, Rooms};
use serde_json::Value;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt::init();
    let mut io = Builder::new(Default::default(), RelayScope::SharedRoom);
    let calls = io.signaling("/");
    RateLimiter::new(EventLimits {
        overrides: vec![("chat-message".into(), Rate::new(2, 2))],
        ..EventLimits::default()
    })
    .attach(calls);
    calls.on("chat-message", |socket, event| {
        let Ok(msg) = event.arg::<Value>(0) else {
            return;
        };
        if let Some(room) = msg["roomId"].as_str().filter(|r| socket.in_room(r)) {
            let _ = socket.to(room).emit("chat-message", &msg);
        }
    });
    Rooms::new().attach(calls);
    rtcio::serve(io.build(), &rtcio_examples::addr()).await
}
