//! The counters this library keeps, through the `metrics` facade (a no-op
//! until the application installs a recorder, e.g. the Prometheus one of the
//! `rtcio-server` binary).
//!
//! Handles are registered once and cached: the relay runs per envelope, and
//! a registry lookup (hashing the name and labels) on every envelope would
//! cost more than the increment itself. A cached handle is a pointer to one
//! atomic. The cache is filled on first use, so an application installs its
//! recorder before the first event is handled (the binary does it before it
//! builds the server); handles taken earlier would stay no-ops.

use std::sync::OnceLock;

use metrics::Counter;

use crate::errors::ErrorCode;

/// `rtcio_envelopes_relayed_total` and `rtcio_envelope_bytes_total`.
pub(crate) struct Relay {
    /// Envelopes handed to their target's queue.
    pub(crate) envelopes: Counter,
    /// Bytes of those envelopes as sent (the whole Socket.IO packet).
    pub(crate) bytes: Counter,
}

pub(crate) fn relay() -> &'static Relay {
    static RELAY: OnceLock<Relay> = OnceLock::new();
    RELAY.get_or_init(|| Relay {
        envelopes: metrics::counter!("rtcio_envelopes_relayed_total"),
        bytes: metrics::counter!("rtcio_envelope_bytes_total"),
    })
}

/// Every error code.
const CODES: [ErrorCode; 13] = ErrorCode::ALL;

/// Counts one refusal sent to a client: `rtcio_errors_total{code}`.
pub(crate) fn refused(code: ErrorCode) {
    static ERRORS: OnceLock<Vec<(ErrorCode, Counter)>> = OnceLock::new();
    let counters = ERRORS.get_or_init(|| {
        CODES
            .iter()
            .map(|&c| {
                (
                    c,
                    metrics::counter!("rtcio_errors_total", "code" => c.as_str()),
                )
            })
            .collect()
    });
    match counters.iter().find(|(c, _)| *c == code) {
        Some((_, counter)) => counter.increment(1),
        // A code added to the enum but not to CODES is still counted.
        None => metrics::counter!("rtcio_errors_total", "code" => code.as_str()).increment(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_cached_counter() {
        let mut names: Vec<_> = CODES.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CODES.len(), "CODES lists each code once");
    }
}
