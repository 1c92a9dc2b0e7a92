//! The HTTP side of `serve` (tiny_http): one thread answers requests in order, after
//! draining the queue so that superseded slider requests are skipped ([`super::coalesce`]).
//! Bodies have size limits; a request whose `Host` is not a loopback name is refused when
//! the server listens on loopback (a web page elsewhere cannot reach it through DNS
//! rebinding); a panic while answering becomes a 500 reply, not a crash.

use super::api::{self, Reply};
use super::coalesce;
use super::explorer::Explorer;
use crate::{Error, Result};
use indicatif::ProgressBar;
use std::io::Read;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The largest JSON request body.
pub const MAX_JSON_BYTES: usize = 1 << 20;
/// The largest uploaded image file.
pub const MAX_UPLOAD_BYTES: usize = 10 << 20;
/// Requests answered per pass over the queue.
const MAX_QUEUE: usize = 512;

pub struct Server {
    http: tiny_http::Server,
    address: SocketAddr,
}

impl Server {
    /// Listens on `host:port` (port 0: any free port).
    pub fn bind(host: &str, port: u16) -> Result<Server> {
        let cannot = |e: &dyn std::fmt::Display| {
            Error::Invalid(format!("cannot listen on {host}:{port}: {e}"))
        };
        let listener = std::net::TcpListener::bind((host, port)).map_err(|e| cannot(&e))?;
        // Accepted connections inherit it (see Cargo.toml on socket2).
        socket2::SockRef::from(&listener)
            .set_tcp_nodelay(true)
            .map_err(|e| cannot(&e))?;
        let http = tiny_http::Server::from_listener(listener, None).map_err(|e| cannot(&e))?;
        let address = http
            .server_addr()
            .to_ip()
            .ok_or_else(|| Error::Invalid(format!("{host}:{port} is not an IP address")))?;
        Ok(Server { http, address })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Answers requests until `stop` is set (checked every 100 ms).
    pub fn run(&self, explorer: &mut Explorer, stop: &AtomicBool, bar: &ProgressBar) -> Result<()> {
        while !stop.load(Ordering::SeqCst) {
            let first = match self.http.recv_timeout(Duration::from_millis(100)) {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => return Err(Error::Invalid(format!("the server stopped: {e}"))),
            };
            let mut queue = vec![first];
            while queue.len() < MAX_QUEUE {
                match self.http.try_recv() {
                    Ok(Some(r)) => queue.push(r),
                    _ => break,
                }
            }
            let keys: Vec<(&str, &str)> = queue
                .iter()
                .map(|r| (r.method().as_str(), r.url()))
                .collect();
            let skip = coalesce::superseded(&keys);
            for (mut request, skip) in queue.into_iter().zip(skip) {
                let reply = if skip {
                    Reply {
                        status: 204,
                        content_type: "text/plain",
                        body: vec![],
                    }
                } else {
                    self.answer(explorer, &mut request, bar)
                };
                respond(request, reply);
            }
        }
        Ok(())
    }

    fn answer(
        &self,
        explorer: &mut Explorer,
        request: &mut tiny_http::Request,
        bar: &ProgressBar,
    ) -> Reply {
        let method = request.method().as_str().to_string();
        let path = request.url().split('?').next().unwrap_or("").to_string();
        let host = request
            .headers()
            .iter()
            .find(|h| h.field.equiv("Host"))
            .map(|h| h.value.as_str().to_string());
        if self.address.ip().is_loopback() && !host.as_deref().is_none_or(is_loopback_host) {
            return Reply::error(403, "this server answers requests to localhost only");
        }
        let limit = if path == "/api/upload" {
            MAX_UPLOAD_BYTES
        } else {
            MAX_JSON_BYTES
        };
        let body = match read_body(request, limit) {
            Ok(body) => body,
            Err(reply) => return reply,
        };
        catch_unwind(AssertUnwindSafe(|| {
            api::handle(explorer, &method, &path, &body, bar)
        }))
        .unwrap_or_else(|_| Reply::error(500, "internal error (see the terminal)"))
    }
}

/// Whether a `Host` header names this machine's loopback (any port).
fn is_loopback_host(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    matches!(name, "localhost" | "127.0.0.1" | "[::1]")
}

/// The body, at most `limit` bytes (413 beyond).
fn read_body(request: &mut tiny_http::Request, limit: usize) -> Result<Vec<u8>, Reply> {
    let too_large = || Reply::error(413, &format!("the request body is over {limit} bytes"));
    if request.body_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = vec![];
    request
        .as_reader()
        .take(limit as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| Reply::error(400, &format!("cannot read the request body: {e}")))?;
    if body.len() > limit {
        return Err(too_large());
    }
    Ok(body)
}

fn respond(request: tiny_http::Request, reply: Reply) {
    let headers = [
        ("Content-Type", reply.content_type),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        (
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'",
        ),
    ];
    let mut response = tiny_http::Response::from_data(reply.body).with_status_code(reply.status);
    for (name, value) in headers {
        let header = tiny_http::Header::from_bytes(name, value).expect("valid header");
        response.add_header(header);
    }
    // The client may have gone away (a closed tab): nothing to do about it.
    let _ = request.respond(response);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_with_and_without_ports() {
        for ok in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:1",
            "[::1]:80",
            "[::1]",
        ] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "127.0.0.1.evil:80",
            "10.0.0.1",
        ] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }
}
