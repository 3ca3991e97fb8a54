//! `GET /metrics` in Prometheus text format.
//!
//! Counters are kept through the `metrics` facade (cached handles, one atomic
//! add per event: see `crate::observe` and the `rtcio` crate) and rendered by
//! `metrics-exporter-prometheus`. What can be read from the server's own
//! state is sampled when scraped instead of counted on every join and leave:
//! sockets by namespace and transport, rooms, the room-size distribution,
//! and the process's memory, CPU and descriptors.
//!
//! `rtcio_room_size` is the distribution of the rooms' sizes *at scrape
//! time* (buckets by `le`, `_sum` = sockets in rooms, `_count` = rooms), so
//! `histogram_quantile` over it answers "how big are rooms now"; unlike a
//! histogram of observations it may go down between scrapes.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use rtcio_engine::Server;
use subtle::ConstantTimeEq;

use crate::secret::Secret;

/// Upper bounds of the `rtcio_room_size` buckets (peers per room).
pub const ROOM_SIZE_BUCKETS: &[usize] = &[1, 2, 3, 4, 5, 6, 8, 10, 16, 25, 50, 100];

#[derive(Debug, Clone, clap::Args)]
pub struct MetricsArgs {
    /// Bearer token `GET /metrics` requires (`Authorization: Bearer TOKEN`).
    /// Without it, /metrics is open to whoever reaches its address.
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<Secret>,

    /// Serve /metrics on this separate address (e.g. `127.0.0.1:9100`, plain
    /// HTTP, with /health and /ready) instead of on the main port.
    #[arg(long, env = "METRICS_ADDR", value_name = "HOST:PORT")]
    pub metrics_addr: Option<String>,
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder. Call it before the server is built:
/// counter handles taken earlier would stay no-ops.
pub fn install() -> Result<(), String> {
    if HANDLE.get().is_some() {
        return Ok(());
    }
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
    describe();
    let _ = HANDLE.set(handle);
    Ok(())
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, Unit};
    describe_gauge!(
        "rtcio_sockets_connected",
        "Sockets connected, by namespace and transport."
    );
    describe_gauge!(
        "rtcio_rooms",
        "Rooms with at least one member, by namespace."
    );
    describe_gauge!(
        "rtcio_engine_sessions",
        "Open Engine.IO sessions (connections)."
    );
    describe_counter!(
        "rtcio_events_received_total",
        "Events received from clients, by name (unknown names as `other`)."
    );
    describe_counter!(
        "rtcio_envelopes_relayed_total",
        "#rtcio:message envelopes handed to their target."
    );
    describe_counter!(
        "rtcio_envelope_bytes_total",
        Unit::Bytes,
        "Bytes of the relayed envelopes (Socket.IO packets)."
    );
    describe_counter!(
        "rtcio_errors_total",
        "Refusals sent to clients (error and join-error), by code."
    );
    describe_counter!(
        "rtcio_auth_failures_total",
        "Refused credentials, by reason."
    );
    describe_counter!(
        "rtcio_rate_limited_total",
        "Events dropped by rate limits, by event."
    );
    describe_counter!("rtcio_joins_total", "Successful room joins.");
    describe_counter!(
        "rtcio_slow_consumers_total",
        "Sockets cut off because they did not read what they were sent."
    );
    describe_gauge!(
        "rtcio_cluster_up",
        "1 while this node reaches Redis, 0 while it does not (cluster only)."
    );
    describe_gauge!(
        "rtcio_cluster_queued_messages",
        "Cluster messages waiting for the publisher connection to Redis."
    );
    describe_counter!(
        "rtcio_cluster_messages_dropped_total",
        "Cluster messages not sent (Redis down, queue full, failed batch); a resync follows."
    );
    describe_counter!(
        "rtcio_accept_failures_total",
        "Failed accepts (no descriptors or memory left): clients that could not connect."
    );
}

/// What the `/metrics` route needs.
#[derive(Clone)]
struct Scrape {
    io: Server,
    token: Option<Arc<Secret>>,
}

