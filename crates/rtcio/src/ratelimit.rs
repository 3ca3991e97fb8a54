//! Per-socket event rate limits (GCRA, from `governor`): application events
//! share one budget, `#rtcio:message` has its own (a newcomer in a full mesh
//! legitimately sends a burst of envelopes), and chosen events have their own
//! budget instead of the shared one.
//!
//! Cost: a socket's budgets are allocated on its first event, and each budget
//! only when an event first draws on it, so a socket that never sent anything
//! costs nothing and one that only joined a room about 250 bytes. An event
//! costs one lookup of that allocation in the socket's data and one atomic
//! compare-and-swap. Only a refused event takes a lock (to send at most one
//! `rate-limited` error per second and to notice a socket that stays far over
//! its limit, which is disconnected).

use std::num::NonZeroU32;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota};
use rtcio_engine::{Event, NamespaceBuilder, Socket};

use crate::errors::{ClientError, ErrorCode};
use crate::events::MESSAGE;

/// A sustained rate and the burst allowed on top of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

impl Rate {
    pub const fn new(per_second: u32, burst: u32) -> Self {
        Rate { per_second, burst }
    }

    /// The governor quota, or `None` for a rate of 0 (unlimited).
    fn quota(self) -> Option<Quota> {
        let rate = NonZeroU32::new(self.per_second)?;
        let burst = NonZeroU32::new(self.burst.max(1))?;
        Some(Quota::per_second(rate).allow_burst(burst))
    }
}

impl std::str::FromStr for Rate {
    type Err = String;

    /// `50` (burst = 2 × rate) or `50/100` (rate / burst), per second.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a rate like 50 or 50/100 (per second / burst)");
        let (rate, burst) = match s.trim().split_once('/') {
            Some((r, b)) => (r.trim(), Some(b.trim())),
            None => (s.trim(), None),
        };
        let per_second: u32 = rate.parse().map_err(|_| bad())?;
        let burst = match burst {
            Some(b) => b.parse().map_err(|_| bad())?,
            None => per_second.saturating_mul(2),
        };
        Ok(Rate { per_second, burst })
    }
}

/// Parses `chat-message=10,join-room=5/10` into per-event rates.
pub fn parse_overrides(s: &str) -> Result<Vec<(String, Rate)>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, rate) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}` is not event=rate"))?;
            Ok((name.trim().to_owned(), rate.parse()?))
        })
        .collect()
}

/// Every event limit of a namespace.
#[derive(Debug, Clone)]
pub struct EventLimits {
    /// Application events that have no budget of their own (`None`: unlimited).
    pub events: Option<Rate>,
    /// `#rtcio:message` envelopes.
    pub message: Option<Rate>,
    /// Events with their own budget (they do not draw on `events`).
    pub overrides: Vec<(String, Rate)>,
    /// A socket sending this many times its limit ...
    pub disconnect_factor: u32,
    /// ... for this long is disconnected (a factor of 0 never disconnects).
    pub disconnect_after: Duration,
}

impl Default for EventLimits {
    /// The seed's figures: 50/s (burst 100) for application events, 200/s
    /// (burst 400) for envelopes, `chat-message` 10/s, `join-room` and
    /// `check-room` 5/s; 10× the limit for 5 s disconnects.
    fn default() -> Self {
        EventLimits {
            events: Some(Rate::new(50, 100)),
            message: Some(Rate::new(200, 400)),
            overrides: vec![
                ("chat-message".into(), Rate::new(10, 20)),
                ("join-room".into(), Rate::new(5, 10)),
                ("check-room".into(), Rate::new(5, 10)),
            ],
            disconnect_factor: 10,
            disconnect_after: Duration::from_secs(5),
        }
    }
}

/// One budget kind: its quota and its sustained rate.
struct Slot {
    quota: Quota,
    per_second: u32,
}

