//! Error handling: every refusal is one shape, `error { code, message, roomId? }`,
//! with codes from one enum, so a client handles them in one place.
use rtcio::{Builder, ClientError, ErrorCode, RelayScope, Rooms};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt::init();
    let mut io = Builder::new(Default::default(), RelayScope::SharedRoom);
    let calls = io.signaling("/");
    calls.on("chat-message", |socket, event| {
        let msg = event.arg::<Value>(0).unwrap_or_default();
        let (Some(room), Some(text)) = (msg["roomId"].as_str(), msg["text"].as_str()) else {
            return ClientError::new(ErrorCode::BadRequest, "chat-message needs { roomId, text }")
                .send(socket);
        };
        if text.chars().count() > 1000 {
            return ClientError::new(ErrorCode::BadRequest, "text is longer than 1000 characters")
                .in_room(room)
                .send(socket);
        }
        if !socket.in_room(room) {
            return ClientError::new(ErrorCode::NotInRoom, "join the room first")
                .in_room(room)
                .send(socket);
        }
        let out = json!({ "roomId": room, "text": text, "from": socket.id() });
        let _ = socket.to(room).emit("chat-message", &out);
    });
    Rooms::new().attach(calls);
    rtcio::serve(io.build(), &rtcio_examples::addr()).await
}
