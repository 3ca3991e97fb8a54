//! Rooms & presence — "Per-room caches": remember each socket's last
//! media-state, forget it when the socket leaves.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rtcio::events::app;
use rtcio::{Builder, RelayScope};
use rtcio_engine::Sid;
use serde_json::Value;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let last_media_state: Arc<Mutex<HashMap<Sid, (bool, bool)>>> = Default::default();
    let (cache, cleanup) = (last_media_state.clone(), last_media_state.clone());
    let mut io = Builder::new(Default::default(), RelayScope::SharedRoom);
    io.signaling("/")
        // A bare join (no presence), so the media-state has a room to go to.
        .on(app::JOIN_ROOM, rtcio_examples::bare_join)
        .on(app::MEDIA_STATE, move |socket, event| {
            let Ok(data) = event.arg::<Value>(0) else {
                return;
            };
            if let Some(room) = data["roomId"].as_str() {
                let state = (
                    data["mic"].as_bool().unwrap_or(false),
                    data["cam"].as_bool().unwrap_or(false),
                );
                cache.lock().unwrap().insert(socket.id(), state);
                let _ = socket.to(room).emit(app::MEDIA_STATE, &data);
            }
        })
        .on_disconnecting(move |socket, _| {
            cleanup.lock().unwrap().remove(&socket.id());
        });
    rtcio::serve(io.build(), &rtcio_examples::addr()).await
}
