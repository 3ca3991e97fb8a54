//! A minimal Engine.IO 4 / Socket.IO 5 client over WebSocket: just enough of
//! the protocol to drive a signaling server, with as little work per message
//! as possible (the load generator must not be the bottleneck).
//!
//! The WebSocket layer is hand-rolled for the client side only: one read
//! buffer per connection, frames parsed in place and handed out as `&str`
//! (no allocation per message), outgoing frames masked into one write buffer
//! that is flushed with a single `write` for a whole batch.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Socket reads and writes of the whole bench (to see how well it batches).
pub static READS: AtomicU64 = AtomicU64::new(0);
pub static WRITES: AtomicU64 = AtomicU64::new(0);

/// One server of the target: its address and the `Host` header to send.
pub struct Node {
    pub addr: SocketAddr,
    host_header: String,
}

/// Where the client sockets bind before connecting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sources {
    /// One address per 20,000 sockets, 127.0.0.1 upwards (a loopback target only).
    Auto,
    /// 127.0.0.1 .. 127.0.0.N (a loopback target only; 1 = let the kernel choose).
    Count(usize),
    /// Exactly these addresses, in turn.
    List(Vec<Ipv4Addr>),
}

impl std::str::FromStr for Sources {
    type Err = String;

    /// `0` (automatic), a count `N`, or a comma-separated list of IPv4 addresses.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Ok(n) = s.parse::<usize>() {
            return Ok(if n == 0 {
                Sources::Auto
            } else {
                Sources::Count(n)
            });
        }
        let list = s
            .split(',')
            .filter(|a| !a.trim().is_empty())
            .map(|a| {
                a.trim()
                    .parse::<Ipv4Addr>()
                    .map_err(|_| format!("not a count or an IPv4 address: {a:?}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if list.is_empty() {
            return Err("empty address list".into());
        }
        Ok(Sources::List(list))
    }
}

/// Where and how to connect: one server, or several (the nodes of a
/// cluster), chosen per socket.
pub struct Target {
    nodes: Vec<Node>,
    /// Source addresses to spread client sockets over (empty: let the kernel choose).
    sources: Vec<Ipv4Addr>,
    next_source: AtomicUsize,
    /// Round-robin over the nodes for sockets that do not ask for one.
    next_node: AtomicUsize,
    read_buffer: usize,
    pub connect_timeout: Duration,
    /// The namespace CONNECT packet (`40`, or `40{"token":...}` with a token).
    connect_packet: String,
}

impl Target {
    /// `nodes`: (address, host name for the `Host` header); at least one.
    /// `sockets`: how many client sockets the scenario opens (for `Sources::Auto`).
    pub fn new(
        nodes: Vec<(SocketAddr, String)>,
        sources: &Sources,
        sockets: usize,
        read_buffer: usize,
    ) -> Self {
        assert!(!nodes.is_empty(), "at least one server");
        let all_loopback_v4 = nodes
            .iter()
            .all(|(a, _)| matches!(a.ip(), IpAddr::V4(ip) if ip.is_loopback()));
        let count = match sources {
            Sources::Auto => sockets.div_ceil(20_000).max(1),
            Sources::Count(n) => *n,
            Sources::List(_) => 0,
        };
        let sources = match sources {
            Sources::List(list) => list.clone(),
            _ if all_loopback_v4 && count > 1 => (0..count)
                .map(|i| Ipv4Addr::new(127, 0, ((1 + i) >> 8) as u8, (1 + i) as u8))
                .collect(),
            _ => Vec::new(),
        };
        let nodes = nodes
            .into_iter()
            .map(|(addr, host)| {
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host
                };
                Node {
                    addr,
                    host_header: format!("{host}:{}", addr.port()),
                }
            })
            .collect();
        Target {
            nodes,
            sources,
            next_source: AtomicUsize::new(0),
            next_node: AtomicUsize::new(0),
            read_buffer: read_buffer.max(1024),
            connect_timeout: Duration::from_secs(10),
            connect_packet: "40".into(),
        }
    }

    /// How many servers the sockets are spread over.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The server addresses, `host:port` each.
    pub fn node_list(&self) -> String {
        self.nodes
            .iter()
            .map(|n| n.addr.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Sends `token` in the CONNECT packet's `auth` (`{ "token": ... }`).
    pub fn set_token(&mut self, token: &str) {
        let auth = serde_json::json!({ "token": token });
        self.connect_packet = format!("40{auth}");
    }

    pub fn source_count(&self) -> usize {
        self.sources.len().max(1)
    }

    async fn tcp(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        let socket = match addr {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        if !self.sources.is_empty() {
            let i = self.next_source.fetch_add(1, Ordering::Relaxed) % self.sources.len();
            // Pick the port at connect() time (4-tuple unique) rather than at
            // bind() time (unique per address), so TIME_WAIT reuse works.
            set_bind_address_no_port(&socket);
            socket.bind(SocketAddr::new(IpAddr::V4(self.sources[i]), 0))?;
        }
        let stream = socket.connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// Connects a WebSocket to the next server in turn (round-robin over
    /// the nodes), reads the Engine.IO open packet, connects the `/`
    /// namespace and learns the socket id.
    pub async fn connect(&self) -> Result<Client, String> {
        let node = self.next_node.fetch_add(1, Ordering::Relaxed);
        self.connect_to(node).await
    }

    /// As `connect`, to node `node` (modulo the number of nodes).
    pub async fn connect_to(&self, node: usize) -> Result<Client, String> {
        let node = &self.nodes[node % self.nodes.len()];
        match tokio::time::timeout(self.connect_timeout, self.connect_inner(node)).await {
            Ok(r) => r,
            Err(_) => Err(format!("connect to {} timed out", node.addr)),
        }
    }

    async fn connect_inner(&self, node: &Node) -> Result<Client, String> {
        let stream = self
            .tcp(node.addr)
            .await
            .map_err(|e| format!("tcp connect to {}: {e}", node.addr))?;
        let mut ws = Conn::new(stream, self.read_buffer);
        ws.handshake(&node.host_header).await?;
        let open = ws.recv().await?;
        if !open.starts_with('0') {
            return Err(format!("expected an Engine.IO open packet, got {open:.80}"));
        }
        ws.send(&self.connect_packet).await?;
        loop {
            let text = ws.recv().await?;
            if text.starts_with("40") {
                let sid = str_field(text, "sid")
                    .ok_or_else(|| format!("no sid in {text:.80}"))?
                    .to_string();
                return Ok(Client { ws, sid });
            } else if text.starts_with("44") {
                return Err(format!("connect_error: {text:.120}"));
            } else if text == "2" {
                ws.send("3").await?;
            }
        }
    }
}

fn set_bind_address_no_port(socket: &TcpSocket) {
    let one: libc::c_int = 1;
    // SAFETY: plain setsockopt on a socket we own; failure is harmless.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            &one as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// A connected Socket.IO client on the `/` namespace.
pub struct Client {
    pub ws: Conn,
    pub sid: String,
}

/// xorshift64*: masking keys and handshake nonces need no crypto here.
fn random_u64() -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut x = STATE.load(Ordering::Relaxed);
    if x == 0 {
        x = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9E37_79B9_7F4A_7C15, |d| d.as_nanos() as u64)
            | 1;
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    STATE.store(x, Ordering::Relaxed);
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// XORs `data` with the 4-byte masking key (RFC 6455 §5.3), 8 bytes at a time.
fn apply_mask(data: &mut [u8], key: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        let v = u64::from_ne_bytes(c.try_into().expect("8 bytes")) ^ wide;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
}

enum Parsed {
    Incomplete,
    Frame {
        fin: bool,
        opcode: u8,
        start: usize,
        end: usize,
    },
}

fn parse_frame(buf: &mut [u8]) -> Result<Parsed, String> {
    if buf.len() < 2 {
        return Ok(Parsed::Incomplete);
    }
    let fin = buf[0] & 0x80 != 0;
    let opcode = buf[0] & 0x0f;
    let masked = buf[1] & 0x80 != 0;
    let (len, mut hdr) = match buf[1] & 0x7f {
        126 => {
            if buf.len() < 4 {
                return Ok(Parsed::Incomplete);
            }
            (u16::from_be_bytes([buf[2], buf[3]]) as u64, 4)
        }
        127 => {
            if buf.len() < 10 {
                return Ok(Parsed::Incomplete);
            }
            (
                u64::from_be_bytes(buf[2..10].try_into().expect("8 bytes")),
                10,
            )
        }
        n => (n as u64, 2),
    };
    if len > 64 << 20 {
        return Err(format!("frame of {len} bytes"));
    }
    let mut key = [0u8; 4];
    if masked {
        if buf.len() < hdr + 4 {
            return Ok(Parsed::Incomplete);
        }
        key.copy_from_slice(&buf[hdr..hdr + 4]);
        hdr += 4;
    }
    let end = hdr + len as usize;
    if buf.len() < end {
        return Ok(Parsed::Incomplete);
    }
    if masked {
        apply_mask(&mut buf[hdr..end], key);
    }
    Ok(Parsed::Frame {
        fin,
        opcode,
        start: hdr,
        end,
    })
}

/// The client side of one WebSocket connection.
pub struct Conn {
    stream: TcpStream,
    rbuf: Vec<u8>,
    /// Unparsed bytes are `rbuf[rpos..rlen]`.
    rpos: usize,
    rlen: usize,
    /// Bytes of the message handed out by the last `recv`, dropped on the next.
    consumed: usize,
    /// A fragmented text message being reassembled (rare: servers seldom fragment).
    frag: Vec<u8>,
    frag_done: bool,
    wbuf: Vec<u8>,
    mask: [u8; 4],
    read_buffer: usize,
}

impl Conn {
    fn new(stream: TcpStream, read_buffer: usize) -> Self {
        Conn {
            stream,
            rbuf: vec![0; read_buffer],
            rpos: 0,
            rlen: 0,
            consumed: 0,
            frag: Vec::new(),
            frag_done: false,
            wbuf: Vec::new(),
            mask: (random_u64() as u32).to_ne_bytes(),
            read_buffer,
        }
    }

    async fn handshake(&mut self, host: &str) -> Result<(), String> {
        let nonce: Vec<u8> = [random_u64(), random_u64()]
            .iter()
            .flat_map(|x| x.to_ne_bytes())
            .collect();
        let request = format!(
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n\r\n",
            base64(&nonce)
        );
        self.stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("send upgrade request: {e}"))?;
        loop {
            if let Some(p) = self.rbuf[..self.rlen]
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
            {
                let head = String::from_utf8_lossy(&self.rbuf[..p]);
                if !head.starts_with("HTTP/1.1 101") {
                    let line = head.lines().next().unwrap_or("").to_string();
                    return Err(format!("websocket upgrade refused: {line}"));
                }
                self.rpos = p + 4;
                return Ok(());
            }
            if self.rlen == self.rbuf.len() {
                return Err("upgrade response too long".into());
            }
            let n = self
                .stream
                .read(&mut self.rbuf[self.rlen..])
                .await
                .map_err(|e| format!("read upgrade response: {e}"))?;
            if n == 0 {
                return Err("connection closed during the upgrade".into());
            }
            self.rlen += n;
        }
    }

    /// Next text message. Cancel-safe: dropping the future loses nothing.
    /// WebSocket pings are answered (queued and written opportunistically);
    /// a close frame or EOF is an error.
    pub async fn recv(&mut self) -> Result<&str, String> {
        self.rpos += std::mem::take(&mut self.consumed);
        if self.frag_done {
            self.frag.clear();
            self.frag_done = false;
        }
        loop {
            match parse_frame(&mut self.rbuf[self.rpos..self.rlen])? {
                Parsed::Frame {
                    fin,
                    opcode,
                    start,
                    end,
                } => {
                    let (s, e) = (self.rpos + start, self.rpos + end);
                    match opcode {
                        1 if fin => {
                            self.consumed = end;
                            return std::str::from_utf8(&self.rbuf[s..e])
                                .map_err(|_| "invalid UTF-8 in a text frame".to_string());
                        }
                        1 | 0 => {
                            self.frag.extend_from_slice(&self.rbuf[s..e]);
                            self.rpos += end;
                            if fin {
                                self.frag_done = true;
                                return std::str::from_utf8(&self.frag)
                                    .map_err(|_| "invalid UTF-8 in a text message".to_string());
                            }
                        }
                        8 => return Err("connection closed".into()),
                        9 => {
                            let payload = self.rbuf[s..e].to_vec();
                            self.queue_frame(0xA, &[&payload]);
                            self.rpos += end;
                            self.try_flush()?;
                        }
                        _ => self.rpos += end,
                    }
                }
                Parsed::Incomplete => {
                    if self.rpos == self.rlen {
                        self.rpos = 0;
                        self.rlen = 0;
                    } else if self.rpos > 0 && self.rlen == self.rbuf.len() {
                        self.rbuf.copy_within(self.rpos..self.rlen, 0);
                        self.rlen -= self.rpos;
                        self.rpos = 0;
                    }
                    if self.rlen == self.rbuf.len() {
                        // A frame larger than the buffer.
                        let grow = self.rbuf.len().max(self.read_buffer);
                        self.rbuf.resize(self.rbuf.len() + grow, 0);
                    }
                    let n = self
                        .stream
                        .read(&mut self.rbuf[self.rlen..])
                        .await
                        .map_err(|e| format!("read: {e}"))?;
                    READS.fetch_add(1, Ordering::Relaxed);
                    if n == 0 {
                        return Err("connection closed".into());
                    }
                    self.rlen += n;
                }
            }
        }
    }

    fn queue_frame(&mut self, opcode: u8, parts: &[&[u8]]) {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        self.wbuf.push(0x80 | opcode);
        if len < 126 {
            self.wbuf.push(0x80 | len as u8);
        } else if len <= u16::MAX as usize {
            self.wbuf.push(0x80 | 126);
            self.wbuf.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            self.wbuf.push(0x80 | 127);
            self.wbuf.extend_from_slice(&(len as u64).to_be_bytes());
        }
        self.wbuf.extend_from_slice(&self.mask);
        let start = self.wbuf.len();
        for p in parts {
            self.wbuf.extend_from_slice(p);
        }
        apply_mask(&mut self.wbuf[start..], self.mask);
    }

    /// Queues a text message made of `parts` (written by the next `flush`).
    pub fn queue_parts(&mut self, parts: &[&[u8]]) {
        self.queue_frame(0x1, parts);
    }

    pub fn queue(&mut self, text: &str) {
        self.queue_frame(0x1, &[text.as_bytes()]);
    }

    /// Queues `42["name",payload]`.
    pub fn queue_event(&mut self, name: &str, payload: &str) {
        self.queue_frame(
            0x1,
            &[b"42[\"", name.as_bytes(), b"\",", payload.as_bytes(), b"]"],
        );
    }

    pub fn queued(&self) -> usize {
        self.wbuf.len()
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<(), String> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let r = self.stream.write_all(&self.wbuf).await;
        WRITES.fetch_add(1, Ordering::Relaxed);
        self.wbuf.clear();
        r.map_err(|e| format!("write: {e}"))
    }

    /// Writes what the socket takes now without waiting (keeps the rest queued).
    fn try_flush(&mut self) -> Result<(), String> {
        while !self.wbuf.is_empty() {
            match self.stream.try_write(&self.wbuf) {
                Ok(n) => {
                    self.wbuf.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(format!("write: {e}")),
            }
        }
        Ok(())
    }

    pub async fn send(&mut self, text: &str) -> Result<(), String> {
        self.queue(text);
        self.flush().await
    }

    pub async fn send_event(&mut self, name: &str, payload: &str) -> Result<(), String> {
        self.queue_event(name, payload);
        self.flush().await
    }

    /// Socket.IO namespace disconnect, then a WebSocket close; waits (bounded)
    /// for the server to close its side so TIME_WAIT stays on the server.
    pub async fn disconnect(&mut self, wait: Duration) {
        self.queue("41");
        self.queue_frame(0x8, &[&1000u16.to_be_bytes()]);
        if self.flush().await.is_err() {
            return;
        }
        // Read up to the server's close frame, then until it closes the TCP
        // connection (RFC 6455 §7.1.1: the server closes first).
        let _ = tokio::time::timeout(wait, async {
            while self.recv().await.is_ok() {}
            let mut scratch = [0u8; 512];
            while let Ok(n) = self.stream.read(&mut scratch).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
    }
}

/// What one incoming text message is, as far as the bench cares.
pub enum Incoming<'a> {
    /// Engine.IO ping: answer `3`.
    Ping,
    /// Socket.IO event on `/`: name and the rest of the frame (`,payload]`).
    Event(&'a str, &'a str),
    Other,
}

pub fn classify(text: &str) -> Incoming<'_> {
    if text == "2" {
        return Incoming::Ping;
    }
    if let Some(rest) = text.strip_prefix("42[\"") {
        if let Some(end) = rest.find('"') {
            return Incoming::Event(&rest[..end], &rest[end + 1..]);
        }
    }
    Incoming::Other
}

/// Value of the first `"key":"value"` string member found in `text` (no
/// unescaping: the bench only looks up ids and tags without escapes).
pub fn str_field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let mut pat = String::with_capacity(key.len() + 4);
    pat.push('"');
    pat.push_str(key);
    pat.push_str("\":\"");
    let start = text.find(&pat)? + pat.len();
    let len = text[start..].find('"')?;
    Some(&text[start..start + len])
}

/// Escapes a string for a JSON string literal (used once per payload template).
pub fn json_escape(s: &str) -> String {
    serde_json::to_string(s).expect("string serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_frames() {
        assert!(matches!(classify("2"), Incoming::Ping));
        match classify(r#"42["join-ok",{"roomId":"r"}]"#) {
            Incoming::Event(name, rest) => {
                assert_eq!(name, "join-ok");
                assert_eq!(rest, r#",{"roomId":"r"}]"#);
            }
            _ => panic!("not an event"),
        }
        assert!(matches!(classify("40{\"sid\":\"x\"}"), Incoming::Other));
    }

    #[test]
    fn fields() {
        let t = r##"42["#rtcio:init-offer",{"source":"abc_DEF-1"}]"##;
        assert_eq!(str_field(t, "source"), Some("abc_DEF-1"));
        assert_eq!(str_field(t, "target"), None);
    }

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0u8; 16]).len(), 24);
    }

    #[test]
    fn mask_roundtrip() {
        let mut data: Vec<u8> = (0..=250u8).collect();
        let orig = data.clone();
        apply_mask(&mut data, [1, 2, 3, 4]);
        assert_eq!(data[0], 1);
        assert_eq!(data[5], 5 ^ 2);
        apply_mask(&mut data, [1, 2, 3, 4]);
        assert_eq!(data, orig);
    }

    #[test]
    fn frames_parse() {
        // Unmasked text "hi", then a 300-byte text (16-bit length).
        let mut buf = vec![0x81, 2, b'h', b'i', 0x81, 126, 1, 44];
        buf.extend(std::iter::repeat_n(b'x', 300));
        match parse_frame(&mut buf).unwrap() {
            Parsed::Frame {
                fin,
                opcode,
                start,
                end,
            } => {
                assert!(fin);
                assert_eq!((opcode, start, end), (1, 2, 4));
            }
            Parsed::Incomplete => panic!(),
        }
        match parse_frame(&mut buf[4..]).unwrap() {
            Parsed::Frame { start, end, .. } => assert_eq!((start, end), (4, 304)),
            Parsed::Incomplete => panic!(),
        }
        assert!(matches!(
            parse_frame(&mut buf[4..100]).unwrap(),
            Parsed::Incomplete
        ));
        // A masked frame is unmasked in place.
        let mut m = vec![0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2];
        match parse_frame(&mut m).unwrap() {
            Parsed::Frame { start, end, .. } => assert_eq!(&m[start..end], b"hi"),
            Parsed::Incomplete => panic!(),
        }
    }
}
