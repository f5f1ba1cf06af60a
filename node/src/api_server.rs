//! The HTTP API's server: the limits that hold before any handler runs (issue 20).
//!
//! - **Connections**: at most `api_connections_max` open. A new connection above it closes
//!   the oldest *idle* connection (no request in flight) of the client address holding the
//!   most connections, so a flood of idle connections from one place cannot lock others out
//!   and never exhausts the process's file descriptors; when every connection is busy the new
//!   one is closed at once (`plaza_api_refused_connections_total`).
//! - **Header read timeout**: a connection that has not sent a whole request header
//!   `api_header_read_timeout_ms` after it opened, or after its last response, is closed
//!   (`plaza_api_header_timeouts_total`); a half-sent header cannot hold a connection.
//! - **Request timeout**: reading the body and answering take at most
//!   `api_request_timeout_ms`; then 408 and the connection closes.
//! - **Per-client concurrency**: one client address has at most
//!   `api_requests_per_client_max` requests in flight; more get 429.
//! - **Sizes**: a request line's URI above [`URI_BYTES_MAX`] gets 414, a header block above
//!   [`HEADER_BYTES_MAX`] or [`HEADERS_MAX`] fields gets 431, both in the API's JSON error
//!   form. (The HTTP parser's own hard limits, four times these, close the connection with
//!   an empty 431.)
//!
//! Every error response leaving the router is turned into `{"code", "message"}` by
//! [`json_error_form`], whatever produced it (axum's extractors, the method router).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tower_service::Service;
use tracing::debug;

use crate::config::NodeConfig;
use crate::Shared;

/// Bytes of a request URI (path and query), at most.
pub const URI_BYTES_MAX: usize = 8 * 1024;
/// Bytes of a request's header fields (names, values and their separators), at most.
pub const HEADER_BYTES_MAX: usize = 16 * 1024;
/// Header fields in one request, at most.
pub const HEADERS_MAX: usize = 64;
/// A failed accept (say, out of file descriptors) is retried after this long.
const ACCEPT_RETRY_MS: u64 = 20;
/// Error bodies rewritten into the JSON form are read up to this many bytes.
const ERROR_BODY_BYTES_MAX: usize = 16 * 1024;

/// The server's limits, from `config.toml`.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub connections_max: usize,
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
    pub requests_per_client_max: usize,
}

impl Limits {
    pub fn from_config(c: &NodeConfig) -> Limits {
        Limits {
            connections_max: c.api_connections_max,
            header_read_timeout: Duration::from_millis(c.api_header_read_timeout_ms),
            request_timeout: Duration::from_millis(c.api_request_timeout_ms),
            requests_per_client_max: c.api_requests_per_client_max,
        }
    }
}

struct Connection {
    client: IpAddr,
    in_flight: Arc<AtomicUsize>,
    close: Arc<Notify>,
}

/// Open connections by accept order, and requests in flight per client.
#[derive(Default)]
struct Registry {
    connections: Mutex<BTreeMap<u64, Connection>>,
    in_flight: Mutex<BTreeMap<IpAddr, usize>>,
}

impl Registry {
    fn connections(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Connection>> {
        self.connections.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes room for one more connection: closes the oldest idle connection of the client
    /// with the most connections. False when every connection is busy.
    fn make_room(&self) -> bool {
        let mut connections = self.connections();
        let mut per_client: BTreeMap<IpAddr, usize> = BTreeMap::new();
        for c in connections.values() {
            *per_client.entry(c.client).or_default() += 1;
        }
        let victim = connections
            .iter()
            .filter(|(_, c)| c.in_flight.load(Ordering::Acquire) == 0)
            .max_by_key(|(id, c)| (per_client.get(&c.client).copied().unwrap_or(0), std::cmp::Reverse(**id)))
            .map(|(id, _)| *id);
        match victim.and_then(|id| connections.remove(&id)) {
            Some(c) => {
                c.close.notify_one();
                true
            }
            None => false,
        }
    }

    /// Takes one of `client`'s request slots, or None when it has `max` in flight.
    fn begin_request(self: &Arc<Self>, client: IpAddr, max: usize) -> Option<RequestSlot> {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = in_flight.entry(client).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(RequestSlot { registry: self.clone(), client })
    }
}

/// A request in flight for its client; released on drop (also when the request is cancelled).
struct RequestSlot {
    registry: Arc<Registry>,
    client: IpAddr,
}

impl Drop for RequestSlot {
    fn drop(&mut self) {
        let mut in_flight = self.registry.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = in_flight.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                in_flight.remove(&self.client);
            }
        }
    }
}

