//! Instruction counts of the core's hot paths, measured under Callgrind by gungraun.
//!
//! The criterion benches beside this file measure time, which moves by several percent from
//! run to run on a shared or virtual machine. Callgrind counts the instructions the code
//! executes instead: the same binary on the same input gives the same count on every run, so a
//! change of a fraction of a percent is a signal, not noise. That makes these the benches CI
//! can gate on (`scripts/icount.sh --baseline NAME` fails on a regression over the limit).
//! They say nothing about cache misses or SIMD width on the real CPU: the criterion benches
//! and the end-to-end matrix stay the measure of speed.
//!
//! Every input is built by a `bench` argument, which gungraun evaluates outside the counted
//! region, and every benchmark returns its buffers so that freeing them is not counted either:
//! what is counted is the call under test and nothing else. (Benchmark functions carry `//`
//! comments: `#[library_benchmark]` rejects doc comments.)
//!
//! `scripts/icount.sh` (installs valgrind and the matching `gungraun-runner`, then runs this).

use std::hint::black_box;

use gungraun::{
    library_benchmark, library_benchmark_group, main, Callgrind, LibraryBenchmarkConfig,
};
use wsport_core::frame::write_frame;
use wsport_core::handshake::{parse_request, write_accept, Request, DEFAULT_MAX_HEADER_BYTES};
use wsport_core::mask::{apply_mask, apply_mask_scalar};
use wsport_core::utf8::{Utf8Error, Utf8Validator};
use wsport_core::{Echo, FrameHeader, Limits, OpCode, ServerConnection};

/// The masking key every benchmark uses; its value does not change the work done.
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

// ---- Unmasking (RFC 6455 §5.3) ---------------------------------------------------------------

fn payload(len: usize) -> Vec<u8> {
    vec![0x5a; len]
}

// The fast path. Offset 1 puts the key out of phase, as for a payload resumed mid-read.
#[library_benchmark]
#[bench::len_64(payload(64))]
#[bench::len_1024(payload(1024))]
#[bench::len_16384(payload(16 * 1024))]
fn unmask_fast(mut buf: Vec<u8>) -> Vec<u8> {
    black_box(apply_mask(
        black_box(&mut buf),
        black_box(KEY),
        black_box(1),
    ));
    buf
}

// The scalar reference, so the report shows what the fast path saves.
#[library_benchmark]
#[bench::len_64(payload(64))]
#[bench::len_1024(payload(1024))]
#[bench::len_16384(payload(16 * 1024))]
fn unmask_scalar(mut buf: Vec<u8>) -> Vec<u8> {
    black_box(apply_mask_scalar(
        black_box(&mut buf),
        black_box(KEY),
        black_box(1),
    ));
    buf
}

library_benchmark_group!(name = unmask, benchmarks = [unmask_fast, unmask_scalar]);

// ---- Frame headers (RFC 6455 §5.2) -----------------------------------------------------------

/// The header of a masked client frame with a payload of `len` bytes: 6, 8 or 14 bytes, one
/// for each length form (7-bit, 16-bit, 64-bit).
fn client_header(len: usize) -> Vec<u8> {
    let mut frame = Vec::new();
    write_frame(&mut frame, true, OpCode::Binary, Some(KEY), &vec![0; len]);
    let (_, header_len) = FrameHeader::decode(&frame).unwrap().unwrap();
    frame.truncate(header_len);
    frame
}

#[library_benchmark]
#[bench::len_64(client_header(64))]
#[bench::len_1024(client_header(1024))]
#[bench::len_70000(client_header(70_000))]
fn header_decode(header: Vec<u8>) -> Vec<u8> {
    black_box(FrameHeader::decode(black_box(&header)).unwrap());
    header
}

/// The unmasked header a server writes before a reply of `len` bytes.
fn server_header(len: u64) -> FrameHeader {
    FrameHeader {
        fin: true,
        rsv: 0,
        opcode: OpCode::Binary,
        mask: None,
        payload_len: len,
    }
}