/// The `/metrics` route (answers 503 if the recorder was not installed).
pub fn router(io: Server, args: &MetricsArgs) -> Router {
    let state = Scrape {
        io,
        token: args.metrics_token.clone().map(Arc::new),
    };
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn metrics(State(scrape): State<Scrape>, headers: HeaderMap) -> Response {
    if let Some(token) = &scrape.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(rtcio::identity::bearer)
            .unwrap_or("");
        if !bool::from(given.as_bytes().ct_eq(token.expose().as_bytes())) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "a bearer token is required\n",
            )
                .into_response();
        }
    }
    let Some(handle) = HANDLE.get() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "metrics are not enabled\n").into_response();
    };
    let rooms = sample(&scrape.io);
    let mut body = handle.render();
    render_room_sizes(&mut body, &rooms);
    crate::process::render(&mut body);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Sets the gauges read from the server's state; returns every room size.
fn sample(io: &Server) -> Vec<usize> {
    let mut sizes = Vec::new();
    for ns in io.namespaces() {
        let (mut polling, mut websocket) = (0u64, 0u64);
        for socket in ns.sockets() {
            match socket.transport() {
                "websocket" => websocket += 1,
                _ => polling += 1,
            }
        }
        let name = ns.name().to_owned();
        for (transport, n) in [("polling", polling), ("websocket", websocket)] {
            metrics::gauge!("rtcio_sockets_connected", "namespace" => name.clone(), "transport" => transport)
                .set(n as f64);
        }
        let rooms = ns.rooms();
        metrics::gauge!("rtcio_rooms", "namespace" => name).set(rooms.len() as f64);
        sizes.extend(rooms.into_iter().map(|(_, size)| size));
    }
    metrics::gauge!("rtcio_engine_sessions").set(io.session_count() as f64);
    crate::cluster::sample_metrics();
    sizes
}

/// Appends `rtcio_room_size` (see the module documentation).
fn render_room_sizes(out: &mut String, sizes: &[usize]) {
    let mut buckets: BTreeMap<usize, u64> = ROOM_SIZE_BUCKETS.iter().map(|&b| (b, 0)).collect();
    for &size in sizes {
        for (_, n) in buckets.range_mut(size..) {
            *n += 1;
        }
    }
    let _ = writeln!(
        out,
        "# HELP rtcio_room_size Sizes of the rooms now (sampled at scrape time).\n\
         # TYPE rtcio_room_size histogram"
    );
    for (le, n) in &buckets {
        let _ = writeln!(out, "rtcio_room_size_bucket{{le=\"{le}\"}} {n}");
    }
    let sum: usize = sizes.iter().sum();
    let _ = writeln!(
        out,
        "rtcio_room_size_bucket{{le=\"+Inf\"}} {count}\nrtcio_room_size_sum {sum}\nrtcio_room_size_count {count}",
        count = sizes.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_sizes_are_cumulative_buckets() {
        let mut out = String::new();
        render_room_sizes(&mut out, &[1, 2, 2, 7, 300]);
        assert!(
            out.contains("rtcio_room_size_bucket{le=\"1\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("rtcio_room_size_bucket{le=\"2\"} 3\n"),
            "{out}"
        );
        assert!(
            out.contains("rtcio_room_size_bucket{le=\"6\"} 3\n"),
            "{out}"
        );
        assert!(
            out.contains("rtcio_room_size_bucket{le=\"8\"} 4\n"),
            "{out}"
        );
        assert!(
            out.contains("rtcio_room_size_bucket{le=\"100\"} 4\n"),
            "{out}"
        );
        assert!(
            out.contains("rtcio_room_size_bucket{le=\"+Inf\"} 5\n"),
            "{out}"
        );
        assert!(out.contains("rtcio_room_size_sum 312\n"), "{out}");
        assert!(out.contains("rtcio_room_size_count 5\n"), "{out}");
    }
}
