//! The `/admin` namespace and the admin page at `/admin/`, both on only when
//! someone can use them: an admin token is configured, or an authenticator
//! that may grant `admin: true` identities (JWT) is passed in.
//!
//! The page is a few embedded files written for this server (no third-party
//! code): it connects to `/admin` over WebSocket with the token typed in and
//! polls `stats` and `list-rooms`, with kick and close buttons.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use rtcio::admin::NAMESPACE;
use rtcio::{Admin, Authenticator, Builder, Rooms};
use rtcio_engine::Server;

/// Shortest admin token accepted: a shorter one could be guessed.
pub const MIN_TOKEN_LEN: usize = 16;

/// Settings of the admin namespace.
#[derive(Debug, Clone, clap::Args)]
pub struct AdminSettings {
    /// Secret that opens the `/admin` namespace (as socket.io `auth.token`)
    /// and so the admin page at `/admin/`; at least 16 characters (e.g.
    /// `openssl rand -hex 16`). Unset: admin is off, unless JWT tokens with
    /// `admin: true` are accepted.
    #[arg(
        long,
        env = "ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub admin_token: Option<AdminToken>,
}

/// The admin token: a secret, so its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(String);

impl AdminToken {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for AdminToken {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(AdminToken(s.to_owned()))
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// Adds the `/admin` namespace to `builder` when admin is on, managing the
/// signaling namespace `signaling` and its `rooms`. `authenticator` is the
/// calls' authenticator, if any: its `admin: true` identities are admins.
pub fn install(
    builder: &mut Builder,
    settings: &AdminSettings,
    signaling: &str,
    rooms: &Arc<Rooms>,
    authenticator: Option<Arc<dyn Authenticator>>,
) -> Result<Option<Arc<Admin>>, String> {
    let token = settings
        .admin_token
        .as_ref()
        .map(AdminToken::expose)
        .filter(|t| !t.is_empty());
    if let Some(token) = token {
        if token.chars().count() < MIN_TOKEN_LEN {
            return Err(format!(
                "--admin-token must be at least {MIN_TOKEN_LEN} characters (try `openssl rand -hex 16`)"
            ));
        }
    }
    let mut admin = Admin::new().with_rooms(rooms.clone());
    if let Some(token) = token {
        admin = admin.with_token(token);
    }
    if let Some(authenticator) = authenticator {
        admin = admin.with_authenticator(authenticator);
    }
    if !admin.is_enabled() {
        tracing::info!("admin namespace off (no ADMIN_TOKEN)");
        return Ok(None);
    }
    if signaling == NAMESPACE {
        return Err(format!(
            "--namespace {NAMESPACE} is taken by the admin namespace; choose another one"
        ));
    }
    let admin = Arc::new(admin);
    admin.attach(builder.namespace(NAMESPACE));
    admin.attach_cluster_requests(builder.signaling(signaling));
    tracing::info!(
        namespace = NAMESPACE,
        "admin namespace on; admin page at /admin/"
    );
    Ok(Some(admin))
}

/// Points the admin at the built server and adds the admin page to `router`
/// (nothing is added when admin is off: `/admin/` is then a 404).
pub fn mount(
    router: Router,
    admin: Option<&Arc<Admin>>,
    io: &Server,
    signaling: &str,
) -> Result<Router, String> {
    let Some(admin) = admin else {
        return Ok(router);
    };
    admin.manage(io, signaling)?;
    Ok(router
        .route("/admin", get(|| async { Redirect::permanent("/admin/") }))
        .route("/admin/", get(|| async { page(HTML, INDEX) }))
        .route("/admin/admin.js", get(|| async { page(JS, SCRIPT) }))
        .route("/admin/sio.js", get(|| async { page(JS, CLIENT) }))
        .route("/admin/admin.css", get(|| async { page(CSS, STYLE) })))
}

const INDEX: &str = include_str!("../assets/admin/index.html");
const SCRIPT: &str = include_str!("../assets/admin/admin.js");
const CLIENT: &str = include_str!("../assets/admin/sio.js");
const STYLE: &str = include_str!("../assets/admin/admin.css");

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Only this server's own files may run or be fetched, and no other site
/// may frame the page (its buttons kick people).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn page(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        admin: AdminSettings,
    }

    fn install_with(args: &[&str]) -> Result<Option<Arc<Admin>>, String> {
        let cli = Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied())).unwrap();
        let mut builder = Builder::new(Default::default(), Default::default());
        install(&mut builder, &cli.admin, "/", &Rooms::new(), None)
    }

    #[test]
    fn off_by_default_and_on_with_a_token() {
        assert!(install_with(&[]).unwrap().is_none());
        assert!(install_with(&["--admin-token", ""]).unwrap().is_none());
        assert!(install_with(&["--admin-token", "0123456789abcdef"])
            .unwrap()
            .is_some());
    }

    #[test]
    fn short_tokens_are_refused_without_echoing_them() {
        let err = install_with(&["--admin-token", "hunter2"]).unwrap_err();
        assert!(err.contains("16"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let cli = Cli::try_parse_from(["x", "--admin-token", "0123456789abcdef"]).unwrap();
        let debug = format!("{:?}", cli.admin);
        assert!(!debug.contains("0123456789abcdef"), "{debug}");
    }

    #[test]
    fn the_admin_namespace_cannot_also_be_the_signaling_one() {
        let cli = Cli::try_parse_from(["x", "--admin-token", "0123456789abcdef"]).unwrap();
        let mut builder = Builder::new(Default::default(), Default::default());
        let err = install(&mut builder, &cli.admin, "/admin", &Rooms::new(), None).unwrap_err();
        assert!(err.contains("/admin"), "{err}");
    }
}
