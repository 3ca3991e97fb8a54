//! The HTTP front door: a tower service that answers Engine.IO requests
//! (handshakes, polling GET/POST, WebSocket upgrades), mounted by the
//! application at its path (`/socket.io/` by default).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Body;
use tower_http::cors::{Cors as CorsService, CorsLayer};

use crate::config::Cors;
use crate::eio;
use crate::server::ServerInner;
use crate::session::{self, Session, POLLING, UPGRADING, WEBSOCKET};
use crate::sid::Sid;
use crate::transport::{self, PollError};
use crate::ws;
use crate::Handshake;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Engine.IO's error codes, answered as `400 {"code":N,"message":"..."}` like socket.io.
#[derive(Debug, Clone, Copy)]
enum EngineError {
    TransportUnknown = 0,
    SessionIdUnknown = 1,
    BadHandshakeMethod = 2,
    BadRequest = 3,
    UnsupportedProtocolVersion = 5,
}

impl EngineError {
    fn message(self) -> &'static str {
        match self {
            EngineError::TransportUnknown => "Transport unknown",
            EngineError::SessionIdUnknown => "Session ID unknown",
            EngineError::BadHandshakeMethod => "Bad handshake method",
            EngineError::BadRequest => "Bad request",
            EngineError::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }

    fn response(self) -> Response<Full<Bytes>> {
        let body = serde_json::json!({ "code": self as u8, "message": self.message() }).to_string();
        Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("static response")
    }
}

fn text(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .body(Full::new(body))
        .expect("static response")
}

/// The Engine.IO endpoint as a tower service, without CORS.
#[derive(Clone)]
pub struct EngineService {
    pub(crate) server: Arc<ServerInner>,
}

impl<B> tower::Service<Request<B>> for EngineService
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let server = self.server.clone();
        Box::pin(async move { Ok(handle(server, req).await) })
    }
}

/// The endpoint wrapped in the configured CORS policy. Preflights are
/// answered `204 No Content`, as socket.io's `cors` middleware does.
#[derive(Clone)]
pub struct Service {
    pub(crate) inner: CorsService<EngineService>,
}

impl<B> tower::Service<Request<B>> for Service
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        tower::Service::<Request<B>>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let preflight = req.method() == Method::OPTIONS;
        let response = self.inner.call(req);
        Box::pin(async move {
            let mut response = response.await?;
            if preflight && response.status() == StatusCode::OK {
                *response.status_mut() = StatusCode::NO_CONTENT;
            }
            Ok(response)
        })
    }
}

pub(crate) fn cors_layer(cors: &Cors) -> CorsLayer {
    cors.layer([Method::GET, Method::POST, Method::OPTIONS])
}

#[derive(Default)]
struct Query<'a> {
    eio: Option<&'a str>,
    transport: Option<&'a str>,
    sid: Option<&'a str>,
}

fn parse_query(query: &str) -> Query<'_> {
    let mut q = Query::default();
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "EIO" => q.eio = Some(v),
            "transport" => q.transport = Some(v),
            "sid" => q.sid = Some(v),
            _ => {}
        }
    }
    q
}

