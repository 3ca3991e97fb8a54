//! The video-room web app served at `/`: one command and two browser tabs
//! are a working call, with nothing else installed.
//!
//! The page and its scripts live in `crates/server/demo/` as plain files
//! (modern JS modules, no build step) and are compiled into the binary with
//! `include_str!`, so a release build serves them offline. Its assets sit
//! under `/demo/`, a prefix no other route of the server uses.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// Settings of the demo app.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Do not serve the video-room demo app at `/` (then `/` answers 404).
    /// `DEMO=false` does the same from the environment.
    #[arg(long = "no-demo", env = "DEMO", action = clap::ArgAction::SetFalse)]
    pub demo: bool,
}

/// The page, with `{{NAMESPACE}}` where the signaling namespace goes.
const INDEX: &str = include_str!("../demo/index.html");

/// The static assets, by URL path: (path, content type, body).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "/demo/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../demo/app.js"),
    ),
    (
        "/demo/peer.js",
        "text/javascript; charset=utf-8",
        include_str!("../demo/peer.js"),
    ),
    (
        "/demo/sio.js",
        "text/javascript; charset=utf-8",
        include_str!("../demo/sio.js"),
    ),
    (
        "/demo/style.css",
        "text/css; charset=utf-8",
        include_str!("../demo/style.css"),
    ),
];

/// The page may only load its own scripts and styles and talk to its own
/// origin (HTTP and WebSocket): the room id and name come from the URL, so
/// nothing injected there can run.
const CSP: &str = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; \
                   media-src 'self' blob: mediastream:; object-src 'none'; base-uri 'none'; \
                   frame-ancestors 'none'; form-action 'self'";

/// Adds the demo routes to `router` when the demo is on.
pub fn mount(router: Router, args: &DemoArgs, namespace: &str) -> Router {
    if args.demo {
        router.merge(routes(namespace))
    } else {
        router
    }
}

/// `/` and `/demo/*`. The namespace the relay runs on is written into the
/// page, so `--namespace /calls` needs no change to the scripts.
fn routes(namespace: &str) -> Router {
    let index = Bytes::from(INDEX.replace("{{NAMESPACE}}", &escape_attribute(namespace)));
    let mut router = Router::new().route(
        "/",
        get(move || async move {
            let mut response = asset("text/html; charset=utf-8", index);
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            );
            headers.insert(
                "permissions-policy",
                HeaderValue::from_static(
                    "camera=(self), microphone=(self), display-capture=(self)",
                ),
            );
            response
        }),
    );
    for &(path, content_type, body) in ASSETS {
        router = router.route(path, get(move || async move { asset(content_type, body) }));
    }
    router
}

/// A static response. `no-cache` makes a browser revalidate, so an edited
/// page shows up after a rebuild without a hard reload; `no-referrer` keeps
/// the room id in the page URL from leaking to other sites.
fn asset(content_type: &'static str, body: impl Into<Body>) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body.into(),
    )
        .into_response()
}

/// Escapes text for a double-quoted HTML attribute.
fn escape_attribute(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        demo: DemoArgs,
    }

    fn parse(args: &[&str]) -> bool {
        Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied()))
            .unwrap()
            .demo
            .demo
    }

    #[test]
    fn on_by_default_and_off_with_the_flag() {
        // DEMO is not set in the test environment (the flag test covers the switch).
        if std::env::var_os("DEMO").is_none() {
            assert!(parse(&[]));
        }
        assert!(!parse(&["--no-demo"]));
    }

    #[test]
    fn the_namespace_is_escaped_into_the_page() {
        assert_eq!(
            escape_attribute(r#"/a"<b>&'"#),
            "/a&quot;&lt;b&gt;&amp;&#39;"
        );
        assert!(INDEX.contains("{{NAMESPACE}}"));
    }
}
