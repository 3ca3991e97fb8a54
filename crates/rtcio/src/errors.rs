//! The one shape of every refusal a client receives: `error { code, message, roomId? }`,
//! and `join-error { reason, roomId }` where the reference protocol uses it.

use std::fmt;

use rtcio_engine::Socket;
use serde::Serialize;

use crate::events::app;

/// What went wrong, as the client sees it in `code` (or `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    /// The payload does not have the documented shape.
    BadRequest,
    /// The room id is not a non-empty string of at most 128 characters.
    InvalidRoom,
    /// The room has a password and none was given.
    PasswordRequired,
    /// The room has a different password.
    WrongPassword,
    /// The action names a room the sender has not joined.
    NotInRoom,
    /// The relay target does not share a room with the sender, or does not exist.
    PeerUnreachable,
    /// The sender may not do this (access policy).
    Forbidden,
    /// The room is at its peer limit.
    RoomFull,
    /// The sender exceeded its event rate.
    RateLimited,
    /// The socket is already in as many rooms as it may be.
    TooManyRooms,
    /// A dependency the action needs (the chat database, an access-policy
    /// service) cannot be reached right now; retrying later may work.
    Unavailable,
    /// An administrator removed the socket.
    Kicked,
    /// The socket, user or room an action names does not exist (any more).
    NotFound,
}

impl ErrorCode {
    /// Every code, once, in declaration order (for tables such as the
    /// per-code metrics, and for tests that must cover them all).
    pub const ALL: [ErrorCode; 13] = [
        ErrorCode::BadRequest,
        ErrorCode::InvalidRoom,
        ErrorCode::PasswordRequired,
        ErrorCode::WrongPassword,
        ErrorCode::NotInRoom,
        ErrorCode::PeerUnreachable,
        ErrorCode::Forbidden,
        ErrorCode::RoomFull,
        ErrorCode::RateLimited,
        ErrorCode::TooManyRooms,
        ErrorCode::Unavailable,
        ErrorCode::Kicked,
        ErrorCode::NotFound,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad-request",
            ErrorCode::InvalidRoom => "invalid-room",
            ErrorCode::PasswordRequired => "password-required",
            ErrorCode::WrongPassword => "wrong-password",
            ErrorCode::NotInRoom => "not-in-room",
            ErrorCode::PeerUnreachable => "peer-unreachable",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::RoomFull => "room-full",
            ErrorCode::RateLimited => "rate-limited",
            ErrorCode::TooManyRooms => "too-many-rooms",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Kicked => "kicked",
            ErrorCode::NotFound => "not-found",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal, sent to the client that caused it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientError {
    pub code: ErrorCode,
    pub message: String,
    #[serde(rename = "roomId", skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    /// The event that was refused (`rate-limited` names it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
}

impl ClientError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ClientError {
            code,
            message: message.into(),
            room_id: None,
            event: None,
        }
    }

    pub fn in_room(mut self, room_id: impl Into<String>) -> Self {
        self.room_id = Some(room_id.into());
        self
    }

    /// Names the refused event (`{ code, message, event }`).
    pub fn for_event(mut self, event: impl Into<String>) -> Self {
        self.event = Some(event.into());
        self
    }

    /// Sends this error to `socket` as the `error` event.
    pub fn send(&self, socket: &Socket) {
        crate::counters::refused(self.code);
        if let Err(e) = socket.emit(app::ERROR, self) {
            tracing::debug!(socket = %socket.id(), error = %e, "could not deliver an error event");
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ClientError {}

/// Sends `join-error { reason, roomId }` (the reference protocol's join refusal).
pub fn send_join_error(socket: &Socket, reason: ErrorCode, room_id: Option<&str>) {
    #[derive(Serialize)]
    struct JoinError<'a> {
        reason: ErrorCode,
        #[serde(rename = "roomId")]
        room_id: Option<&'a str>,
    }
    crate::counters::refused(reason);
    let _ = socket.emit(app::JOIN_ERROR, &JoinError { reason, room_id });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_to_the_documented_shape() {
        let e = ClientError::new(ErrorCode::NotInRoom, "join the room first").in_room("r1");
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({ "code": "not-in-room", "message": "join the room first", "roomId": "r1" })
        );
        let e = ClientError::new(ErrorCode::BadRequest, "x");
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({ "code": "bad-request", "message": "x" })
        );
    }

    #[test]
    fn codes_serialise_as_their_names() {
        for code in ErrorCode::ALL {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::json!(code.as_str())
            );
        }
    }
}