async fn handle<B>(server: Arc<ServerInner>, mut req: Request<B>) -> Response<Full<Bytes>>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let config = &server.config;
    let query_string = req.uri().query().unwrap_or("").to_owned();
    let query = parse_query(&query_string);
    if query.eio != Some("4") {
        return EngineError::UnsupportedProtocolVersion.response();
    }
    let websocket = match query.transport {
        Some("polling") if config.transports.polling => false,
        Some("websocket") if config.transports.websocket => true,
        _ => return EngineError::TransportUnknown.response(),
    };

    if let Some(sid) = query.sid {
        let Some(session) = sid.parse::<Sid>().ok().and_then(|sid| server.session(sid)) else {
            return EngineError::SessionIdUnknown.response();
        };
        if websocket {
            if session.transport() != POLLING {
                return EngineError::BadRequest.response();
            }
            return match upgrade(&mut req) {
                Some((response, on_upgrade)) => {
                    tokio::spawn(transport::run_upgrade(session, on_upgrade));
                    response
                }
                None => EngineError::BadRequest.response(),
            };
        }
        if !matches!(session.transport(), POLLING | UPGRADING) {
            return EngineError::BadRequest.response();
        }
        return match *req.method() {
            Method::GET => match transport::poll_get(&session).await {
                Ok(body) => text(StatusCode::OK, "text/plain; charset=UTF-8", body),
                Err(_) => EngineError::BadRequest.response(),
            },
            Method::POST => post(&session, req.into_body(), config.max_payload).await,
            _ => EngineError::BadRequest.response(),
        };
    }

    if req.method() != Method::GET {
        return EngineError::BadHandshakeMethod.response();
    }
    if server.is_closing() {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            Bytes::from_static(b"shutting down"),
        );
    }
    let address = req
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    let handshake = Handshake::new(req.headers(), &query_string, address);
    if websocket {
        let Some((response, on_upgrade)) = upgrade(&mut req) else {
            return EngineError::BadRequest.response();
        };
        let session = Session::new(server.clone(), handshake, WEBSOCKET);
        let open = open_packet(&session, &[]);
        server.insert_session(session.clone());
        tokio::spawn(transport::run_new_ws(session, on_upgrade, open));
        response
    } else {
        let session = Session::new(server.clone(), handshake, POLLING);
        let upgrades: &[&str] = if config.transports.websocket {
            &["websocket"]
        } else {
            &[]
        };
        let open = open_packet(&session, upgrades);
        server.insert_session(session.clone());
        tokio::spawn(session::run(session, None));
        text(StatusCode::OK, "text/plain; charset=UTF-8", open)
    }
}

fn open_packet(session: &Session, upgrades: &[&str]) -> Bytes {
    let config = &session.server.config;
    eio::open_packet(
        session.id.as_str(),
        upgrades,
        config.ping_interval.as_millis() as u64,
        config.ping_timeout.as_millis() as u64,
        config.max_payload,
    )
}

async fn post<B>(session: &Arc<Session>, body: B, max_payload: usize) -> Response<Full<Bytes>>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let body = match Limited::new(body, max_payload).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            // Refused, but the session lives on, as with socket.io: the
            // oversized body is simply not read.
            return if e.downcast_ref::<LengthLimitError>().is_some() {
                text(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "text/plain",
                    Bytes::from_static(b"payload too large"),
                )
            } else {
                EngineError::BadRequest.response()
            };
        }
    };
    match transport::poll_post(session, body).await {
        Ok(()) => text(StatusCode::OK, "text/html", Bytes::from_static(b"ok")),
        Err(PollError::Overlap | PollError::BadPayload) => EngineError::BadRequest.response(),
    }
}

/// Checks a WebSocket upgrade request and builds the 101 answer.
fn upgrade<B>(req: &mut Request<B>) -> Option<(Response<Full<Bytes>>, hyper::upgrade::OnUpgrade)> {
    let headers = req.headers();
    let has_token = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if !has_token(header::UPGRADE, "websocket") || !has_token(header::CONNECTION, "upgrade") {
        return None;
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        return None;
    }
    let accept = ws::accept_key(headers.get(header::SEC_WEBSOCKET_KEY)?.as_bytes());
    let on_upgrade = hyper::upgrade::on(req);
    let response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(Full::new(Bytes::new()))
        .ok()?;
    Some((response, on_upgrade))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing_takes_what_the_engine_needs() {
        let q = parse_query("EIO=4&transport=polling&t=abc&sid=xyz");
        assert_eq!(
            (q.eio, q.transport, q.sid),
            (Some("4"), Some("polling"), Some("xyz"))
        );
        let q = parse_query("");
        assert_eq!((q.eio, q.transport, q.sid), (None, None, None));
        let q = parse_query("EIO&&=x");
        assert_eq!(q.eio, Some(""));
    }
}
