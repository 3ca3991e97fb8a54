//! The whole rooms & presence document as one building block: join with
//! backfill and init-offer, leave, disconnect presence, passwords,
//! check-room, the media-state cache and stopScreenShare.
use rtcio::{Builder, RelayScope, Rooms};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt::init();
    let mut io = Builder::new(Default::default(), RelayScope::SharedRoom);
    Rooms::new().attach(io.signaling("/"));
    rtcio::serve(io.build(), &rtcio_examples::addr()).await
}
