//! Event names: the seven reserved by the rtc.io protocol, and the
//! application events of the reference server.

/// The one signaling envelope `{ source, target, data }`, relayed to `target`.
pub const MESSAGE: &str = "#rtcio:message";
/// `{ source }`, sent to each existing peer when a newcomer joins: the existing peer offers.
pub const INIT_OFFER: &str = "#rtcio:init-offer";
/// `{ id }`, sent to a leaving socket's rooms while they are still known.
pub const PEER_LEFT: &str = "#rtcio:peer-left";
/// Reserved, never emitted.
pub const OFFER: &str = "#rtcio:offer";
/// Reserved, never emitted.
pub const ANSWER: &str = "#rtcio:answer";
/// Reserved, never emitted.
pub const CANDIDATE: &str = "#rtcio:candidate";
/// Reserved, never emitted.
pub const STREAM_META: &str = "#rtcio:stream-meta";

/// Every name starting with this is reserved for the protocol.
pub const RESERVED_PREFIX: &str = "#rtcio:";

/// Application events of the reference server (rooms & presence).
pub mod app {
    pub const JOIN_ROOM: &str = "join-room";
    pub const LEAVE_ROOM: &str = "leave-room";
    pub const CHECK_ROOM: &str = "check-room";
    pub const ROOM_CHECK_OK: &str = "room-check-ok";
    pub const JOIN_OK: &str = "join-ok";
    pub const JOIN_ERROR: &str = "join-error";
    pub const USER_CONNECTED: &str = "user-connected";
    pub const USER_DISCONNECTED: &str = "user-disconnected";
    pub const MEDIA_STATE: &str = "media-state";
    pub const STOP_SCREEN_SHARE: &str = "stopScreenShare";
    /// The one error event: `{ code, message, roomId? }`.
    pub const ERROR: &str = "error";
    /// Asks for ICE servers with short-lived TURN credentials; the ack answers `{ iceServers }`.
    pub const ASK_ICE: &str = "ask-ice";
    /// `chat-message`: `{ roomId, text }` from a client, the stamped message to the room.
    pub const CHAT_MESSAGE: &str = "chat-message";
    /// `chat-history`: the joiner's recent messages, and the paging request.
    pub const CHAT_HISTORY: &str = "chat-history";
}
