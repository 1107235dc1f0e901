//! wsport-ref-fastwebsockets: the echo server of fastwebsockets' own example
//! (`examples/echo_server.rs`: hyper's HTTP/1 server with upgrades, `fastwebsockets::upgrade`,
//! then `FragmentCollector` echoing every text and binary frame), on one tokio current_thread
//! runtime. fastwebsockets answers pings and closes itself (its default auto_pong/auto_close).

use std::process::ExitCode;

use fastwebsockets::{upgrade, FragmentCollector, OpCode, WebSocketError};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

fn main() -> ExitCode {
    wsport_reference::run("wsport-ref-fastwebsockets", serve_http)
}

/// One TCP connection: HTTP/1 until the upgrade, then the WebSocket echo.
async fn serve_http(stream: TcpStream) {
    let io = TokioIo::new(stream);
    let _ = http1::Builder::new()
        .serve_connection(io, service_fn(upgrade_request))
        .with_upgrades()
        .await;
}

async fn upgrade_request(
    mut request: Request<Incoming>,
) -> Result<Response<Empty<Bytes>>, WebSocketError> {
    let (response, websocket) = upgrade::upgrade(&mut request)?;
    tokio::task::spawn_local(async move {
        let _ = echo(websocket).await;
    });
    Ok(response)
}

async fn echo(websocket: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
    let mut ws = FragmentCollector::new(websocket.await?);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => return Ok(()),
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            _ => {}
        }
    }
}
