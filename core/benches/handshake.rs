//! The opening handshake (RFC 6455 §4): what a server spends per connection before the first
//! frame, i.e. what a connection-storm scenario measures besides TCP and TLS.
//!
//! `cargo bench -p wsport-core --bench handshake`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use wsport_core::handshake::{accept_key, parse_request, write_accept, DEFAULT_MAX_HEADER_BYTES};

/// A browser-like upgrade request of 188 bytes: the headers a browser sends that the
/// handshake reads (Host, Origin, key, version), without its User-Agent and Accept-* lines.
const BROWSER_LIKE: &[u8] = b"GET /echo HTTP/1.1\r\n\
    Host: 127.0.0.1:8080\r\n\
    Connection: Upgrade\r\n\
    Upgrade: websocket\r\n\
    Origin: http://127.0.0.1:8080\r\n\
    Sec-WebSocket-Version: 13\r\n\
    Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n\
    \r\n";

/// What Chrome 124 sends in full (about 560 bytes, 12 headers).
const CHROME: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost:8080\r\nConnection: Upgrade\r\n\
    Pragma: no-cache\r\nCache-Control: no-cache\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) \
    AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
    Upgrade: websocket\r\nOrigin: http://localhost:8080\r\nSec-WebSocket-Version: 13\r\n\
    Accept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-US,en;q=0.9\r\n\
    Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n\
    Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("handshake/parse_request");
    for (name, request) in [("browser-like", BROWSER_LIKE), ("chrome", CHROME)] {
        // Fail loudly rather than time the error path.
        assert!(
            matches!(parse_request(request, DEFAULT_MAX_HEADER_BYTES), Ok(Some(r)) if r.upgrade.is_some())
        );
        group.throughput(Throughput::Bytes(request.len() as u64));
        group.bench_function(format!("{name}-{}B", request.len()), |b| {
            b.iter(|| parse_request(black_box(request), DEFAULT_MAX_HEADER_BYTES))
        });
    }
    group.finish();
}

fn accept(c: &mut Criterion) {
    let key = *b"x3JJHMbDL1EzLkh9GBhXDw==";
    c.bench_function("handshake/accept_key", |b| {
        b.iter(|| accept_key(black_box(&key)))
    });
    // The caller reuses its output buffer, as a server does per connection.
    let mut out = Vec::with_capacity(256);
    c.bench_function("handshake/write_accept", |b| {
        b.iter(|| {
            out.clear();
            write_accept(black_box(&key), None, &mut out);
            black_box(out.len())
        })
    });
}

criterion_group!(benches, parse, accept);
criterion_main!(benches);