/// The rate limiter of a namespace; attach it with [`RateLimiter::attach`].
pub struct RateLimiter {
    slots: Vec<Slot>,
    events: Option<usize>,
    message: Option<usize>,
    overrides: Vec<(String, Option<usize>)>,
    disconnect_factor: u32,
    disconnect_after: Duration,
}

/// A socket's budgets, created on its first event; each bucket on first use.
struct Budgets {
    buckets: Box<[OnceLock<Box<DefaultDirectRateLimiter>>]>,
    /// Allocated by the first refusal.
    cold: Mutex<Option<Box<Overage>>>,
}

/// Bookkeeping of refused events (touched only when an event is refused).
struct Overage {
    last_warned: Option<Instant>,
    window_start: Instant,
    refused: u64,
    threshold: u64,
    far_since: Option<Instant>,
}

const SECOND: Duration = Duration::from_secs(1);

impl Overage {
    fn new(now: Instant) -> Self {
        Overage {
            last_warned: None,
            window_start: now,
            refused: 0,
            threshold: u64::MAX,
            far_since: None,
        }
    }

    /// Counts one refusal; true when the socket has been far over its limit long enough.
    fn refuse(&mut self, now: Instant, threshold: u64, after: Duration) -> bool {
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed >= SECOND {
            let closed_was_far = self.refused >= self.threshold;
            if closed_was_far && elapsed < 2 * SECOND {
                self.far_since.get_or_insert(self.window_start);
            } else {
                self.far_since = None;
            }
            self.window_start = now;
            self.refused = 0;
        }
        self.refused += 1;
        self.threshold = threshold;
        self.refused >= threshold
            && self
                .far_since
                .is_some_and(|t| now.saturating_duration_since(t) >= after)
    }

    /// Whether a `rate-limited` error may be sent now (at most one per second).
    fn may_warn(&mut self, now: Instant) -> bool {
        if self
            .last_warned
            .is_some_and(|t| now.saturating_duration_since(t) < SECOND)
        {
            return false;
        }
        self.last_warned = Some(now);
        true
    }
}

impl RateLimiter {
    pub fn new(limits: EventLimits) -> Arc<Self> {
        let mut slots = Vec::new();
        let mut slot = |rate: Option<Rate>| -> Option<usize> {
            let rate = rate?;
            let quota = rate.quota()?;
            slots.push(Slot {
                quota,
                per_second: rate.per_second,
            });
            Some(slots.len() - 1)
        };
        let events = slot(limits.events);
        let message = slot(limits.message);
        let overrides = limits
            .overrides
            .into_iter()
            .map(|(name, rate)| {
                let i = slot(Some(rate));
                (name, i)
            })
            .collect();
        Arc::new(RateLimiter {
            slots,
            events,
            message,
            overrides,
            disconnect_factor: limits.disconnect_factor,
            disconnect_after: limits.disconnect_after,
        })
    }

    /// Checks every event of the namespace against its budget (as event
    /// middleware: a refused event never reaches its handler).
    pub fn attach(self: &Arc<Self>, ns: &mut NamespaceBuilder) {
        let limiter = self.clone();
        ns.event_middleware(move |socket, event| limiter.check(socket, event));
    }

    /// The budget an event draws on (`None`: unlimited).
    fn slot_of(&self, name: &str) -> Option<usize> {
        if name == MESSAGE {
            return self.message;
        }
        match self.overrides.iter().find(|(n, _)| n == name) {
            Some((_, slot)) => *slot,
            None => self.events,
        }
    }

    /// Lets `event` through, or drops it (and tells the sender, at most once a second).
    pub fn check(&self, socket: &Socket, event: &Event) -> ControlFlow<()> {
        let Some(slot) = self.slot_of(event.name()) else {
            return ControlFlow::Continue(());
        };
        let budgets = match socket.get::<Arc<Budgets>>() {
            Some(b) => b,
            None => {
                let b = Arc::new(Budgets {
                    buckets: self.slots.iter().map(|_| OnceLock::new()).collect(),
                    cold: Mutex::new(None),
                });
                socket.insert(b.clone());
                b
            }
        };
        let bucket = budgets.buckets[slot]
            .get_or_init(|| Box::new(DefaultDirectRateLimiter::direct(self.slots[slot].quota)));
        if bucket.check().is_ok() {
            return ControlFlow::Continue(());
        }
        self.refused(socket, &budgets, slot, event.name());
        ControlFlow::Break(())
    }

