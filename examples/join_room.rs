//! Rooms & presence — "Joining a room": snapshot the room before joining,
//! backfill the newcomer, tell the existing peers, and let them offer.
use rtcio::events::{app, INIT_OFFER};
use rtcio::{Builder, Peer, RelayScope};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut io = Builder::new(Default::default(), RelayScope::SharedRoom);
    io.signaling("/").on(app::JOIN_ROOM, |socket, event| {
        let Ok(req) = event.arg::<Value>(0) else {
            return;
        };
        let (Some(room), name) = (req["roomId"].as_str(), req["name"].as_str().unwrap_or(""))
        else {
            return;
        };
        socket.insert(Peer {
            name: name.into(),
            media: None,
        });
        // Snapshot existing peers BEFORE joining so we don't include the newcomer.
        let existing = socket.ns().room_members(room);
        socket.join(room);
        for id in existing {
            let peer = socket
                .ns()
                .get_socket(id)
                .and_then(|p| p.get::<Peer>())
                .unwrap_or_default();
            let _ = socket.emit(
                app::USER_CONNECTED,
                &json!({ "id": id, "name": &*peer.name }),
            );
        }
        let _ = socket.to(room).emit(
            app::USER_CONNECTED,
            &json!({ "id": socket.id(), "name": name }),
        );
        let _ = socket
            .to(room)
            .emit(INIT_OFFER, &json!({ "source": socket.id() }));
    });
    rtcio::serve(io.build(), &rtcio_examples::addr()).await
}