/// Counts a connection's requests in flight; decremented on drop.
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn new(counter: &Arc<AtomicUsize>) -> Busy {
        counter.fetch_add(1, Ordering::AcqRel);
        Busy(counter.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An error response in the API's form.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = json!({"code": code, "message": message}).to_string();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The API's code for a status that a handler did not choose itself.
pub fn code_for_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad-request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        StatusCode::REQUEST_TIMEOUT => "request-timeout",
        StatusCode::LENGTH_REQUIRED => "length-required",
        StatusCode::PAYLOAD_TOO_LARGE => "body-too-large",
        StatusCode::URI_TOO_LONG => "uri-too-long",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        StatusCode::TOO_MANY_REQUESTS => "too-many-requests",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers-too-large",
        s if s.is_server_error() => "internal",
        _ => "error",
    }
}

/// Router middleware: an error response with an empty or plain-text body (axum's extractor
/// rejections are plain text, its 405 is empty) becomes `{"code", "message"}`, keeping its
/// status and headers such as `Allow`.
pub async fn json_error_form(response: axum::response::Response) -> axum::response::Response {
    let status = response.status();
    // Only bodies nobody shaped on purpose: empty or plain text (a page that chose HTML keeps it).
    let content_type = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let unshaped = content_type.is_empty() || content_type.starts_with("text/plain");
    if !(status.is_client_error() || status.is_server_error()) || !unshaped {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, ERROR_BODY_BYTES_MAX).await.map(|b| String::from_utf8_lossy(&b).trim().to_owned()).unwrap_or_default();
    let mut message = if text.is_empty() { status.canonical_reason().unwrap_or("error").to_lowercase() } else { text };
    if status == StatusCode::METHOD_NOT_ALLOWED
        && let Some(allow) = parts.headers.get(header::ALLOW).and_then(|v| v.to_str().ok())
    {
        message = format!("method not allowed here; allowed: {allow}");
    }
    let code = if status == StatusCode::BAD_REQUEST && message.starts_with("Failed to deserialize query string") { "bad-query" } else { code_for_status(status) };
    let body = json!({"code": code, "message": message}).to_string();
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    axum::response::Response::from_parts(parts, Body::from(body))
}

/// Checks a request's sizes before it reaches the router.
fn check_sizes(request: &Request<Incoming>) -> Result<(), Response<Body>> {
    let uri_bytes = request.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri_bytes > URI_BYTES_MAX {
        return Err(error_response(StatusCode::URI_TOO_LONG, "uri-too-long", &format!("the request URI has {uri_bytes} bytes; at most {URI_BYTES_MAX}")));
    }
    let headers = request.headers();
    let header_bytes: usize = headers.iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
    if headers.len() > HEADERS_MAX || header_bytes > HEADER_BYTES_MAX {
        return Err(error_response(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers-too-large",
            &format!("{} header fields, {header_bytes} bytes; at most {HEADERS_MAX} fields and {HEADER_BYTES_MAX} bytes", headers.len()),
        ));
    }
    Ok(())
}

struct Context {
    router: Router,
    limits: Limits,
    registry: Arc<Registry>,
    shared: Arc<Shared>,
}

