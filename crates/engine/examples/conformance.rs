//! The engine conformance server: every engine feature behind an event, for
//! the JavaScript suite in `tests/engine/` (contract: `tests/engine/CONTRACT.md`).

use std::collections::HashMap;
use std::time::Duration;

use clap::Parser;
use rtcio_engine::{Config, ConnectError, Cors, Payload, Server, Socket, Transports};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long, default_value_t = 0)]
    port: u16,
    #[arg(long, default_value = "polling,websocket")]
    transports: String,
    #[arg(long, default_value_t = 25_000)]
    ping_interval: u64,
    #[arg(long, default_value_t = 20_000)]
    ping_timeout: u64,
    #[arg(long, default_value_t = 1_000_000)]
    max_payload: usize,
    #[arg(long, default_value_t = 45_000)]
    connect_timeout: u64,
    #[arg(long, default_value = "*")]
    cors_origin: String,
    #[arg(long, default_value_t = 4 << 20)]
    max_queue_bytes: usize,
}

fn sorted_rooms(socket: &Socket) -> Vec<String> {
    let mut rooms: Vec<String> = socket.rooms().iter().map(|r| r.to_string()).collect();
    rooms.sort();
    rooms
}

/// A payload of one argument `prefix + raw + closing braces`, carrying `args`' attachments.
fn wrap(prefix: &str, raw: &str, args: &rtcio_engine::Args) -> Payload {
    let close = "}".repeat(prefix.matches('{').count());
    let text = format!("{prefix}{raw}{close}");
    let value = serde_json::value::RawValue::from_string(text).expect("built from valid JSON");
    let mut payload = Payload::new().raw_arg(&value);
    for attachment in args.attachments() {
        payload.attach(attachment.clone());
    }
    payload
}

/// The raw JSON text of member `name` of the object `raw`.
fn raw_member(raw: &str, name: &str) -> String {
    let members: HashMap<String, Box<serde_json::value::RawValue>> =
        serde_json::from_str(raw).unwrap_or_default();
    members
        .get(name)
        .map_or_else(|| "null".to_owned(), |v| v.get().to_owned())
}

fn echo(socket: &Socket, event: rtcio_engine::Event) {
    let _ = socket.emit_payload("echo", event.args().to_payload());
}

