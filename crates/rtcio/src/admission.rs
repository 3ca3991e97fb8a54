//! Admission of new Engine.IO sessions, in front of the Socket.IO service:
//! handshakes per client IP (a keyed GCRA limiter) and a ceiling on the
//! sessions of this process. Only requests that open a session (no `sid` in
//! the query) are counted; a refused one gets a JSON answer a human can read
//! (`429` with `Retry-After`, or `503`), never a half-open session.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use bytes::Bytes;
use governor::{DefaultKeyedRateLimiter, Quota};
use http::{header, Request, Response, StatusCode};
use http_body_util::Full;
use rtcio_engine::Server;

/// What is admitted.
#[derive(Debug, Clone, Copy, Default)]
pub struct AdmissionLimits {
    /// New sessions per client IP per minute (0: unlimited).
    pub handshakes_per_minute: u32,
    /// Sessions this process holds at most (0: unlimited).
    pub max_connections: usize,
    /// Take the client IP from `X-Forwarded-For` (set only behind a proxy you run).
    pub trust_proxy: bool,
}

/// The shared state of the admission check.
pub struct Admission {
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    limits: AdmissionLimits,
    server: Server,
}

impl Admission {
    /// Builds the check for `server`'s sessions. Spawns a task that forgets idle
    /// addresses every minute, so the table does not grow with every client ever seen.
    pub fn new(server: &Server, limits: AdmissionLimits) -> Arc<Self> {
        let per_ip = NonZeroU32::new(limits.handshakes_per_minute)
            .map(|n| DefaultKeyedRateLimiter::keyed(Quota::per_minute(n)));
        let admission = Arc::new(Admission {
            per_ip,
            limits,
            server: server.clone(),
        });
        if admission.per_ip.is_some() {
            let weak = Arc::downgrade(&admission);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tick.tick().await;
                    let Some(a) = weak.upgrade() else { break };
                    if let Some(l) = &a.per_ip {
                        l.retain_recent();
                        l.shrink_to_fit();
                    }
                }
            });
        }
        admission
    }

    /// Wraps the Socket.IO service.
    pub fn wrap<S>(self: &Arc<Self>, inner: S) -> Admit<S> {
        Admit {
            inner,
            admission: self.clone(),
        }
    }

    /// Whether either limit is in force.
    pub fn is_active(&self) -> bool {
        self.per_ip.is_some() || self.limits.max_connections > 0
    }

    /// The refusal for `req`, if it opens a session that may not be opened.
    pub fn refusal<B>(&self, req: &Request<B>) -> Option<Response<Full<Bytes>>> {
        if req.uri().query().is_some_and(has_sid) {
            return None;
        }
        self.check(req)
    }

    /// The refusal for any request `req` counted against these limits,
    /// whatever its query (plain HTTP routes such as `GET /ice`).
    pub fn check<B>(&self, req: &Request<B>) -> Option<Response<Full<Bytes>>> {
        let max = self.limits.max_connections;
        if max > 0 && self.server.session_count() >= max {
            metrics::counter!("rtcio_connections_refused_total", "reason" => "max-connections")
                .increment(1);
            return Some(json(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the server is at its connection limit; retry later",
                None,
            ));
        }
        let limiter = self.per_ip.as_ref()?;
        let ip = client_ip(req, self.limits.trust_proxy)?;
        match limiter.check_key(&ip) {
            Ok(()) => None,
            Err(not_until) => {
                metrics::counter!("rtcio_connections_refused_total", "reason" => "handshake-limit")
                    .increment(1);
                let wait = not_until.wait_time_from(governor::clock::Clock::now(
                    &governor::clock::DefaultClock::default(),
                ));
                Some(json(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate-limited",
                    "too many connection attempts from this address; retry later",
                    Some(wait.as_secs().max(1)),
                ))
            }
        }
    }
}

/// Whether the query string has a `sid` parameter (an existing session).
fn has_sid(query: &str) -> bool {
    query.split('&').any(|p| p.starts_with("sid="))
}

/// The client's address: the TCP peer, or with `trust_proxy` the last
/// `X-Forwarded-For` entry (the one your proxy appended; earlier entries are
/// whatever the client claimed).
fn client_ip<B>(req: &Request<B>, trust_proxy: bool) -> Option<IpAddr> {
    if trust_proxy {
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|v| v.trim().parse::<IpAddr>().ok())
            .next_back();
        if forwarded.is_some() {
            return forwarded;
        }
    }
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

fn json(
    status: StatusCode,
    code: &str,
    message: &str,
    retry_after: Option<u64>,
) -> Response<Full<Bytes>> {
    // The refusal carries a generic message only, so any origin may read it:
    // a browser client can then show why it cannot connect.
    let body = serde_json::json!({ "code": code, "message": message }).to_string();
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*");
    if let Some(secs) = retry_after {
        response = response.header(header::RETRY_AFTER, secs);
    }
    response
        .body(Full::new(Bytes::from(body)))
        .expect("static response")
}

/// The Socket.IO service behind the admission check.
#[derive(Clone)]
pub struct Admit<S> {
    inner: S,
    admission: Arc<Admission>,
}

impl<S, B> tower::Service<Request<B>> for Admit<S>
where
    S: tower::Service<Request<B>, Response = Response<Full<Bytes>>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if let Some(refusal) = self.admission.refusal(&req) {
            return Box::pin(std::future::ready(Ok(refusal)));
        }
        Box::pin(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_recognised() {
        assert!(has_sid("EIO=4&transport=polling&sid=abc"));
        assert!(!has_sid("EIO=4&transport=polling&t=x"));
    }

    #[test]
    fn forwarded_addresses_only_when_trusted() {
        let req = Request::builder()
            .header("x-forwarded-for", "1.1.1.1, 2.2.2.2")
            .body(())
            .unwrap();
        assert_eq!(client_ip(&req, true), Some("2.2.2.2".parse().unwrap()));
        assert_eq!(client_ip(&req, false), None);
    }
}
