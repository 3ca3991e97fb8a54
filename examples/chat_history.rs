//! The seed's "Persisting chat history" recipe: a joiner receives the room's
//! recent messages as `chat-history`, and `chat-message` is stored before it
//! is sent to the rest of the room. Here the recipe's `db.messages` is
//! `rtcio::SqlStore` (SQLite from `DATABASE_URL`, default `rtcio.db`; a
//! `postgres://` URL works the same), and the two handlers are the `Chat`
//! building block, which also checks membership, stamps the sender and time
//! and acknowledges. Restart it on the same database: the history is still there.
use std::sync::Arc;

use rtcio::{Builder, Chat, ChatConfig, ChatStore, RelayScope, Rooms, SqlStore};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt::init();
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://rtcio.db".into());
    let store: Arc<dyn ChatStore> = Arc::new(SqlStore::open(&url).map_err(std::io::Error::other)?);
    let mut io = Builder::new(Default::default(), RelayScope::SharedRoom);
    let rooms = Rooms::new();
    rooms.attach(io.signaling("/"));
    // findRecent(roomId, 50) after every join; insert-then-fan-out for every message.
    let config = ChatConfig {
        history_on_join: 50,
        ..ChatConfig::default()
    };
    Chat::new(Some(store), config).attach(io.signaling("/"), &rooms);
    rtcio::serve(io.build(), &rtcio_examples::addr()).await
}
