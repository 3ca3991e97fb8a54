//! ICE credential vending — `wireIce`: `ask-ice` answers short-lived TURN
//! credentials (coturn REST API scheme: username = expiry, credential =
//! base64(HMAC-SHA1(TURN_SECRET, username))), so no long-lived TURN password
//! ships in the client bundle. `rtcio::Ice` is the configurable building block
//! (several hosts, transports, rotation, `GET /ice`, `expiry:userId`).
use std::time::{SystemTime, UNIX_EPOCH};

use rtcio::events::app::ASK_ICE;
use rtcio::{ice, Builder, RelayScope};
use serde_json::json;

const TTL: u64 = 600; // 10 min

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let (Ok(secret), Ok(host)) = (std::env::var("TURN_SECRET"), std::env::var("TURN_HOST")) else {
        eprintln!("set TURN_SECRET and TURN_HOST");
        std::process::exit(2);
    };
    let mut io = Builder::new(Default::default(), RelayScope::SharedRoom);
    io.signaling("/").on(ASK_ICE, move |_socket, mut event| {
        let Some(cb) = event.take_ack() else { return };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let username = (now.as_secs() + TTL).to_string();
        let credential = ice::credential(secret.as_bytes(), &username);
        let _ = cb.send(&json!({
            "iceServers": [
                { "urls": format!("stun:{host}:3478") },
                { "urls": format!("turn:{host}:3478?transport=udp"), "username": username, "credential": credential },
                { "urls": format!("turn:{host}:3478?transport=tcp"), "username": username, "credential": credential },
                { "urls": format!("turns:{host}:5349?transport=tcp"), "username": username, "credential": credential },
            ],
        }));
    });
    rtcio::serve(io.build(), &rtcio_examples::addr()).await
}