#[derive(Deserialize)]
struct Broadcast {
    room: String,
    #[serde(default)]
    except: Option<Value>,
    event: String,
    data: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AskClient {
    event: String,
    timeout_ms: u64,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let config = Config {
        ping_interval: Duration::from_millis(args.ping_interval),
        ping_timeout: Duration::from_millis(args.ping_timeout),
        max_payload: args.max_payload,
        connect_timeout: Duration::from_millis(args.connect_timeout),
        max_queue_bytes: args.max_queue_bytes,
        transports: Transports {
            polling: args.transports.contains("polling"),
            websocket: args.transports.contains("websocket"),
        },
        cors: if args.cors_origin == "*" {
            Cors::Any
        } else {
            Cors::List {
                origins: vec![args.cors_origin.parse().expect("origin")],
                credentials: false,
            }
        },
        ..Config::default()
    };
    let mut builder = Server::builder_with(config);

    builder
        .namespace("/")
        .middleware(|socket| async move {
            let auth: Value = socket.auth().unwrap_or(json!({}));
            if auth["token"] == "bad" {
                return Err(
                    ConnectError::new("invalid token").with_data(json!({ "reason": "bad" }))
                );
            }
            Ok(())
        })
        .on_connect(|socket| {
            let auth: Value = socket.auth().unwrap_or(json!({}));
            let query: HashMap<String, String> = socket.handshake().query_pairs().collect();
            let _ = socket.emit(
                "welcome",
                &json!({ "id": socket.id(), "auth": auth, "query": query }),
            );
        })
        .on("echo", echo)
        .on("echo-ack", |_, mut event| {
            if let Some(ack) = event.take_ack() {
                let _ = ack.send_payload(event.args().to_payload());
            }
        })
        .on("ping-ack", |_, mut event| {
            if let Some(ack) = event.take_ack() {
                let _ = ack.send("pong");
            }
        })
        .on_async("ask-client", |socket, mut event| async move {
            let Ok(ask) = event.arg::<AskClient>(0) else {
                return;
            };
            let Some(ack) = event.take_ack() else { return };
            // Answered from a spawned task: the client's answer must not wait for this handler.
            tokio::spawn(async move {
                let answer = socket
                    .emit_with_ack(
                        &ask.event,
                        "question",
                        Duration::from_millis(ask.timeout_ms),
                    )
                    .await;
                let _ = match answer {
                    // The answer is forwarded as raw JSON with its attachments, so binary survives.
                    Ok(args) => ack.send_payload(wrap(
                        "{\"ok\":true,\"answer\":",
                        args.raw(0).unwrap_or("null"),
                        &args,
                    )),
                    Err(_) => ack.send(&json!({ "ok": false, "error": "timeout" })),
                };
            });
        })
        .on("join", |socket, mut event| {
            if let Ok(room) = event.arg::<String>(0) {
                socket.join(&room);
            }
            if let Some(ack) = event.take_ack() {
                let _ = ack.send(&sorted_rooms(socket));
            }
        })
        .on("leave", |socket, mut event| {
            if let Ok(room) = event.arg::<String>(0) {
                socket.leave(&room);
            }
            if let Some(ack) = event.take_ack() {
                let _ = ack.send(&sorted_rooms(socket));
            }
        })
        .on("to-room", |socket, mut event| {
            if let Ok(b) = event.arg::<Broadcast>(0) {
                // `data` is forwarded as raw JSON with the event's attachments, so binary survives.
                let data = raw_member(event.args().raw(0).unwrap_or("{}"), "data");
                socket
                    .to(&b.room)
                    .emit_payload(&b.event, wrap("", &data, event.args()));
            }
            if let Some(ack) = event.take_ack() {
                let _ = ack.send(&true);
            }
        })
        .on("broadcast", |socket, mut event| {
            if let Ok(b) = event.arg::<Broadcast>(0) {
                let mut op = socket.ns().to(&b.room);
                match &b.except {
                    Some(Value::String(room)) => op = op.except(room),
                    Some(Value::Array(rooms)) => {
                        for room in rooms.iter().filter_map(Value::as_str) {
                            op = op.except(room);
                        }
                    }
                    _ => {}
                }
                let _ = op.emit(&b.event, &b.data);
            }
            if let Some(ack) = event.take_ack() {
                let _ = ack.send(&true);
            }
        })
        .on("room-size", |socket, mut event| {
            let room = event.arg::<String>(0).unwrap_or_default();
            if let Some(ack) = event.take_ack() {
                let _ = ack.send(&socket.ns().room_len(&room));
            }
        })
        .on("server-binary", |socket, mut event| {
            let mut payload = Payload::new();
            let a = payload.attach(vec![1u8, 2, 3]);
            let b = payload.attach(vec![4u8, 5]);
            if let Ok(payload) =
                payload.arg(&json!({ "buf": a, "nested": { "list": [b, "text"] } }))
            {
                let _ = socket.emit_payload("binary", payload);
            }
            if let Some(ack) = event.take_ack() {
                let _ = ack.send(&true);
            }
        })
        .on("disconnect-me", |socket, _| socket.disconnect());

    builder
        .namespace("/admin")
        .middleware(|socket| async move {
            let auth: Value = socket.auth().unwrap_or(json!({}));
            if auth["admin"] == true {
                Ok(())
            } else {
                Err(ConnectError::new("not admin"))
            }
        })
        .on_connect(|socket| {
            let _ = socket.emit("welcome-admin", &json!({ "id": socket.id() }));
        })
        .on("echo", echo);

    let io = builder.build();
    let app = axum::Router::new().route_service("/socket.io/", io.service());
    let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
        .await
        .expect("bind");
    println!("listening on {}", listener.local_addr().expect("address"));
    axum::serve(listener, app).await.expect("serve");
}