#[library_benchmark]
#[bench::len_64(server_header(64))]
#[bench::len_1024(server_header(1024))]
#[bench::len_70000(server_header(70_000))]
fn header_encode(header: FrameHeader) -> [u8; 14] {
    let mut out = [0u8; 14];
    black_box(black_box(&header).encode(black_box(&mut out)));
    out
}

library_benchmark_group!(name = frame, benchmarks = [header_decode, header_encode]);

// ---- Opening handshake (RFC 6455 §4.2) -------------------------------------------------------

/// A browser-like upgrade request of 188 bytes: the headers the handshake reads (Host,
/// Origin, key, version), as `benches/handshake.rs` uses.
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

/// The request and an output buffer with room for the answer, as a server reuses per
/// connection (so no allocation is counted).
fn request(bytes: &'static [u8]) -> (&'static [u8], Vec<u8>) {
    (bytes, Vec::with_capacity(256))
}

// What a server does per connection before the first frame: parse the request and write the
// 101 answer (SHA-1 and base64 of the key included).
#[library_benchmark]
#[bench::browser_like(request(BROWSER_LIKE))]
#[bench::chrome(request(CHROME))]
fn parse_and_accept((bytes, mut out): (&'static [u8], Vec<u8>)) -> (Request, Vec<u8>) {
    let request = parse_request(black_box(bytes), DEFAULT_MAX_HEADER_BYTES)
        .unwrap()
        .unwrap();
    let key = request.upgrade.as_ref().unwrap().key;
    write_accept(&key, None, &mut out);
    black_box((request, out))
}

library_benchmark_group!(name = handshake, benchmarks = [parse_and_accept]);

// ---- UTF-8 validation of text payloads (RFC 6455 §8.1) ---------------------------------------

fn ascii_1k() -> Vec<u8> {
    (0..1024).map(|i| b' ' + (i % 95) as u8).collect()
}

/// 1 KiB of text mixing 2-, 3- and 4-byte characters with ASCII (Latin accents, CJK, emoji),
/// padded to exactly 1024 bytes with ASCII.
fn multibyte_1k() -> Vec<u8> {
    let mut text = String::with_capacity(1024);
    for c in "aé日🎉ü語€😀".chars().cycle() {
        if text.len() + c.len_utf8() > 1024 {
            break;
        }
        text.push(c);
    }
    while text.len() < 1024 {
        text.push('.');
    }
    text.into_bytes()
}

#[library_benchmark]
#[bench::ascii_1k(ascii_1k())]
#[bench::multibyte_1k(multibyte_1k())]
fn utf8_validate(text: Vec<u8>) -> (Result<(), Utf8Error>, Vec<u8>) {
    let mut validator = Utf8Validator::new();
    let result = validator
        .feed(black_box(&text))
        .and_then(|()| validator.finish());
    (black_box(result), text)
}

library_benchmark_group!(name = utf8, benchmarks = [utf8_validate]);

// ---- In-place echo of whole frames (what a server does per read) -----------------------------

/// A fresh connection and one read holding `count` masked binary frames of `size` bytes.
fn frames(size: usize, count: usize) -> (ServerConnection, Vec<u8>) {
    let mut stream = Vec::new();
    for _ in 0..count {
        write_frame(
            &mut stream,
            true,
            OpCode::Binary,
            Some(KEY),
            &vec![b'x'; size],
        );
    }
    (ServerConnection::new(Limits::default()), stream)
}

#[library_benchmark]
#[bench::frames_1x64b(frames(64, 1))]
#[bench::frames_16x64b(frames(64, 16))]
fn echo_in_place((mut conn, mut buf): (ServerConnection, Vec<u8>)) -> (Echo, Vec<u8>) {
    let echo = conn.echo_in_place(black_box(&mut buf), 0..0, 0);
    (black_box(echo), buf)
}

library_benchmark_group!(name = echo, benchmarks = [echo_in_place]);

main!(
    // Instructions are the signal; the cache simulation's hit counts and "estimated cycles"
    // model a cache that is not this CPU's, and would only crowd the report.
    config = LibraryBenchmarkConfig::default().tool(Callgrind::with_args(["--cache-sim=no"])),
    library_benchmark_groups = [unmask, frame, handshake, utf8, echo]
);
