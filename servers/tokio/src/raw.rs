//! `--raw-tcp`: the runtime's floor. The same accept loop, task and readiness read/write as a
//! WebSocket connection, with no session: every byte read is written back as it came. What a
//! WebSocket echo costs beyond this is the WebSocket layer (see DESIGN.md, "Every figure is
//! explained").

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use wsport_server_common::closing::Subscription;
use wsport_server_common::counters::Counters;

/// Bytes one read may take: the room a WebSocket connection's read gets
/// (`wsport_server_common::session`'s read chunk).
const CHUNK: usize = 16 * 1024;

/// Echo until the peer closes, an error, or shutdown.
pub(crate) async fn connection(
    mut stream: TcpStream,
    counters: &Counters,
    mut closing: Subscription,
) {
    if closing.is_closed() {
        return;
    }
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(n) if n > 0 => n,
                _ => return,
            },
            () = closing.closed() => return,
        };
        counters.add_bytes_in(n as u64);
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
        counters.add_bytes_out(n as u64);
    }
}
