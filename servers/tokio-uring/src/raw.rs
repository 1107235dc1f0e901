//! `--raw-tcp`: the runtime's floor. The same accept loop, task and io_uring read/write as a
//! WebSocket connection, with no session: every byte read is written back as it came. What a
//! WebSocket echo costs beyond this is the WebSocket layer (see DESIGN.md, "Every figure is
//! explained").

use std::net::Shutdown as Halves;
use std::pin::pin;

use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::TcpStream;

use wsport_server_common::closing::Subscription;
use wsport_server_common::counters::Counters;

/// Bytes one read may take: the room a WebSocket connection's read gets
/// (`wsport_server_common::session`'s read chunk).
const CHUNK: usize = 16 * 1024;

/// Echo until the peer closes, an error, or shutdown. As in the WebSocket loop, the read in
/// flight is never dropped: shutdown shuts the socket so that the kernel completes it.
pub(crate) async fn connection(stream: TcpStream, counters: &Counters, mut closing: Subscription) {
    if closing.is_closed() {
        return;
    }
    let mut buf = Vec::with_capacity(CHUNK);
    loop {
        buf.clear();
        let mut read = pin!(stream.read(buf));
        let (result, returned) = tokio::select! {
            biased;
            done = read.as_mut() => done,
            () = closing.closed() => {
                let _ = stream.shutdown(Halves::Both);
                let _ = read.await;
                return;
            }
        };
        let n = match result {
            Ok(n) if n > 0 => n,
            _ => return,
        };
        counters.add_bytes_in(n as u64);
        let (written, slice) = stream.write_all(returned.slice(..n)).await;
        if written.is_err() {
            return;
        }
        counters.add_bytes_out(n as u64);
        buf = slice.into_inner();
    }
}
