//! `--raw-tcp`: the runtime's floor. The same accept loop, task, split stream and owned-buffer
//! read/write as a WebSocket connection, with no session: every byte read is written back as
//! it came. What a WebSocket echo costs beyond this is the WebSocket layer (see DESIGN.md,
//! "Every figure is explained").

use std::net::Shutdown as SocketShutdown;
use std::pin::pin;

use monoio::buf::IoBuf;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

use wsport_server_common::closing::Subscription;
use wsport_server_common::counters::Counters;

use crate::conn::Conn;
use crate::park::Park;

/// Bytes one read may take: the room a WebSocket connection's read gets
/// (`wsport_server_common::session`'s read chunk).
const CHUNK: usize = 16 * 1024;

/// Echo until the peer closes, an error, or shutdown. As in the WebSocket loop, the read in
/// flight is never dropped: shutdown shuts the socket for reading, which completes it.
pub(crate) async fn connection(stream: TcpStream, counters: &Counters, mut closing: Subscription) {
    if closing.is_closed() {
        return;
    }
    let mut conn = Conn::new(stream);
    let (fd, reader, writer) = conn.parts();
    let mut buf = Vec::with_capacity(CHUNK);
    let mut stopping = false;
    let mut park = Park::default();
    loop {
        park.before_read().await;
        // A bare `Vec` is read into from index 0, which is what an emptied buffer wants.
        buf.clear();
        let read = pin!(reader.read(buf));
        let mut read = park.watch(read);
        let (result, returned) = loop {
            monoio::select! {
                done = &mut read => break done,
                () = closing.closed(), if !stopping => {
                    stopping = true;
                    let _ = fd.shutdown(SocketShutdown::Read);
                }
            }
        };
        let n = match result {
            Ok(n) if n > 0 && !stopping => n,
            _ => return,
        };
        counters.add_bytes_in(n as u64);
        let (written, slice) = writer.write_all(returned.slice(..n)).await;
        if written.is_err() {
            return;
        }
        counters.add_bytes_out(n as u64);
        buf = slice.into_inner();
    }
}