    #[cold]
    fn refused(&self, socket: &Socket, budgets: &Budgets, slot: usize, name: &str) {
        metrics::counter!("rtcio_rate_limited_total", "event" => metric_label(name)).increment(1);
        let now = Instant::now();
        let rate = u64::from(self.slots[slot].per_second);
        let threshold = if self.disconnect_factor == 0 {
            u64::MAX
        } else {
            // Sending factor × rate a second means refusing (factor - 1) × rate of it.
            (rate * u64::from(self.disconnect_factor - 1)).max(1)
        };
        let (disconnect, warn) = {
            let mut cold = budgets.cold.lock().unwrap_or_else(|e| e.into_inner());
            let o = cold.get_or_insert_with(|| Box::new(Overage::new(now)));
            let disconnect = o.refuse(now, threshold, self.disconnect_after);
            (disconnect, disconnect || o.may_warn(now))
        };
        if warn {
            let message = if disconnect {
                "disconnected: far over the rate limit"
            } else {
                "too many events; this one was dropped"
            };
            ClientError::new(ErrorCode::RateLimited, message)
                .for_event(name)
                .send(socket);
        }
        if disconnect {
            tracing::warn!(socket = %socket.id(), event = name, "disconnected a socket far over its rate limit");
            socket.disconnect();
        }
    }
}

/// The event name as a metric label: fixed names as they are, anything else
/// one label, so clients cannot create unbounded label values.
fn metric_label(name: &str) -> &'static str {
    const KNOWN: [&str; 12] = [
        MESSAGE,
        "join-room",
        "leave-room",
        "check-room",
        "media-state",
        "stopScreenShare",
        "chat-message",
        "chat-history",
        "ask-ice",
        "#rtcio:init-offer",
        "#rtcio:peer-left",
        "typing",
    ];
    KNOWN.into_iter().find(|k| *k == name).unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!("50".parse::<Rate>().unwrap(), Rate::new(50, 100));
        assert_eq!("50/70".parse::<Rate>().unwrap(), Rate::new(50, 70));
        assert!("fast".parse::<Rate>().is_err());
        assert_eq!(
            parse_overrides("chat-message=10, join-room=5/6").unwrap(),
            vec![
                ("chat-message".to_string(), Rate::new(10, 20)),
                ("join-room".to_string(), Rate::new(5, 6))
            ]
        );
        assert!(parse_overrides("x").is_err());
        assert!(parse_overrides("").unwrap().is_empty());
    }

    #[test]
    fn far_over_for_long_enough_disconnects() {
        let start = Instant::now();
        let mut o = Overage::new(start);
        let after = Duration::from_secs(5);
        let mut cut = None;
        // 100 refusals a second against a threshold of 45.
        'outer: for second in 0..10u64 {
            for i in 0..100u64 {
                let now = start + Duration::from_millis(second * 1000 + i * 10);
                if o.refuse(now, 45, after) {
                    cut = Some(second);
                    break 'outer;
                }
            }
        }
        assert_eq!(cut, Some(5));
        // Below the threshold never disconnects.
        let mut o = Overage::new(start);
        for second in 0..20u64 {
            for i in 0..40u64 {
                let now = start + Duration::from_millis(second * 1000 + i * 25);
                assert!(!o.refuse(now, 45, after));
            }
        }
    }

    #[test]
    fn warnings_at_most_once_a_second() {
        let start = Instant::now();
        let mut o = Overage::new(start);
        assert!(o.may_warn(start));
        assert!(!o.may_warn(start + Duration::from_millis(999)));
        assert!(o.may_warn(start + Duration::from_millis(1000)));
    }
}
