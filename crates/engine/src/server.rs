//! The server: namespaces and live sessions, and the builder that sets them up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tower::Layer;

use crate::config::Config;
use crate::namespace::{Namespace, NamespaceBuilder, NsInner};
use crate::service::{cors_layer, EngineService, Service};
use crate::session::{CloseReason, Session};
use crate::sid::Sid;

/// Sets up namespaces and their handlers, then builds the [`Server`].
pub struct ServerBuilder {
    config: Config,
    namespaces: Vec<NamespaceBuilder>,
}

impl ServerBuilder {
    /// The namespace `name`, created on first use. `/` always exists, as in socket.io.
    pub fn namespace(&mut self, name: &str) -> &mut NamespaceBuilder {
        let name = if name.starts_with('/') {
            name.to_owned()
        } else {
            format!("/{name}")
        };
        if let Some(i) = self.namespaces.iter().position(|ns| ns.name == name) {
            return &mut self.namespaces[i];
        }
        self.namespaces.push(NamespaceBuilder::new(&name));
        self.namespaces.last_mut().expect("just pushed")
    }

    /// The settings, to adjust before building.
    pub fn config_mut(&mut self) -> &mut Config {
        &mut self.config
    }

    pub fn build(mut self) -> Server {
        self.namespace("/");
        let namespaces = self
            .namespaces
            .into_iter()
            .map(|b| (b.name.clone(), b.build(self.config.recovery)))
            .collect();
        Server(Arc::new(ServerInner {
            config: self.config,
            namespaces,
            sessions: RwLock::new(HashMap::new()),
            closing: AtomicBool::new(false),
        }))
    }
}

pub(crate) struct ServerInner {
    pub(crate) config: Config,
    pub(crate) namespaces: HashMap<String, Arc<NsInner>>,
    sessions: RwLock<HashMap<Sid, Arc<Session>>>,
    closing: AtomicBool,
}

impl ServerInner {
    pub(crate) fn session(&self, sid: Sid) -> Option<Arc<Session>> {
        self.sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&sid)
            .cloned()
    }

    pub(crate) fn insert_session(&self, session: Arc<Session>) {
        self.sessions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(session.id, session);
    }

    pub(crate) fn remove_session(&self, sid: Sid) {
        self.sessions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&sid);
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }
}

/// A running Socket.IO server. Cheap to clone.
#[derive(Clone)]
pub struct Server(pub(crate) Arc<ServerInner>);

impl Server {
    /// A builder with socket.io's default settings.
    pub fn builder() -> ServerBuilder {
        Self::builder_with(Config::default())
    }

    /// A builder with these settings.
    pub fn builder_with(config: Config) -> ServerBuilder {
        ServerBuilder {
            config,
            namespaces: Vec::new(),
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// A namespace by name.
    pub fn of(&self, name: &str) -> Option<Namespace> {
        self.0.namespaces.get(name).cloned().map(Namespace)
    }

    /// Every namespace, in no particular order (for metrics sampled at scrape time).
    pub fn namespaces(&self) -> Vec<Namespace> {
        self.0.namespaces.values().cloned().map(Namespace).collect()
    }

    /// The Engine.IO endpoint, with CORS, to mount at `/socket.io/`
    /// (`axum::Router::route_service("/socket.io/", server.service())`).
    pub fn service(&self) -> Service {
        Service {
            inner: cors_layer(&self.0.config.cors).layer(EngineService {
                server: self.0.clone(),
            }),
        }
    }

    /// How many Engine.IO sessions are open.
    pub fn session_count(&self) -> usize {
        self.0
            .sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Refuses new connections, closes every session (clients see the
    /// connection close and reconnect elsewhere), and waits up to `grace` for
    /// them to finish.
    pub async fn close(&self, grace: Duration) {
        self.0.closing.store(true, Ordering::Release);
        let sessions: Vec<_> = self
            .0
            .sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for session in sessions {
            session.kill(CloseReason::ServerShutdown);
        }
        let deadline = tokio::time::Instant::now() + grace;
        while self.session_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
