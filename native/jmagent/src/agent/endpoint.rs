//! The metrics endpoint (`metrics=PORT`): `GET /metrics` on the agent's own
//! native thread, "jmagent-metrics", never a JVM thread.
//!
//! The socket is bound at load, so a port in use stops the JVM with the
//! cause, as a bad option does. Requests are served one at a time, each
//! connection within [`IO_TIMEOUT`] per read or write and [`DEADLINE`] in
//! all, its request head at most [`MAX_HEAD`] bytes (parsed by `httparse`):
//! a slow or malicious client holds the endpoint for a few seconds at most
//! and never more than a few KiB, while others wait in the kernel's backlog;
//! sampling never waits for it. Each response closes its connection. A
//! scrape gets the latest sample when it is at most [`FRESH`] old (the
//! MXBean's bound), else takes one, never more than one a second
//! ([`Agent::latest_within`]).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use jmagent_core::options::MetricsAddr;
use jmagent_core::render::{self, MetricsFormat};

use super::{ffi, lock, Agent};

/// Longest wait for one read or write of a connection.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest time one connection may take from accept to response.
const DEADLINE: Duration = Duration::from_secs(5);
/// Largest request head (request line and headers) read.
const MAX_HEAD: usize = 8192;
/// Most headers a request may have.
const MAX_HEADERS: usize = 32;
/// How long the input left after a response is waited for, per read.
const LINGER: Duration = Duration::from_millis(200);
/// Most input read and dropped after a response.
const MAX_DRAIN: usize = 64 << 10;
/// A scrape is answered with a sample at most this old.
const FRESH: Duration = Duration::from_secs(5);

/// Binds the endpoint's socket: an error names the address and the cause.
pub(super) fn bind(addr: &MetricsAddr) -> Result<TcpListener, String> {
    let what = format!("cannot serve metrics on {addr}");
    let resolved: Vec<_> = (addr.host.as_str(), addr.port)
        .to_socket_addrs()
        .map_err(|e| format!("{what}: cannot resolve host '{}': {e}", addr.host))?
        .collect();
    if resolved.is_empty() {
        return Err(format!("{what}: host '{}' has no address", addr.host));
    }
    TcpListener::bind(&resolved[..]).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                "; another process listens on that port: choose another with metrics=PORT"
            }
            std::io::ErrorKind::AddrNotAvailable => "; that address is not one of this machine's",
            std::io::ErrorKind::PermissionDenied => {
                "; ports under 1024 need privileges: choose another with metrics=PORT"
            }
            _ => "",
        };
        format!("{what}: {e}{hint}")
    })
}

/// Starts the endpoint thread when `metrics=` gave a socket.
pub(super) fn start(agent: &'static Agent) {
    let Some(listener) = lock(&agent.metrics_listener).take() else {
        return;
    };
    if let Ok(a) = listener.local_addr() {
        eprintln!("jmagent: serving metrics on http://{a}/metrics");
    }
    let spawned = std::thread::Builder::new()
        .name("jmagent-metrics".into())
        .spawn(move || ffi::guard("metrics thread", (), || serve(&listener, agent)));
    if let Err(e) = spawned {
        eprintln!("jmagent: cannot start the metrics thread: {e}; no metrics endpoint");
    }
}

fn serve(listener: &TcpListener, agent: &'static Agent) {
    for stream in listener.incoming() {
        match stream {
            Ok(s) => {
                let _ = answer(s, agent);
            }
            // Out of file descriptors, or a connection reset before accept:
            // wait a little rather than spin.
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// A response: status line, content type and body.
struct Response {
    status: &'static str,
    content_type: &'static str,
    body: String,
    allow: bool,
}

impl Response {
    fn plain(status: &'static str, body: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: format!("{body}\n"),
            allow: false,
        }
    }
}

/// Reads one request head from `s` and answers it.
fn answer(mut s: TcpStream, agent: &Agent) -> std::io::Result<()> {
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    let deadline = Instant::now() + DEADLINE;
    match read_request(&mut s, agent, deadline)? {
        Some((response, head_only)) => respond(s, &response, head_only, deadline),
        None => Ok(()),
    }
}

/// Reads a request head and routes it: the response, and whether it is
/// for a `HEAD` (no body). `None` when the client went away or ran out of
/// time before its head was complete.
fn read_request(
    s: &mut TcpStream,
    agent: &Agent,
    deadline: Instant,
) -> std::io::Result<Option<(Response, bool)>> {
    let too_large = |why: &str| Response::plain("431 Request Header Fields Too Large", why);
    let mut head = vec![0u8; MAX_HEAD];
    let mut len = 0;
    while len < head.len() {
        let n = s.read(&mut head[len..])?;
        if n == 0 {
            return Ok(None);
        }
        len += n;
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        return Ok(Some(match req.parse(&head[..len]) {
            Ok(httparse::Status::Complete(_)) => {
                let head_only = req.method == Some("HEAD");
                (route(&req, agent), head_only)
            }
            Ok(httparse::Status::Partial) if Instant::now() < deadline => continue,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => (too_large("too many headers"), false),
            Err(e) => (
                Response::plain("400 Bad Request", &format!("bad request: {e}")),
                false,
            ),
        }));
    }
    Ok(Some((too_large("request head over 8 KiB"), false)))
}

/// Writes `response` and closes the connection.
fn respond(
    mut s: TcpStream,
    response: &Response,
    head_only: bool,
    deadline: Instant,
) -> std::io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        response.status,
        response.content_type,
        response.body.len()
    );
    if response.allow {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str("\r\n");
    if !head_only {
        out.push_str(&response.body);
    }
    s.write_all(out.as_bytes())?;
    s.flush()?;
    // Closing with unread input resets the connection, which can discard
    // the response before the client reads it (a 431 leaves the rest of
    // the head unread): end the writes, then drop what is left, briefly.
    s.shutdown(std::net::Shutdown::Write)?;
    s.set_read_timeout(Some(LINGER))?;
    let mut rest = [0u8; 4096];
    let mut drained = 0;
    while drained < MAX_DRAIN && Instant::now() < deadline {
        match s.read(&mut rest) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
    Ok(())
}

/// `GET /metrics` (query ignored) and `HEAD /metrics`; any other path is
/// 404, any other method 405.
fn route(req: &httparse::Request, agent: &Agent) -> Response {
    let path = req.path.unwrap_or("");
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    if path != "/metrics" {
        return Response::plain("404 Not Found", "not found: the metrics are at /metrics");
    }
    if !matches!(req.method, Some("GET" | "HEAD")) {
        let mut r = Response::plain("405 Method Not Allowed", "only GET and HEAD");
        r.allow = true;
        return r;
    }
    let accept = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("accept"))
        .and_then(|h| std::str::from_utf8(h.value).ok());
    let format = MetricsFormat::from_accept(accept);
    // Once the JVM is going away, no new sample: the last one is served.
    let report = if lock(&agent.control).stop {
        lock(&agent.latest).clone()
    } else {
        Some(agent.latest_within(FRESH, None))
    };
    match report {
        Some(r) => Response {
            status: "200 OK",
            content_type: format.content_type(),
            body: render::metrics(&r, agent.totals(), format),
            allow: false,
        },
        None => Response::plain("503 Service Unavailable", "the JVM is exiting"),
    }
}