async fn handle(context: Arc<Context>, client: IpAddr, busy: Arc<AtomicUsize>, request: Request<Incoming>) -> Response<Body> {
    let _busy = Busy::new(&busy);
    if let Err(response) = check_sizes(&request) {
        context.shared.metrics.api_oversized_requests.inc();
        return close_after(response);
    }
    let Some(_slot) = context.registry.begin_request(client, context.limits.requests_per_client_max) else {
        context.shared.metrics.api_throttled_requests.inc();
        let max = context.limits.requests_per_client_max;
        return error_response(StatusCode::TOO_MANY_REQUESTS, "too-many-requests", &format!("this client already has {max} requests in flight (api_requests_per_client_max)"));
    };
    let mut router = context.router.clone();
    match tokio::time::timeout(context.limits.request_timeout, router.call(request.map(Body::new))).await {
        Ok(Ok(response)) => response,
        Ok(Err(never)) => match never {},
        Err(_) => {
            context.shared.metrics.api_request_timeouts.inc();
            let ms = context.limits.request_timeout.as_millis();
            close_after(error_response(StatusCode::REQUEST_TIMEOUT, "request-timeout", &format!("the request did not complete within {ms} ms (api_request_timeout_ms)")))
        }
    }
}

fn close_after(mut response: Response<Body>) -> Response<Body> {
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Serves `router` on `listener` under `limits` until `shutdown` completes.
pub async fn serve(listener: TcpListener, router: Router, limits: Limits, shared: Arc<Shared>, shutdown: impl Future<Output = ()>) {
    let registry = Arc::new(Registry::default());
    let context = Arc::new(Context { router, limits, registry: registry.clone(), shared: shared.clone() });
    let metrics = &shared.metrics;
    let mut next_id: u64 = 0;
    let open = Arc::new(AtomicUsize::new(0));
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer): (tokio::net::TcpStream, SocketAddr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors, or the peer gave up before we accepted: the connection
                // waits in the backlog; room is made as connections close.
                metrics.api_accept_errors.inc();
                debug!("API accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(ACCEPT_RETRY_MS)).await;
                continue;
            }
        };
        let full = registry.connections().len() >= limits.connections_max;
        if full {
            if registry.make_room() {
                metrics.api_evicted_connections.inc();
            } else {
                metrics.api_refused_connections.inc();
                drop(stream);
                continue;
            }
        }
        let _ = stream.set_nodelay(true);
        let id = next_id;
        next_id += 1;
        let close = Arc::new(Notify::new());
        let in_flight = Arc::new(AtomicUsize::new(0));
        registry.connections().insert(id, Connection { client: peer.ip(), in_flight: in_flight.clone(), close: close.clone() });
        metrics.api_connections.set(open.fetch_add(1, Ordering::AcqRel) as i64 + 1);
        let context = context.clone();
        let registry = registry.clone();
        let shared = shared.clone();
        let open = open.clone();
        tokio::spawn(async move {
            let client = peer.ip();
            let service = hyper::service::service_fn({
                let context = context.clone();
                let in_flight = in_flight.clone();
                move |request: Request<Incoming>| {
                    let context = context.clone();
                    let in_flight = in_flight.clone();
                    async move { Ok::<_, Infallible>(handle(context, client, in_flight, request).await) }
                }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .max_headers(HEADERS_MAX * 4)
                .max_buf_size(HEADER_BYTES_MAX * 4 + URI_BYTES_MAX * 4);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = close.notified() => {
                    connection.as_mut().graceful_shutdown();
                    connection.as_mut().await
                }
            };
            if let Err(e) = result {
                if e.is_timeout() {
                    shared.metrics.api_header_timeouts.inc();
                }
                debug!("API connection from {peer}: {e}");
            }
            registry.connections().remove(&id);
            shared.metrics.api_connections.set(open.fetch_sub(1, Ordering::AcqRel) as i64 - 1);
        });
    }
    // Stop: close idle connections now; requests in flight finish on their own.
    for c in registry.connections().values() {
        c.close.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(registry: &Registry, id: u64, client: [u8; 4], busy: bool) -> Arc<Notify> {
        let close = Arc::new(Notify::new());
        let in_flight = Arc::new(AtomicUsize::new(usize::from(busy)));
        registry.connections().insert(id, Connection { client: IpAddr::from(client), in_flight, close: close.clone() });
        close
    }

    #[test]
    fn room_is_made_by_the_oldest_idle_connection_of_the_biggest_holder() {
        let registry = Registry::default();
        add(&registry, 0, [10, 0, 0, 1], false);
        add(&registry, 1, [10, 0, 0, 2], true);
        add(&registry, 2, [10, 0, 0, 2], false);
        add(&registry, 3, [10, 0, 0, 2], false);
        assert!(registry.make_room());
        // 10.0.0.2 holds three; its oldest idle one is 2 (1 is busy).
        assert_eq!(registry.connections().keys().copied().collect::<Vec<_>>(), vec![0, 1, 3]);
        assert!(registry.make_room());
        assert!(registry.make_room());
        assert_eq!(registry.connections().keys().copied().collect::<Vec<_>>(), vec![1]);
        // Only a busy connection is left: no room.
        assert!(!registry.make_room());
    }

    #[test]
    fn a_client_has_at_most_its_request_slots() {
        let registry = Arc::new(Registry::default());
        let client = IpAddr::from([127, 0, 0, 1]);
        let a = registry.begin_request(client, 2).expect("first");
        let _b = registry.begin_request(client, 2).expect("second");
        assert!(registry.begin_request(client, 2).is_none());
        assert!(registry.begin_request(IpAddr::from([127, 0, 0, 2]), 2).is_some(), "another client is not affected");
        drop(a);
        assert!(registry.begin_request(client, 2).is_some(), "a finished request frees its slot");
    }

    #[tokio::test]
    async fn plain_error_bodies_become_the_json_form() {
        let plain = axum::response::Response::builder()
            .status(StatusCode::PAYLOAD_TOO_LARGE)
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(Body::from("Failed to buffer the request body: length limit exceeded"))
            .expect("response");
        let out = json_error_form(plain).await;
        assert_eq!(out.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let body = axum::body::to_bytes(out.into_body(), 4096).await.expect("body");
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["code"], "body-too-large");
        assert!(v["message"].as_str().expect("message").contains("length limit"));

        let empty = axum::response::Response::builder().status(StatusCode::METHOD_NOT_ALLOWED).header(header::ALLOW, "GET,HEAD").body(Body::empty()).expect("response");
        let out = json_error_form(empty).await;
        assert_eq!(out.headers().get(header::ALLOW).and_then(|v| v.to_str().ok()), Some("GET,HEAD"));
        let body = axum::body::to_bytes(out.into_body(), 4096).await.expect("body");
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["code"], "method-not-allowed");

        let html = axum::response::Response::builder().status(StatusCode::NOT_FOUND).header(header::CONTENT_TYPE, "text/html").body(Body::from("<p>no</p>")).expect("response");
        let out = json_error_form(html).await;
        assert_eq!(out.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()), Some("text/html"), "a chosen HTML page is kept");
    }

    #[test]
    fn the_openapi_description_lists_the_error_answers_and_the_limit_range() {
        let doc: serde_json::Value = serde_json::from_str(crate::api::OPENAPI).expect("openapi.json parses");
        let paths = doc["paths"].as_object().expect("paths");
        assert!(doc["components"]["responses"]["BadRequest"].is_object() && doc["components"]["responses"]["Error"].is_object());
        for (path, item) in paths {
            for (method, operation) in item.as_object().expect("path item") {
                let responses = &operation["responses"];
                assert!(responses["default"].is_object(), "{method} {path}: no default (error) response");
                // Whatever takes a parameter or a body can be malformed: 400 is listed.
                let takes_input = path.contains('{') || operation["parameters"].is_array() || operation["requestBody"].is_object();
                assert!(!takes_input || responses["400"].is_object(), "{method} {path}: takes input but lists no 400");
            }
        }
        let limit = doc["paths"]["/v1/blocks"]["get"]["parameters"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == "limit"))
            .expect("limit parameter");
        assert_eq!((limit["schema"]["minimum"].as_u64(), limit["schema"]["maximum"].as_u64()), (Some(1), Some(100)));
        let clock = &doc["paths"]["/v1/testnet/clock"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]["advance_ms"];
        assert_eq!(clock["maximum"].as_i64(), Some(crate::limits::CLOCK_OFFSET_MS_MAX));
    }
}
