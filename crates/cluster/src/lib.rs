//! rtcio-server across several processes, on Redis.
//!
//! Nothing here is on the path of a single-process server: the binary uses
//! this crate only when `--redis-url` is given.

pub mod room_store;

pub use room_store::RedisRoomStore;
