//! Session and socket identifiers.
//!
//! Ids are 120 random bits from the thread-local CSPRNG, written as 20
//! URL-safe base64 characters (the same length socket.io uses). They are
//! stored inline (`[u8; 20]`, `Copy`) so that maps keyed by id cost no heap
//! allocation per socket and hash quickly.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;

/// Length of an id in characters.
pub const SID_LEN: usize = 20;

/// An Engine.IO session id or a Socket.IO socket id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid([u8; SID_LEN]);

impl Sid {
    /// A fresh unguessable id (120 random bits).
    pub fn random() -> Self {
        let mut raw = [0u8; 15];
        rand::rng().fill_bytes(&mut raw);
        let mut out = [0u8; SID_LEN];
        let written = URL_SAFE_NO_PAD
            .encode_slice(raw, &mut out)
            .expect("15 bytes always encode to 20 characters");
        debug_assert_eq!(written, SID_LEN);
        Sid(out)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only URL-safe base64 characters are ever stored (see `random` and `from_str`).
        std::str::from_utf8(&self.0).expect("ids are ASCII")
    }
}

/// Returned when text is not a well-formed id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidSid;

impl fmt::Display for InvalidSid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a session id")
    }
}

impl std::error::Error for InvalidSid {}

impl FromStr for Sid {
    type Err = InvalidSid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        if bytes.len() != SID_LEN
            || !bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        {
            return Err(InvalidSid);
        }
        let mut out = [0u8; SID_LEN];
        out.copy_from_slice(bytes);
        Ok(Sid(out))
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sid({})", self.as_str())
    }
}

impl serde::Serialize for Sid {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Sid {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_20_url_safe_chars_and_differ() {
        let a = Sid::random();
        let b = Sid::random();
        assert_eq!(a.as_str().len(), 20);
        assert_ne!(a, b);
        assert_eq!(a.as_str().parse::<Sid>().unwrap(), a);
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in [
            "",
            "short",
            "0123456789012345678!",
            "012345678901234567890",
            "ééééééééééé",
        ] {
            assert_eq!(bad.parse::<Sid>(), Err(InvalidSid), "{bad:?}");
        }
    }

    #[test]
    fn serde_round_trip() {
        let a = Sid::random();
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, format!("\"{a}\""));
        assert_eq!(serde_json::from_str::<Sid>(&json).unwrap(), a);
        assert!(serde_json::from_str::<Sid>("\"nope\"").is_err());
    }
}
