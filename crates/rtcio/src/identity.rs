//! Who a socket is: the [`Identity`] an authenticator establishes at connect
//! time, stored in the socket's data, and read by every building block that
//! needs it (presence `userId`, chat `from`, TURN usernames, room policy,
//! admin checks).
//!
//! The [`Authenticator`] trait is the seam between the transports that carry
//! a credential (the Socket.IO `auth.token`, an HTTP `Authorization: Bearer`
//! header) and whatever verifies it (JWT with a secret, a public key or a
//! JWKS), so `GET /ice` and the socket handshake accept exactly the same
//! tokens.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use rtcio_engine::{NamespaceBuilder, Socket};
use serde_json::{json, Value};

/// An authenticated user, stored in the socket's data (`socket.get::<Identity>()`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The stable user id (a JWT's `sub`).
    pub user_id: Arc<str>,
    /// The display name the credential carries (`username`, else `name`), used
    /// when a join gives none.
    pub name: Option<Arc<str>>,
    /// Whether the credential grants the admin namespace (`admin: true`).
    pub admin: bool,
    /// Room ids or glob patterns the credential allows (`rooms` claim), when it names any.
    pub rooms: Option<Arc<[String]>>,
}

impl Identity {
    /// The identity of `socket`, when it authenticated.
    pub fn of(socket: &Socket) -> Option<Identity> {
        socket.get::<Identity>()
    }

    /// The user id of `socket`, when it authenticated.
    pub fn user_id(socket: &Socket) -> Option<Arc<str>> {
        socket.get::<Identity>().map(|i| i.user_id)
    }

    /// The identity as JSON, for a recovery session kept outside the process.
    pub fn to_json(&self) -> Value {
        json!({
            "userId": &*self.user_id,
            "name": self.name.as_deref(),
            "admin": self.admin,
            "rooms": self.rooms.as_deref(),
        })
    }

    /// What [`Identity::to_json`] made; `None` for anything else.
    pub fn from_json(value: &Value) -> Option<Identity> {
        let user_id = value.get("userId")?.as_str()?;
        let name = match value.get("name") {
            None | Some(Value::Null) => None,
            Some(v) => Some(Arc::from(v.as_str()?)),
        };
        let rooms = match value.get("rooms") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_array()?
                    .iter()
                    .map(|r| r.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()?
                    .into(),
            ),
        };
        Some(Identity {
            user_id: user_id.into(),
            name,
            admin: value.get("admin").and_then(Value::as_bool).unwrap_or(false),
            rooms,
        })
    }

    /// Makes the identity portable on `ns`: a socket recovered on another
    /// node of a cluster keeps it (connect middleware is skipped on recovery).
    pub fn make_portable(ns: &mut NamespaceBuilder) {
        ns.portable_data::<Identity, _, _>("identity", Identity::to_json, Identity::from_json);
    }
}

/// Why a credential was not accepted. The client only ever sees
/// [`AuthError::client_message`]; the reason is for the server's log and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No credential was presented.
    Missing,
    /// A credential was presented and refused; the reason names why
    /// (`expired`, `bad-signature`, `wrong-audience`...), never the token itself.
    Invalid(&'static str),
}

impl AuthError {
    /// The exact message the seed's clients test in `connect_error`.
    pub fn client_message(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing token",
            AuthError::Invalid(_) => "invalid token",
        }
    }

    /// A short, token-free reason for logs and the `reason` metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Invalid(reason) => reason,
        }
    }
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.client_message())
    }
}

impl std::error::Error for AuthError {}

/// The future an [`Authenticator`] returns.
pub type AuthFuture = Pin<Box<dyn Future<Output = Result<Identity, AuthError>> + Send>>;

/// Verifies a bearer credential and says who presented it.
pub trait Authenticator: Send + Sync + 'static {
    /// Checks `token` (the raw bearer string, never logged) and returns its identity.
    fn authenticate(&self, token: &str) -> AuthFuture;
}

/// The bearer token of an `Authorization` header value (`Bearer abc` → `abc`).
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_headers() {
        assert_eq!(bearer("Bearer abc.def"), Some("abc.def"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("abc"), None);
    }

    #[test]
    fn identities_round_trip_as_json() {
        let full = Identity {
            user_id: "u1".into(),
            name: Some("Ada".into()),
            admin: true,
            rooms: Some(vec!["a".to_owned(), "b-*".to_owned()].into()),
        };
        let bare = Identity {
            user_id: "u2".into(),
            ..Identity::default()
        };
        for identity in [full, bare] {
            assert_eq!(Identity::from_json(&identity.to_json()), Some(identity));
        }
        assert_eq!(Identity::from_json(&json!({ "name": "x" })), None);
        assert_eq!(
            Identity::from_json(&json!({ "userId": "u", "rooms": [1] })),
            None
        );
    }

    #[test]
    fn client_messages_are_the_seeds_strings() {
        assert_eq!(AuthError::Missing.client_message(), "missing token");
        assert_eq!(
            AuthError::Invalid("expired").client_message(),
            "invalid token"
        );
        assert_eq!(AuthError::Invalid("expired").reason(), "expired");
    }
}
