//! The Redis room store against a real redis-server, started here on a free
//! loopback port in a temporary directory (the test fails, not skips, when
//! redis-server is missing). Several store instances stand for several nodes.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use rtcio::errors::ErrorCode;
use rtcio::room_store::{PeerInfo, RoomStore};
use rtcio_cluster::room_store::{password_key, reap_member, room_key, MemberRecord};
use rtcio_cluster::RedisRoomStore;
use rtcio_engine::{Room, Sid};

struct Redis {
    child: Child,
    dir: PathBuf,
    port: u16,
    url: String,
}

impl Redis {
    fn start() -> Redis {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir =
            std::env::temp_dir().join(format!("rtcio-redis-test-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        Redis {
            child: Redis::spawn(port, &dir),
            dir,
            port,
            url: format!("redis://127.0.0.1:{port}"),
        }
    }

    /// Kills redis-server and starts it again on the same port and
    /// directory: it comes back with what the last `SAVE` wrote.
    fn restart(&mut self) {
        self.stop();
        self.child = Redis::spawn(self.port, &self.dir);
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn spawn(port: u16, dir: &std::path::Path) -> Child {
        let bin = std::env::var("RTCIO_REDIS_BIN").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(&bin)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {bin} ({e}): install the Debian package redis-server")
            });
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }

    async fn conn(&self) -> ConnectionManager {
        let client = redis::Client::open(self.url.as_str()).expect("a valid url");
        ConnectionManager::new(client).await.expect("connected")
    }

