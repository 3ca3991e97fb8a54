//! Room access policy: "may this user join this room?", asked before a join
//! takes the rooms lock. Built-ins: [`JwtRoomsPolicy`] (the token's `rooms`
//! claim), [`FilePolicy`] (an allow-list file, reloaded on SIGHUP) and
//! [`HttpPolicy`] (your auth service, with a short decision cache). "Open"
//! is the absence of a policy.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rtcio_engine::Socket;
use serde::Deserialize;

use crate::errors::ErrorCode;
use crate::http_client::{check_url, HttpClient};
use crate::identity::Identity;

/// A policy's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Refused: `forbidden`.
    Forbid,
    /// The policy could not decide (its service is down): `unavailable`.
    Unavailable,
}

impl Decision {
    /// The error code a refusal is sent with (`None` when allowed).
    pub fn refusal(self) -> Option<ErrorCode> {
        match self {
            Decision::Allow => None,
            Decision::Forbid => Some(ErrorCode::Forbidden),
            Decision::Unavailable => Some(ErrorCode::Unavailable),
        }
    }
}

/// What a policy is asked about.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    /// The socket's identity, when it authenticated.
    pub identity: Option<Identity>,
    pub room: String,
    /// The display name the join gave.
    pub name: String,
}

impl JoinRequest {
    pub fn of(socket: &Socket, room: &str, name: &str) -> Self {
        JoinRequest {
            identity: Identity::of(socket),
            room: room.to_owned(),
            name: name.to_owned(),
        }
    }

    fn user_id(&self) -> Option<&str> {
        self.identity.as_ref().map(|i| &*i.user_id)
    }
}

pub type PolicyFuture = Pin<Box<dyn Future<Output = Decision> + Send>>;

/// Decides whether a join may go ahead.
pub trait RoomPolicy: Send + Sync + 'static {
    fn may_join(&self, request: JoinRequest) -> PolicyFuture;
}

