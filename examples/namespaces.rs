//! Customisation — "Custom namespaces": `/calls` relays signaling,
//! `/admin` does no WebRTC and has no relay.
use rtcio::{Builder, RelayScope};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut io = Builder::new(Default::default(), RelayScope::SharedRoom);
    io.signaling("/calls").on_connect(|socket| {
        // ...your join-room handler...
        let _ = socket;
    });
    io.namespace("/admin").on_connect(|socket| {
        // No rtc.io relay here — the admin panel doesn't do WebRTC.
        let _ = socket;
    });
    rtcio::serve(io.build(), &rtcio_examples::addr()).await
}
