//! The TCP listener the server accepts on. Unlike the stock one it does not
//! fail in silence: when `accept` fails for lack of descriptors or memory
//! (the client waits in the kernel's queue and times out), it logs that
//! clearly, at most once per [`REPORT_EVERY`] with the count since the last
//! line, counts it in `rtcio_accept_failures_total`, and backs off briefly
//! while the sockets it already has carry on.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use metrics::Counter;
use tokio::net::{TcpListener, TcpStream};

/// At most one log line per this long while accepts keep failing.
pub const REPORT_EVERY: Duration = Duration::from_secs(5);

/// Pause after a failed accept: retrying at once would spin, since the
/// waiting connection stays queued until a descriptor frees up.
const BACKOFF: Duration = Duration::from_millis(100);

/// A TCP listener that sets `TCP_NODELAY` on each connection (small frames
/// must not wait for Nagle's algorithm: measured 4x lower relay rate) and
/// reports accept failures.
pub struct Accepting {
    inner: TcpListener,
    failures: Failures,
}

impl Accepting {
    pub fn new(inner: TcpListener) -> Self {
        Accepting {
            inner,
            failures: Failures::new(metrics::counter!("rtcio_accept_failures_total")),
        }
    }

    /// The next connection; failed accepts are reported and retried.
    pub async fn next(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    self.failures.recovered(Instant::now());
                    let _ = stream.set_nodelay(true);
                    return (stream, addr);
                }
                // The client gave up before we took its connection: nothing to report.
                Err(e) if is_connection_error(&e) => {}
                Err(e) => {
                    self.failures.failed(&e, Instant::now());
                    tokio::time::sleep(BACKOFF).await;
                }
            }
        }
    }
}

impl axum::serve::Listener for Accepting {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        self.next().await
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// What an accept error means for an operator.
fn explain(e: &io::Error) -> &'static str {
    #[cfg(unix)]
    match e.raw_os_error() {
        Some(libc::EMFILE) => {
            return "the process is out of file descriptors (EMFILE): raise its open-file limit \
                    (systemd LimitNOFILE, ulimit -n)"
        }
        Some(libc::ENFILE) => {
            return "the system is out of file descriptors (ENFILE): raise fs.file-max"
        }
        Some(libc::ENOMEM) | Some(libc::ENOBUFS) => {
            return "the kernel is out of memory for sockets (ENOMEM/ENOBUFS)"
        }
        _ => {}
    }
    let _ = e;
    "accept failed"
}

/// Counts failed accepts and rate-limits their log lines.
struct Failures {
    counter: Counter,
    /// When the last line was logged.
    last_report: Option<Instant>,
    /// Failures since that line (not yet reported).
    unreported: u64,
    /// Failures since accepting last worked.
    streak: u64,
}

/// What [`Failures`] decided to log (returned for the unit tests).
#[derive(Debug, PartialEq, Eq)]
enum Report {
    Quiet,
    /// A line for this many failures.
    Failing(u64),
    /// Accepting works again after this many failures in a row.
    Recovered(u64),
}

impl Failures {
    fn new(counter: Counter) -> Self {
        Failures {
            counter,
            last_report: None,
            unreported: 0,
            streak: 0,
        }
    }

    fn failed(&mut self, e: &io::Error, now: Instant) -> Report {
        self.counter.increment(1);
        self.unreported += 1;
        self.streak += 1;
        let due = self
            .last_report
            .is_none_or(|at| now.duration_since(at) >= REPORT_EVERY);
        if !due {
            return Report::Quiet;
        }
        let count = std::mem::take(&mut self.unreported);
        self.last_report = Some(now);
        tracing::error!(
            error = %e,
            failures = count,
            open_file_limit = crate::capacity::current_soft_limit(),
            "cannot accept new connections: {}; {count} failed accept(s) since the last report, \
             the connected sockets are still served",
            explain(e)
        );
        Report::Failing(count)
    }

    fn recovered(&mut self, _now: Instant) -> Report {
        if self.streak == 0 {
            return Report::Quiet;
        }
        let streak = std::mem::take(&mut self.streak);
        self.unreported = 0;
        self.last_report = None;
        tracing::warn!(
            failures = streak,
            "accepting connections again after {streak} failed accept(s)"
        );
        Report::Recovered(streak)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emfile() -> io::Error {
        io::Error::from_raw_os_error(libc::EMFILE)
    }

    #[test]
    fn logs_at_most_once_per_interval_with_the_count_since_the_last_line() {
        let mut f = Failures::new(Counter::noop());
        let t0 = Instant::now();
        assert_eq!(f.failed(&emfile(), t0), Report::Failing(1));
        for i in 1..50 {
            let at = t0 + Duration::from_millis(i * 100);
            assert_eq!(f.failed(&emfile(), at), Report::Quiet);
        }
        // 49 more since the first line; the 50th is due at 5 s.
        assert_eq!(f.failed(&emfile(), t0 + REPORT_EVERY), Report::Failing(50));
        assert_eq!(f.recovered(t0 + REPORT_EVERY), Report::Recovered(51));
        assert_eq!(f.recovered(t0 + REPORT_EVERY), Report::Quiet);
        // A new episode is reported at once.
        assert_eq!(
            f.failed(&emfile(), t0 + REPORT_EVERY + Duration::from_millis(1)),
            Report::Failing(1)
        );
    }

    #[test]
    fn explains_descriptor_exhaustion() {
        assert!(explain(&emfile()).contains("EMFILE"));
        assert!(explain(&io::Error::from_raw_os_error(libc::ENFILE)).contains("ENFILE"));
        assert_eq!(explain(&io::Error::other("x")), "accept failed");
    }

    #[tokio::test]
    async fn accepts_with_nodelay() {
        let mut l = Accepting::new(TcpListener::bind("127.0.0.1:0").await.unwrap());
        let addr = axum::serve::Listener::local_addr(&l).unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (stream, peer) = l.next().await;
        assert_eq!(peer, client.local_addr().unwrap());
        assert!(stream.nodelay().unwrap());
    }
}
