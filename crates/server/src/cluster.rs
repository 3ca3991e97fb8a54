//! Scaling out on Redis (`--redis-url`): every node of a cluster is a plain
//! rtcio-server with the same settings and the same Redis. Without the URL
//! no Redis code runs.

use std::sync::OnceLock;
use std::time::Duration;

use clap::Args;
use rtcio_cluster::{Cluster, ClusterOptions};

use crate::secret::Secret;

#[derive(Debug, Clone, Args)]
pub struct ClusterSettings {
    /// Redis to run as one node of a cluster on (`redis://[:password@]host:port[/db]`,
    /// or `unix:///path/to/redis.sock` for a Redis on the same machine):
    /// rooms, relays and presence then span every server using the same Redis.
    /// Unset: a single process, nothing in Redis. The URL may hold a password:
    /// it is never logged or shown.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<Secret>,

    /// Prefix of every Redis key and channel the cluster uses (several
    /// clusters may share one Redis under different prefixes).
    #[arg(long, env = "REDIS_PREFIX", default_value = "rtcio")]
    pub redis_prefix: String,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

impl ClusterSettings {
    /// Joins the cluster when `--redis-url` is set (in the background: the
    /// server starts even while Redis is down) and registers the `redis`
    /// readiness check.
    pub fn start(&self) -> Result<Option<Cluster>, String> {
        let Some(url) = &self.redis_url else {
            return Ok(None);
        };
        if self.redis_prefix.is_empty() || self.redis_prefix.contains(char::is_whitespace) {
            return Err("--redis-prefix must be a non-empty word".into());
        }
        let cluster = Cluster::start(
            url.expose(),
            ClusterOptions {
                prefix: self.redis_prefix.clone(),
                ..ClusterOptions::default()
            },
        )
        .map_err(|e| format!("--redis-url: {e}"))?;
        let check = cluster.clone();
        crate::readiness::global().register("redis", move || {
            let cluster = check.clone();
            async move { cluster.ping().await }
        });
        let _ = CLUSTER.set(cluster.clone());
        Ok(Some(cluster))
    }
}

/// Longest wait for the goodbye to reach Redis at shutdown.
const GOODBYE_WAIT: Duration = Duration::from_secs(5);

/// Tells the other nodes this one is stopping, if it is in a cluster (at
/// SIGTERM, before the drain): they wait for its goodbye, due within
/// `drain_delay` + `close_grace` + the goodbye's own wait (+ 5 s margin),
/// instead of taking a late liveness refresh for a death.
pub async fn leaving(drain_delay: Duration, close_grace: Duration) {
    if let Some(cluster) = CLUSTER.get() {
        cluster
            .leaving(drain_delay + close_grace + GOODBYE_WAIT + Duration::from_secs(5))
            .await;
    }
}

/// Leaves the cluster cleanly, if this process is in one (after its sessions closed).
pub async fn goodbye() {
    if let Some(cluster) = CLUSTER.get() {
        cluster.goodbye(GOODBYE_WAIT).await;
    }
}

/// Sets the cluster's metrics for a `/metrics` scrape, read from the bus at
/// that moment (nothing on the relay path; nothing outside a cluster): whether
/// Redis is reachable, the messages waiting for the publisher connection, and
/// the messages dropped so far (Redis down, queue full, or a failed batch),
/// which the logs only announce once per episode.
pub fn sample_metrics() {
    if let Some(cluster) = CLUSTER.get() {
        let bus = cluster.bus();
        metrics::gauge!("rtcio_cluster_up").set(if cluster.is_up() { 1.0 } else { 0.0 });
        metrics::gauge!("rtcio_cluster_queued_messages").set(bus.queued() as f64);
        metrics::counter!("rtcio_cluster_messages_dropped_total").absolute(bus.dropped());
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::settings;

    #[test]
    fn off_by_default_and_the_url_is_never_printed() {
        let s = settings(&[]);
        assert!(s.cluster.redis_url.is_none());
        assert_eq!(s.cluster.redis_prefix, "rtcio");
        let s = settings(&["--redis-url", "redis://:hunter2@127.0.0.1:1/0"]);
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[tokio::test]
    async fn a_malformed_url_is_refused_without_echoing_it() {
        let s = settings(&["--redis-url", "nope://:hunter2@host"]);
        let err = s.cluster.start().err().expect("refused");
        assert!(!err.contains("hunter2"), "{err}");
    }
}
