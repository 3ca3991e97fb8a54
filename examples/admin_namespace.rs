//! Customisation — "Custom namespaces", with the admin panel filled in:
//! `/calls` carries the relay and rooms; `/admin` has no relay and lets a
//! client holding `ADMIN_TOKEN` list rooms, read stats, kick and close rooms.
use std::sync::Arc;

use rtcio::{Admin, Builder, RelayScope, Rooms};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt::init();
    let token = std::env::var("ADMIN_TOKEN").expect("set ADMIN_TOKEN to open /admin");
    let mut io = Builder::new(Default::default(), RelayScope::SharedRoom);

    let rooms = Rooms::new();
    rooms.attach(io.signaling("/calls"));

    // No rtc.io relay here — the admin panel doesn't do WebRTC.
    let admin = Arc::new(Admin::new().with_token(token).with_rooms(rooms));
    admin.attach(io.namespace("/admin"));

    let io = io.build();
    admin.manage(&io, "/calls").expect("/calls exists");
    rtcio::serve(io, &rtcio_examples::addr()).await
}
