//! wsport-ref-tungstenite: the echo server of tokio-tungstenite's own examples
//! (`accept_async`, then send back every text and binary message), on one tokio
//! current_thread runtime. Pings are answered and closes completed by tungstenite itself.

use std::process::ExitCode;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;

fn main() -> ExitCode {
    wsport_reference::run("wsport-ref-tungstenite", echo)
}

async fn echo(stream: TcpStream) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    while let Some(Ok(message)) = ws.next().await {
        if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
            return;
        }
    }
}
