//! The straightforward client wsport-bench is compared against: tokio on one thread
//! (`current_thread`), one task per connection, `write_all` then `read` until the echo is
//! whole, the same wsport-core handshake, framing and masking. This is how most Rust load
//! generators are written; wsport-bench should cost less CPU per message.
//!
//! ```text
//! cargo build --release -p wsport-bench --example tokio_echo_client
//! taskset -c 1 target/release/examples/tokio_echo_client --url ws://127.0.0.1:9001/ \
//!     -c 100 --size 64 --duration 10 --warmup 2 --server-pid PID
//! ```
//!
//! Prints msgs/s over the window and the CPU time per message of this process (getrusage) and
//! of the server (/proc, with --server-pid), measured exactly as wsport-bench measures them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wsport_bench::sys;
use wsport_core::{handshake, ClientConnection, Decoded, Limits, OpCode};

struct Args {
    url: String,
    connections: usize,
    size: usize,
    duration: u64,
    warmup: u64,
    server_pid: Option<u32>,
}

fn parse_args() -> Args {
    let mut a = Args {
        url: String::new(),
        connections: 100,
        size: 64,
        duration: 10,
        warmup: 2,
        server_pid: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.url = value(),
            "-c" => a.connections = value().parse().expect("-c N"),
            "--size" => {
                a.size = wsport_server_common::units::parse_size(&value())
                    .expect("--size BYTES (64, 1KiB)") as usize
            }
            "--duration" => a.duration = value().parse().expect("--duration SECONDS"),
            "--warmup" => a.warmup = value().parse().expect("--warmup SECONDS"),
            "--server-pid" => a.server_pid = Some(value().parse().expect("--server-pid PID")),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(
        a.url.starts_with("ws://"),
        "--url ws://HOST:PORT/PATH (no wss in this baseline)"
    );
    a
}

fn main() {
    let args = parse_args();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(args));
}

async fn run(args: Args) {
    let rest = args.url.trim_start_matches("ws://");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path }.to_owned();
    let authority = authority.to_owned();
    let echoed = Arc::new(AtomicU64::new(0));
    for i in 0..args.connections {
        let stream = TcpStream::connect(&authority).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let (authority, path, echoed) = (authority.clone(), path.clone(), echoed.clone());
        tokio::spawn(connection(
            stream, authority, path, args.size, i as u64, echoed,
        ));
    }
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    let (start, n0, cpu0, srv0) = (
        Instant::now(),
        echoed.load(Ordering::Relaxed),
        sys::self_usage().cpu,
        args.server_pid.and_then(sys::sample_process),
    );
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    let (wall, n1, cpu1, srv1) = (
        start.elapsed(),
        echoed.load(Ordering::Relaxed),
        sys::self_usage().cpu,
        args.server_pid.and_then(sys::sample_process),
    );
    let messages = (n1 - n0) as f64;
    let secs = wall.as_secs_f64();
    let client_cpu = (cpu1 - cpu0).as_secs_f64();
    println!(
        "tokio_echo_client {} -c {} --size {}",
        args.url, args.connections, args.size
    );
    println!(
        "  messages   {:.0} msgs/s over {secs:.2} s",
        messages / secs
    );
    println!(
        "  client     {:.1}% CPU, {:.2} µs CPU per message",
        client_cpu * 100.0 / secs,
        client_cpu * 1e6 / messages
    );
    if let (Some(a), Some(b)) = (srv0, srv1) {
        let cpu = b.cpu.saturating_sub(a.cpu).as_secs_f64();
        println!(
            "  server     {:.1}% CPU, {:.2} µs CPU per message",
            cpu * 100.0 / secs,
            cpu * 1e6 / messages
        );
    }
    std::process::exit(0);
}

async fn connection(
    mut stream: TcpStream,
    host: String,
    path: String,
    size: usize,
    seed: u64,
    echoed: Arc<AtomicU64>,
) {
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut out = Vec::new();
    let key = handshake::write_request(&host, &path, [next() as u8; 16], &[], &[], &mut out);
    stream.write_all(&out).await.expect("send upgrade");
    let mut buf = vec![0u8; 64 * 1024];
    let mut len = 0;
    let start = loop {
        let n = stream.read(&mut buf[len..]).await.expect("read upgrade");
        assert!(n > 0, "server closed during the upgrade");
        len += n;
        if let Some(resp) = handshake::parse_response(&buf[..len], &key, 8192).expect("valid 101") {
            break resp.len;
        }
    };
    buf.copy_within(start..len, 0);
    len -= start;
    let mut ws = ClientConnection::new(Limits::default());
    let payload = vec![b'x'; size];
    loop {
        out.clear();
        ws.write_frame(
            OpCode::Binary,
            true,
            &payload,
            (next() as u32).to_ne_bytes(),
            &mut out,
        );
        if stream.write_all(&out).await.is_err() {
            return;
        }
        loop {
            match ws.handle_frame(&mut buf[..len]) {
                Ok(Decoded::Frame(frame)) => {
                    assert_eq!(frame.payload.len(), size, "echo of the wrong size");
                    buf.copy_within(frame.len..len, 0);
                    len -= frame.len;
                    echoed.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Ok(Decoded::NeedMore { .. }) => match stream.read(&mut buf[len..]).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => len += n,
                },
                Err(e) => panic!("protocol error from the server: {e}"),
            }
        }
    }
}
