//! Customization — "Per-room limits": cap the peers of a room (full mesh is
//! practical up to about 8). The check runs under the join lock, so joins
//! racing for the last place cannot both get it; a full room answers
//! `join-error { reason: "room-full" }` and `error { code: "room-full" }`.
use rtcio::{Builder, RelayScope, RoomRules, Rooms};

const MAX_PEERS: usize = 4;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt::init();
    let mut io = Builder::new(Default::default(), RelayScope::SharedRoom);
    Rooms::with_rules(RoomRules {
        max_peers: MAX_PEERS,
        ..RoomRules::default()
    })
    .attach(io.signaling("/"));
    rtcio::serve(io.build(), &rtcio_examples::addr()).await
}
