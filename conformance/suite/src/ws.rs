//! The independent client: tungstenite, blocking, over a [`Tcp`] socket or rustls.

use std::io;
use std::time::Duration;

use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::Request;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Connector, Message, WebSocket};

use crate::frame::preview;
use crate::raw::{describe_difference, tcp_connect};
use crate::server::Endpoint;
use crate::tcp::Tcp;
use crate::Outcome;

pub type Client = WebSocket<MaybeTlsStream<Tcp>>;

/// A client request for `ep`'s URL, to add headers to.
pub fn request(ep: &Endpoint) -> Request {
    ep.url().into_client_request().expect("valid URL")
}

/// Connect and upgrade with tungstenite.
pub fn connect(ep: &Endpoint) -> Result<Client, String> {
    connect_with(ep, request(ep))
}

pub fn connect_with(ep: &Endpoint, request: Request) -> Result<Client, String> {
    let tcp = tcp_connect(ep.addr).map_err(|e| format!("connect to {ep}: {e}"))?;
    let connector = match &ep.tls {
        Some(config) => Connector::Rustls(config.clone()),
        None => Connector::Plain,
    };
    // The client must not be the one refusing big messages: the cases test the server.
    let config = WebSocketConfig {
        max_message_size: None,
        max_frame_size: None,
        ..WebSocketConfig::default()
    };
    tungstenite::client_tls_with_config(request, tcp, Some(config), Some(connector))
        .map(|(client, _response)| client)
        .map_err(|e| format!("tungstenite handshake with {ep} failed: {e}"))
}

/// Set the read timeout of the socket under `client`.
pub fn set_read_timeout(client: &Client, timeout: Duration) {
    let tcp = match client.get_ref() {
        MaybeTlsStream::Plain(tcp) => tcp,
        MaybeTlsStream::Rustls(tls) => &tls.sock,
        _ => unreachable!("only plain and rustls streams are built"),
    };
    let _ = tcp.set_read_timeout(Some(timeout));
}

/// Send `message` and expect it back unchanged (pings and pongs on the way are skipped;
/// tungstenite answers pings by itself).
pub fn echo(client: &mut Client, message: Message) -> Outcome {
    let sent = describe(&message);
    client
        .send(message.clone())
        .map_err(|e| format!("sending {sent} with tungstenite: {}", describe_error(&e)))?;
    expect_message(client, &message, &sent)
}

/// The next data message must equal `expected`.
pub fn expect_message(client: &mut Client, expected: &Message, sent: &str) -> Outcome {
    let got = read_data(client).map_err(|e| format!("sent {sent}; expected it echoed; got {e}"))?;
    if &got == expected {
        return Ok(());
    }
    let detail = match (&got, expected) {
        (Message::Text(g), Message::Text(e)) => describe_difference(g.as_bytes(), e.as_bytes()),
        (Message::Binary(g), Message::Binary(e)) => describe_difference(g, e),
        _ => describe(&got),
    };
    Err(format!(
        "sent {sent}; expected the same message back; got {detail}"
    ))
}

/// The next text or binary message.
pub fn read_data(client: &mut Client) -> Result<Message, String> {
    loop {
        match client.read() {
            Ok(message @ (Message::Text(_) | Message::Binary(_))) => return Ok(message),
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
            Ok(Message::Close(frame)) => return Err(format!("a close frame {frame:?}")),
            Err(e) => return Err(describe_error(&e)),
        }
    }
}

/// Close politely and wait for the server's close and EOF.
pub fn close(client: &mut Client) -> Outcome {
    client
        .close(None)
        .map_err(|e| format!("sending close: {e}"))?;
    loop {
        match client.read() {
            Ok(_) => continue,
            Err(tungstenite::Error::ConnectionClosed) => return Ok(()),
            // TCP closed after the close frames, without TLS close_notify or with a reset:
            // the WebSocket closing handshake is complete either way.
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
                ) && !client.can_write() =>
            {
                return Ok(())
            }
            Err(e) => {
                return Err(format!(
                    "after sending close 1000: expected the close handshake to finish; got {}",
                    describe_error(&e)
                ))
            }
        }
    }
}

/// A tungstenite error as a failure message; a read timeout says so.
pub fn describe_error(error: &tungstenite::Error) -> String {
    match error {
        tungstenite::Error::Io(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            "nothing within the read timeout".into()
        }
        other => format!("error: {other}"),
    }
}

/// "text message of 5 bytes \"hello\"".
pub fn describe(message: &Message) -> String {
    match message {
        Message::Text(t) => format!(
            "text message of {} bytes {}",
            t.len(),
            preview(t.as_bytes())
        ),
        Message::Binary(b) => format!("binary message of {} bytes {}", b.len(), preview(b)),
        Message::Ping(p) => format!("ping {}", preview(p)),
        Message::Pong(p) => format!("pong {}", preview(p)),
        Message::Close(c) => format!("close {c:?}"),
        Message::Frame(f) => format!("raw frame {f:?}"),
    }
}

/// A text payload of exactly `len` bytes (ASCII, so any length is valid UTF-8).
pub fn text_of_len(len: usize) -> String {
    (0..len).map(|i| (b'a' + (i % 26) as u8) as char).collect()
}

/// A binary payload of `len` bytes that is not periodic with the mask length.
pub fn binary_of_len(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}