    async fn node(&self, node: &str) -> Arc<RedisRoomStore> {
        RedisRoomStore::new(self.conn().await, "rtcio", node)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn sid(n: usize) -> Sid {
    format!("{n:0>20}").parse().expect("a valid sid")
}

fn peer(name: &str) -> PeerInfo {
    PeerInfo {
        name: Arc::from(name),
        ..PeerInfo::default()
    }
}

/// Waits until everything `store` sent before reached Redis (its writes are in order).
async fn flushed(store: &RedisRoomStore) {
    store.members("/", "-").get().await.expect("Redis answers");
}

async fn cmd<T: redis::FromRedisValue>(conn: &mut ConnectionManager, args: &[&str]) -> T {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query_async(conn).await.expect("a reply")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_joins_from_several_nodes_respect_the_cap_exactly() {
    let redis = Redis::start();
    let nodes = [
        redis.node("n1").await,
        redis.node("n2").await,
        redis.node("n3").await,
    ];
    let mut joins = Vec::new();
    for i in 0..30 {
        let store = nodes[i % 3].clone();
        joins.push(tokio::spawn(async move {
            store
                .join("/", "cap8", sid(i), &peer(&format!("p{i}")), 8, None)
                .get()
                .await
        }));
    }
    let mut ok = 0;
    let mut full = 0;
    for j in joins {
        match j.await.expect("joined") {
            Ok(_) => ok += 1,
            Err(ErrorCode::RoomFull) => full += 1,
            Err(other) => panic!("unexpected refusal {other:?}"),
        }
    }
    assert_eq!((ok, full), (8, 22));
    let mut conn = redis.conn().await;
    let len: usize = cmd(&mut conn, &["HLEN", &room_key("rtcio", "/", "cap8")]).await;
    assert_eq!(len, 8);
}

#[tokio::test]
async fn snapshots_come_in_join_order_with_each_member_s_node() {
    let redis = Redis::start();
    let (a, b) = (redis.node("node-a").await, redis.node("node-b").await);
    for i in 0..5 {
        let store = if i % 2 == 0 { &a } else { &b };
        let got = store
            .join("/", "order", sid(i), &peer(&format!("p{i}")), 0, None)
            .get()
            .await
            .expect("joined");
        let sids: Vec<Sid> = got.iter().map(|(s, _)| *s).collect();
        assert_eq!(sids, (0..i).map(sid).collect::<Vec<_>>());
        let names: Vec<String> = got.iter().map(|(_, p)| p.name.to_string()).collect();
        assert_eq!(names, (0..i).map(|n| format!("p{n}")).collect::<Vec<_>>());
    }
    let mut conn = redis.conn().await;
    let raw: String = cmd(
        &mut conn,
        &["HGET", &room_key("rtcio", "/", "order"), sid(1).as_str()],
    )
    .await;
    let record: MemberRecord = serde_json::from_str(&raw).expect("JSON");
    assert_eq!(
        (record.node.as_str(), record.name.as_str(), record.seq),
        ("node-b", "p1", Some(2))
    );
    // Leaving keeps the order of the others.
    a.leave("/", &[Room::from("order")], sid(2), false);
    flushed(&a).await;
    let got = b
        .join("/", "order", sid(9), &peer("late"), 0, None)
        .get()
        .await
        .expect("joined");
    let sids: Vec<Sid> = got.iter().map(|(s, _)| *s).collect();
    assert_eq!(sids, vec![sid(0), sid(1), sid(3), sid(4)]);
}

#[tokio::test]
async fn passwords_are_salted_hashes_checked_across_nodes_and_die_with_the_room() {
    let redis = Redis::start();
    let (a, b) = (redis.node("a").await, redis.node("b").await);
    let mut conn = redis.conn().await;
    let pw_key = password_key("rtcio", "/", "secret");
    a.join("/", "secret", sid(1), &peer("a"), 0, Some("s3cret"))
        .get()
        .await
        .expect("first joiner sets it");
    let stored: String = cmd(&mut conn, &["GET", &pw_key]).await;
    assert!(!stored.contains("s3cret"), "never the plain text");
    let (salt, hash) = stored.split_once(':').expect("salt:hash");
    assert_eq!((salt.len(), hash.len()), (20, 64));

    let join = |s: &Arc<RedisRoomStore>, n: usize, p: Option<&'static str>| {
        let s = s.clone();
        async move {
            s.join("/", "secret", sid(n), &peer("x"), 0, p)
                .get()
                .await
                .map(|_| ())
        }
    };
    assert_eq!(join(&b, 2, None).await, Err(ErrorCode::PasswordRequired));
    assert_eq!(
        join(&b, 2, Some("nope")).await,
        Err(ErrorCode::WrongPassword)
    );
    assert_eq!(b.check("/", "secret", None).get().await, Ok(true));
    assert_eq!(
        b.check("/", "secret", Some("nope")).get().await,
        Err(ErrorCode::WrongPassword)
    );
    assert_eq!(b.check("/", "secret", Some("s3cret")).get().await, Ok(true));
    assert_eq!(join(&b, 2, Some("s3cret")).await, Ok(()));

    // A lost socket that may recover keeps the password of the room it left empty...
    a.leave("/", &[Room::from("secret")], sid(1), false);
    flushed(&a).await;
    b.leave("/", &[Room::from("secret")], sid(2), true);
    assert_eq!(
        b.check("/", "secret", None).get().await,
        Ok(false),
        "an empty room has none"
    );
    let kept: Option<String> = cmd(&mut conn, &["GET", &pw_key]).await;
    assert!(kept.is_some());
    // ...until its grace ends.
    b.forget_password_if_empty("/", &[Room::from("secret")]);
    assert_eq!(b.check("/", "secret", None).get().await, Ok(false));
    let gone: Option<String> = cmd(&mut conn, &["GET", &pw_key]).await;
    assert_eq!(gone, None);

    // The last member leaving drops it; the next first joiner sets none.
    a.join("/", "secret", sid(3), &peer("a"), 0, Some("pw"))
        .get()
        .await
        .expect("joined");
    a.leave("/", &[Room::from("secret")], sid(3), false);
    flushed(&a).await;
    assert_eq!(join(&b, 4, None).await, Ok(()));
    assert_eq!(a.check("/", "secret", None).get().await, Ok(false));
}

#[tokio::test]
async fn names_and_media_state_reach_the_next_joiner_on_another_node() {
    let redis = Redis::start();
    let (a, b) = (redis.node("a").await, redis.node("b").await);
    a.join("/", "media", sid(1), &peer("alice"), 0, None)
        .get()
        .await
        .expect("joined");
    let updated = PeerInfo {
        name: Arc::from("Alice"),
        user_id: Some(Arc::from("user-1")),
        media: Some((true, false)),
        node: None,
    };
    a.update_peer(
        "/",
        &[Room::from("media"), Room::from("not-a-member")],
        sid(1),
        &updated,
    );
    // Writes of one node reach Redis in order: its next command sees the update.
    let seen = a.members("/", "media").get().await.expect("members");
    // The store adds where the member lives: node "a".
    let updated = PeerInfo {
        node: Some(Arc::from("a")),
        ..updated
    };
    assert_eq!(seen, vec![(sid(1), updated.clone())]);
    let got = b
        .join("/", "media", sid(2), &peer("bob"), 0, None)
        .get()
        .await
        .expect("joined");
    assert_eq!(got, vec![(sid(1), updated)]);
    let mut conn = redis.conn().await;
    let exists: i64 = cmd(
        &mut conn,
        &["EXISTS", &room_key("rtcio", "/", "not-a-member")],
    )
    .await;
    assert_eq!(exists, 0, "an update does not add a member");
    // A restored (recovered) member keeps its place in the order.
    a.leave("/", &[Room::from("media")], sid(1), true);
    a.restore("/", &[Room::from("media")], sid(1), &peer("alice"));
    flushed(&a).await;
    let got = b
        .join("/", "media", sid(3), &peer("carol"), 0, None)
        .get()
        .await
        .expect("joined");
    let sids: Vec<Sid> = got.iter().map(|(s, _)| *s).collect();
    assert_eq!(sids, vec![sid(2), sid(1)]);
}

#[tokio::test]
async fn rooms_and_passwords_expire_as_garbage_collection() {
    let redis = Redis::start();
    let a = redis.node("a").await;
    a.join("/", "gc", sid(1), &peer("a"), 0, Some("pw"))
        .get()
        .await
        .expect("joined");
    let mut conn = redis.conn().await;
    let day = 24 * 3600 * 1000;
    for key in [
        room_key("rtcio", "/", "gc"),
        password_key("rtcio", "/", "gc"),
    ] {
        let ttl: i64 = cmd(&mut conn, &["PTTL", &key]).await;
        assert!(ttl > day - 60_000 && ttl <= day, "{key}: {ttl}");
    }
}

#[tokio::test]
async fn an_unreachable_redis_refuses_joins_unavailable_without_hanging() {
    let redis = Redis::start();
    let a = redis.node("a").await;
    a.join("/", "r", sid(1), &peer("a"), 0, None)
        .get()
        .await
        .expect("joined");
    drop(redis);
    let started = Instant::now();
    let got = a.join("/", "r", sid(2), &peer("b"), 0, None).get().await;
    assert_eq!(got.map(|_| ()), Err(ErrorCode::Unavailable));
    assert_eq!(
        a.check("/", "r", None).get().await,
        Err(ErrorCode::Unavailable)
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    // A store opened on a URL nobody listens on answers the same.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port")
        .port();
    let lazy = RedisRoomStore::open(&format!("redis://127.0.0.1:{port}"), "rtcio", "z")
        .expect("a valid URL");
    let got = lazy.join("/", "r", sid(3), &peer("c"), 0, None).get().await;
    assert_eq!(got.map(|_| ()), Err(ErrorCode::Unavailable));
    assert!(RedisRoomStore::open("not a url", "rtcio", "z").is_err());
}

#[tokio::test]
async fn writes_made_while_redis_is_away_reach_it_when_it_is_back() {
    let mut redis = Redis::start();
    let a = redis.node("a").await;
    for n in 1..=2 {
        a.join("/", "outage", sid(n), &peer("x"), 0, None)
            .get()
            .await
            .expect("joined");
    }
    let mut conn = redis.conn().await;
    let _: () = cmd(&mut conn, &["SAVE"]).await;
    redis.stop();
    // Fire-and-forget while Redis is gone: a leave and a media-state.
    a.leave("/", &[Room::from("outage")], sid(1), false);
    let mut seen = peer("x");
    seen.media = Some((false, true));
    a.update_peer("/", &[Room::from("outage")], sid(2), &seen);
    seen.node = Some(Arc::from("a"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Back with the saved state (sid 1 still in it), then the writes land.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match a.members("/", "outage").get().await {
            Ok(members) if members == vec![(sid(2), seen.clone())] => break,
            other => assert!(
                Instant::now() < deadline,
                "the writes never reached Redis: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn reaping_a_dead_node_spares_members_recovered_elsewhere() {
    let redis = Redis::start();
    let (dead, alive) = (redis.node("dead").await, redis.node("alive").await);
    for n in 1..=2 {
        dead.join("/", "reap", sid(n), &peer("x"), 0, Some("pw"))
            .get()
            .await
            .expect("joined");
    }
    // Socket 2 came back on the surviving node before the cleanup.
    alive.restore("/", &[Room::from("reap")], sid(2), &peer("x"));
    flushed(&alive).await;
    let mut conn = redis.conn().await;
    for n in 1..=2 {
        let reap = reap_member("rtcio", "/", "reap", sid(n).as_str(), "dead");
        let _: i64 = reap.query_async(&mut conn).await.expect("reaped");
    }
    // A late leave from the dead node's side spares it too.
    dead.leave("/", &[Room::from("reap")], sid(2), false);
    flushed(&dead).await;
    let members = alive.members("/", "reap").get().await.expect("members");
    assert_eq!(
        members.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        vec![sid(2)]
    );
    assert_eq!(
        alive.check("/", "reap", None).get().await,
        Ok(true),
        "the password stays with its room"
    );
    // The last member reaped: room and password gone.
    let reap = reap_member("rtcio", "/", "reap", sid(2).as_str(), "alive");
    let removed: i64 = reap.query_async(&mut conn).await.expect("reaped");
    assert_eq!(removed, 1);
    let exists: i64 = cmd(&mut conn, &["EXISTS", &password_key("rtcio", "/", "reap")]).await;
    assert_eq!(exists, 0);
}

#[tokio::test]
async fn scripts_run_by_hash_and_a_flushed_script_cache_loses_no_write() {
    let redis = Redis::start();
    let a = redis.node("a").await;
    for n in 1..=3 {
        a.join("/", "sha", sid(n), &peer(&format!("p{n}")), 0, None)
            .get()
            .await
            .expect("joined");
    }
    let mut conn = redis.conn().await;
    let stats: String = cmd(&mut conn, &["INFO", "commandstats"]).await;
    assert!(
        stats.contains("cmdstat_evalsha:calls=3,"),
        "joins by EVALSHA: {stats}"
    );
    assert!(
        !stats.contains("cmdstat_eval:"),
        "no script text per join: {stats}"
    );
    // The cache emptied under the live connection: the next writes still
    // land, in order (a leave after a join of the same socket).
    let _: () = cmd(&mut conn, &["SCRIPT", "FLUSH"]).await;
    let fourth = a
        .join("/", "sha", sid(4), &peer("p4"), 0, None)
        .get()
        .await
        .expect("joined after SCRIPT FLUSH");
    assert_eq!(fourth.len(), 3);
    // Writes nobody waits for, after another flush.
    let _: () = cmd(&mut conn, &["SCRIPT", "FLUSH"]).await;
    let mut muted = peer("p2");
    muted.media = Some((false, true));
    a.update_peer("/", &[Room::from("sha")], sid(2), &muted);
    a.leave("/", &[Room::from("sha")], sid(1), false);
    flushed(&a).await;
    let members = a.members("/", "sha").get().await.expect("members");
    let ids: Vec<Sid> = members.iter().map(|(s, _)| *s).collect();
    assert_eq!(ids, vec![sid(2), sid(3), sid(4)]);
    assert_eq!(members[0].1.media, Some((false, true)));
}
