//! Rooms & presence — "Leaving a room": explicit leave, and implicit
//! disconnect while the rooms are still known (socket.io's `disconnecting`).
use rtcio::events::app;
use rtcio::{Builder, RelayScope};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut io = Builder::new(Default::default(), RelayScope::SharedRoom);
    io.signaling("/")
        // A bare join (no presence), so there is something to leave.
        .on(app::JOIN_ROOM, rtcio_examples::bare_join)
        .on(app::LEAVE_ROOM, |socket, event| {
            let Ok(room) = event
                .arg::<Value>(0)
                .map(|r| r["roomId"].as_str().unwrap_or("").to_owned())
            else {
                return;
            };
            if socket.leave(&room) {
                let _ = socket
                    .to(&room)
                    .emit(app::USER_DISCONNECTED, &json!({ "id": socket.id() }));
            }
        })
        .on_disconnecting(|socket, _reason| {
            // rooms()[0] is the socket's own-id room: skip it.
            for room in socket.rooms().iter().skip(1) {
                let _ = socket
                    .to(room)
                    .emit(app::USER_DISCONNECTED, &json!({ "id": socket.id() }));
            }
        });
    rtcio::serve(io.build(), &rtcio_examples::addr()).await
}