/// Any async function of a [`JoinRequest`] is a policy.
impl<F, Fut> RoomPolicy for F
where
    F: Fn(JoinRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Decision> + Send + 'static,
{
    fn may_join(&self, request: JoinRequest) -> PolicyFuture {
        Box::pin(self(request))
    }
}

/// Whether `text` matches the glob `pattern` (`*` any run, `?` one character).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// `jwt`: the token's `rooms` claim lists the room ids or glob patterns the
/// user may join; no claim (or no token) joins nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct JwtRoomsPolicy;

impl RoomPolicy for JwtRoomsPolicy {
    fn may_join(&self, request: JoinRequest) -> PolicyFuture {
        let allowed = request
            .identity
            .as_ref()
            .and_then(|i| i.rooms.as_ref())
            .is_some_and(|rooms| rooms.iter().any(|p| glob_match(p, &request.room)));
        Box::pin(std::future::ready(if allowed {
            Decision::Allow
        } else {
            Decision::Forbid
        }))
    }
}

/// `file`: room patterns, each with the user ids allowed in (`*` = anyone,
/// authenticated or not). A room no pattern matches is closed.
///
/// ```toml
/// [rooms]
/// "standup" = ["alice", "bob"]
/// "team-*" = ["alice"]
/// "lobby" = ["*"]
/// ```
/// or the same as JSON: `{ "rooms": { "standup": ["alice", "bob"] } }`.
pub struct FilePolicy {
    path: PathBuf,
    rules: RwLock<Arc<Rules>>,
}

/// Each room pattern with the user ids it admits.
type Rules = Vec<(String, Vec<String>)>;

#[derive(Deserialize)]
struct AllowList {
    rooms: HashMap<String, Vec<String>>,
}

impl FilePolicy {
    /// Loads `path` (TOML, or JSON when it ends in `.json`).
    pub fn load(path: impl Into<PathBuf>) -> Result<Arc<Self>, String> {
        let path = path.into();
        let rules = Self::read(&path)?;
        Ok(Arc::new(FilePolicy {
            path,
            rules: RwLock::new(Arc::new(rules)),
        }))
    }

    fn read(path: &PathBuf) -> Result<Rules, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let list: AllowList = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
        } else {
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
        };
        let mut rules: Vec<_> = list.rooms.into_iter().collect();
        rules.sort();
        Ok(rules)
    }

    /// Re-reads the file; on error the previous list stays in force.
    pub fn reload(&self) -> Result<usize, String> {
        let rules = Self::read(&self.path)?;
        let n = rules.len();
        *self.rules.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(rules);
        Ok(n)
    }

    /// Reloads the file on every SIGHUP (Unix), for as long as the runtime runs.
    pub fn reload_on_sighup(self: &Arc<Self>) {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let policy = Arc::downgrade(self);
            match signal(SignalKind::hangup()) {
                Ok(mut hup) => {
                    tokio::spawn(async move {
                        while hup.recv().await.is_some() {
                            let Some(policy) = policy.upgrade() else {
                                break;
                            };
                            match policy.reload() {
                                Ok(n) => tracing::info!(
                                    path = %policy.path.display(),
                                    patterns = n,
                                    "reloaded the room allow-list"
                                ),
                                Err(e) => tracing::error!(
                                    error = %e,
                                    "could not reload the room allow-list; the previous one stays"
                                ),
                            }
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "cannot listen for SIGHUP"),
            }
        }
    }

    fn decide(&self, request: &JoinRequest) -> Decision {
        let rules = self.rules.read().unwrap_or_else(|e| e.into_inner()).clone();
        let user = request.user_id();
        let allowed = rules
            .iter()
            .filter(|(pattern, _)| glob_match(pattern, &request.room))
            .any(|(_, users)| users.iter().any(|u| u == "*" || Some(u.as_str()) == user));
        if allowed {
            Decision::Allow
        } else {
            Decision::Forbid
        }
    }
}

impl RoomPolicy for Arc<FilePolicy> {
    fn may_join(&self, request: JoinRequest) -> PolicyFuture {
        Box::pin(std::future::ready(self.decide(&request)))
    }
}

/// `http`: POSTs `{ userId, roomId, name }` to your service; 2xx allows, 403
/// forbids, anything else (a timeout, a 500, a refused connection) is
/// `unavailable`. Allow and forbid answers are cached per (user, room) for
/// `cache_for`; unauthenticated joins (`userId: null`) are never cached.
pub struct HttpPolicy {
    url: String,
    client: HttpClient,
    cache_for: Duration,
    cache: Mutex<HashMap<CacheKey, (Decision, Instant)>>,
}

/// (user id, room).
type CacheKey = (Arc<str>, String);

/// The cache is swept of expired answers when it grows past this.
const CACHE_SWEEP_AT: usize = 10_000;

impl HttpPolicy {
    pub fn new(url: String, timeout: Duration, cache_for: Duration) -> Result<Arc<Self>, String> {
        check_url(&url, "the room policy URL")?;
        let client = HttpClient::new(timeout)?;
        Ok(Arc::new(HttpPolicy {
            url,
            client,
            cache_for,
            cache: Mutex::new(HashMap::new()),
        }))
    }

    fn cached(&self, key: &CacheKey) -> Option<Decision> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(key)
            .filter(|(_, at)| at.elapsed() < self.cache_for)
            .map(|(d, _)| *d)
    }

    fn remember(&self, key: CacheKey, decision: Decision) {
        if self.cache_for.is_zero() || decision == Decision::Unavailable {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_SWEEP_AT {
            let ttl = self.cache_for;
            cache.retain(|_, (_, at)| at.elapsed() < ttl);
        }
        cache.insert(key, (decision, Instant::now()));
    }

    async fn ask(&self, request: &JoinRequest) -> Decision {
        let body = serde_json::json!({
            "userId": request.user_id(),
            "roomId": request.room,
            "name": request.name,
        });
        match self.client.post_json(&self.url, &body).await {
            Ok((status, _)) if status.is_success() => Decision::Allow,
            Ok((status, _)) if status == http::StatusCode::FORBIDDEN => Decision::Forbid,
            Ok((status, _)) => {
                tracing::warn!(%status, "the room policy service gave an unexpected answer");
                Decision::Unavailable
            }
            Err(e) => {
                tracing::warn!(error = %e, "the room policy service did not answer");
                Decision::Unavailable
            }
        }
    }
}

impl RoomPolicy for Arc<HttpPolicy> {
    fn may_join(&self, request: JoinRequest) -> PolicyFuture {
        let policy = self.clone();
        Box::pin(async move {
            let key = request
                .identity
                .as_ref()
                .map(|i| (i.user_id.clone(), request.room.clone()));
            if let Some(decision) = key.as_ref().and_then(|k| policy.cached(k)) {
                return decision;
            }
            let decision = policy.ask(&request).await;
            if let Some(key) = key {
                policy.remember(key, decision);
            }
            decision
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("team-*", "team-red"));
        assert!(glob_match("team-*", "team-"));
        assert!(!glob_match("team-*", "teams"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("*", ""));
        assert!(glob_match("*-*-x", "a-b-c-x"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
    }

    fn request(user: Option<&str>, rooms: Option<&[&str]>, room: &str) -> JoinRequest {
        JoinRequest {
            identity: user.map(|u| Identity {
                user_id: u.into(),
                rooms: rooms.map(|r| r.iter().map(|s| s.to_string()).collect::<Vec<_>>().into()),
                ..Identity::default()
            }),
            room: room.into(),
            name: String::new(),
        }
    }

    #[tokio::test]
    async fn the_rooms_claim_decides() {
        let p = JwtRoomsPolicy;
        assert_eq!(
            p.may_join(request(Some("u"), Some(&["team-*"]), "team-a"))
                .await,
            Decision::Allow
        );
        assert_eq!(
            p.may_join(request(Some("u"), Some(&["team-*"]), "other"))
                .await,
            Decision::Forbid
        );
        assert_eq!(
            p.may_join(request(Some("u"), None, "team-a")).await,
            Decision::Forbid
        );
        assert_eq!(p.may_join(request(None, None, "x")).await, Decision::Forbid);
    }

    #[tokio::test]
    async fn the_file_decides_and_reloads() {
        let dir = std::env::temp_dir().join(format!("rtcio-policy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rooms.toml");
        std::fs::write(
            &path,
            "[rooms]\n\"team-*\" = [\"alice\"]\nlobby = [\"*\"]\n",
        )
        .unwrap();
        let p = FilePolicy::load(&path).unwrap();
        assert_eq!(
            p.may_join(request(Some("alice"), None, "team-1")).await,
            Decision::Allow
        );
        assert_eq!(
            p.may_join(request(Some("bob"), None, "team-1")).await,
            Decision::Forbid
        );
        assert_eq!(
            p.may_join(request(None, None, "lobby")).await,
            Decision::Allow
        );
        std::fs::write(&path, "[rooms]\n\"team-*\" = [\"bob\"]\n").unwrap();
        p.reload().unwrap();
        assert_eq!(
            p.may_join(request(Some("bob"), None, "team-1")).await,
            Decision::Allow
        );
        std::fs::write(&path, "not toml [").unwrap();
        assert!(p.reload().is_err());
        assert_eq!(
            p.may_join(request(Some("bob"), None, "team-1")).await,
            Decision::Allow,
            "a bad file keeps the previous list"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
