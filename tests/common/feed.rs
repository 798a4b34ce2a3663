//! A one-file web server on 127.0.0.1 for calendar feeds, shared by the test crates
//! (`#[path]`-included by `tests/core` and `tests/it`).

/// A one-file web server on 127.0.0.1: answers each request with the next scripted
/// (status, body), repeating the last; returns the port and a request counter.
pub fn serve(script: Vec<(u16, String)>) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { break };
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let (status, body) = script[n.min(script.len() - 1)].clone();
            let _ = write!(
                conn,
                "HTTP/1.1 {status} X\r\nContent-Type: text/calendar\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, hits)
}
