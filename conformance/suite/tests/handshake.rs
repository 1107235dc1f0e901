//! The opening handshake (RFC 6455 §4): what a server answers to valid and invalid
//! requests, the policy flags (origin, auth token, subprotocols), the handshake timeout and
//! the connection limit.
//!
//! Every HTTP answer other than 101 must end with the server closing the connection.

use wsport_conformance::prelude::*;

/// Default flags: the request validation cases.
#[test]
fn request_validation() {
    for_each_server("request_validation", |config| {
        let server = Launch::new(config).start()?;
        run_cases(
            &server,
            cases![
                valid_upgrade,
                frame_in_same_write_as_request,
                tungstenite_upgrades,
                healthz,
                no_upgrade_header,
                post_upgrade,
                http_1_0,
                missing_host,
                upgrade_h2c,
                connection_without_upgrade_token,
                connection_keep_alive_upgrade,
                connection_token_any_case,
                missing_key,
                key_of_15_bytes,
                key_not_base64,
                missing_version,
                version_8,
                head_over_max_header_bytes,
            ],
        )
    });
}

/// Send `req`, expect status `status` with each of `headers` listing its token, then the
/// server closing the connection.
fn expect_http(ep: &Endpoint, req: &Request, status: u16, headers: &[(&str, &str)]) -> Outcome {
    let mut conn = RawConn::connect(ep)?;
    conn.send_request(req)?;
    let resp = conn.read_response()?;
    let wanted: Vec<_> = headers.iter().map(|(n, v)| format!("{n}: {v}")).collect();
    let missing: Vec<_> = headers
        .iter()
        .filter(|(name, token)| !resp.has_token(name, token))
        .map(|(n, v)| format!("{n}: {v}"))
        .collect();
    let with = if wanted.is_empty() {
        String::new()
    } else {
        format!(" with {}", wanted.join(", "))
    };
    ensure!(
        resp.status == status && missing.is_empty(),
        "sent {req}; expected HTTP {status}{with}; got {resp}"
    );
    conn.drain_until_closed(READ_TIMEOUT)
        .map(drop)
        .map_err(|e| format!("after HTTP {status} to {req}: {e}"))
}

/// Send `req`, expect a correct 101 and a working echo.
fn expect_upgrade(ep: &Endpoint, req: &Request) -> Result<Response, String> {
    let (mut conn, resp) = RawConn::upgrade_with(ep, req)?;
    conn.send(&Frame::text("after upgrade"))?;
    conn.expect_echo(opcode::TEXT, b"after upgrade")?;
    Ok(resp)
}

fn valid_upgrade(ep: &Endpoint) -> Outcome {
    expect_upgrade(ep, &Request::upgrade(ep)).map(drop)
}

/// A frame in the same write as the request head lands in the server's handshake buffer;
/// it must be handed to the frame decoder, not dropped.
fn frame_in_same_write_as_request(ep: &Endpoint) -> Outcome {
    let req = Request::upgrade(ep);
    let mut bytes = req.to_bytes();
    bytes.extend(Frame::text("early bird").encode());
    let mut conn = RawConn::connect(ep)?;
    conn.send_bytes(
        &bytes,
        &format!("{req} + text frame \"early bird\" in one write"),
    )?;
    let resp = conn.read_response()?;
    check_switching(&req, &resp)?;
    conn.expect_echo(opcode::TEXT, b"early bird")
}

fn tungstenite_upgrades(ep: &Endpoint) -> Outcome {
    let mut client = ws::connect(ep)?;
    ws::echo(&mut client, Message::text("tungstenite"))?;
    ws::close(&mut client)
}

fn healthz(ep: &Endpoint) -> Outcome {
    expect_http(ep, &Request::get(ep, "/healthz"), 200, &[])
}

fn no_upgrade_header(ep: &Endpoint) -> Outcome {
    expect_http(ep, &Request::get(ep, "/"), 426, &[("Upgrade", "websocket")])
}

fn post_upgrade(ep: &Endpoint) -> Outcome {
    let req = Request::upgrade(ep).method("POST");
    expect_http(ep, &req, 405, &[("Allow", "GET")])
}

fn http_1_0(ep: &Endpoint) -> Outcome {
    expect_http(ep, &Request::upgrade(ep).version("HTTP/1.0"), 400, &[])
}

fn missing_host(ep: &Endpoint) -> Outcome {
    expect_http(ep, &Request::upgrade(ep).without("Host"), 400, &[])
}

fn upgrade_h2c(ep: &Endpoint) -> Outcome {
    expect_http(ep, &Request::upgrade(ep).header("Upgrade", "h2c"), 400, &[])
}

fn connection_without_upgrade_token(ep: &Endpoint) -> Outcome {
    let req = Request::upgrade(ep).header("Connection", "keep-alive");
    expect_http(ep, &req, 400, &[])
}

/// Connection is a token list (RFC 7230 §6.1), as Firefox sends it.
fn connection_keep_alive_upgrade(ep: &Endpoint) -> Outcome {
    let req = Request::upgrade(ep).header("Connection", "keep-alive, Upgrade");
    expect_upgrade(ep, &req).map(drop)
}

/// Tokens are case-insensitive; so is the Upgrade value (§4.2.1 items 3-4).
fn connection_token_any_case(ep: &Endpoint) -> Outcome {
    for (connection, upgrade) in [("upgrade", "websocket"), ("UpGrAdE", "WebSocket")] {
        let req = Request::upgrade(ep)
            .header("Connection", connection)
            .header("Upgrade", upgrade);
        expect_upgrade(ep, &req)?;
    }
    Ok(())
}

fn missing_key(ep: &Endpoint) -> Outcome {
    expect_http(
        ep,
        &Request::upgrade(ep).without("Sec-WebSocket-Key"),
        400,
        &[],
    )
}

/// The key must decode to exactly 16 bytes (§4.2.1 item 5); this one is 15.
fn key_of_15_bytes(ep: &Endpoint) -> Outcome {
    let req = Request::upgrade(ep).header("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAA");
    expect_http(ep, &req, 400, &[])
}

fn key_not_base64(ep: &Endpoint) -> Outcome {
    let req = Request::upgrade(ep).header("Sec-WebSocket-Key", "not base64 at all!!!!!==");
    expect_http(ep, &req, 400, &[])
}

fn missing_version(ep: &Endpoint) -> Outcome {
    let req = Request::upgrade(ep).without("Sec-WebSocket-Version");
    expect_http(ep, &req, 400, &[])
}

/// An unsupported version gets 426 naming the one supported (§4.4).
fn version_8(ep: &Endpoint) -> Outcome {
    let req = Request::upgrade(ep).header("Sec-WebSocket-Version", "8");
    expect_http(ep, &req, 426, &[("Sec-WebSocket-Version", "13")])
}

/// Default --max-header-bytes is 8192; a 10 KiB head gets 431.
fn head_over_max_header_bytes(ep: &Endpoint) -> Outcome {
    let req = Request::upgrade(ep).header("X-Padding", &"p".repeat(10 * 1024));
    expect_http(ep, &req, 431, &[])
}

// ---- policy flags ------------------------------------------------------------------------

const GOOD_ORIGIN: &str = "https://good.example";

#[test]
fn origin_policy() {
    for_each_server("origin_policy", |config| {
        let server = Launch::new(config)
            .args(&["--allow-origin", GOOD_ORIGIN])
            .start()?;
        run_cases(
            &server,
            cases![origin_allowed, origin_other, origin_missing],
        )
    });
}

fn origin_allowed(ep: &Endpoint) -> Outcome {
    expect_upgrade(ep, &Request::upgrade(ep).header("Origin", GOOD_ORIGIN)).map(drop)
}

fn origin_other(ep: &Endpoint) -> Outcome {
    let req = Request::upgrade(ep).header("Origin", "https://evil.example");
    expect_http(ep, &req, 403, &[])
}

fn origin_missing(ep: &Endpoint) -> Outcome {
    expect_http(ep, &Request::upgrade(ep), 403, &[])
}

#[test]
fn auth_token() {
    for_each_server("auth_token", |config| {
        let server = Launch::new(config)
            .args(&["--auth-token", "s3cret"])
            .start()?;
        run_cases(&server, cases![token_right, token_wrong, token_missing])
    });
}

fn token_right(ep: &Endpoint) -> Outcome {
    let req = Request::upgrade(ep).header("Authorization", "Bearer s3cret");
    expect_upgrade(ep, &req).map(drop)
}

fn token_wrong(ep: &Endpoint) -> Outcome {
    for value in ["Bearer s3cre", "Bearer s3cretX", "Basic s3cret"] {
        let req = Request::upgrade(ep).header("Authorization", value);
        expect_http(ep, &req, 401, &[])?;
    }
    Ok(())
}

fn token_missing(ep: &Endpoint) -> Outcome {
    expect_http(ep, &Request::upgrade(ep), 401, &[])
}

#[test]
fn subprotocols() {
    for_each_server("subprotocols", |config| {
        let server = Launch::new(config)
            .args(&["--subprotocol", "chat", "--subprotocol", "superchat"])
            .start()?;
        run_cases(
            &server,
            cases![
                subprotocol_chosen,
                subprotocol_none_shared,
                subprotocol_not_offered
            ],
        )
    });
}

/// The server picks one protocol it supports from the client's list (§4.2.2 item 5.4).
fn subprotocol_chosen(ep: &Endpoint) -> Outcome {
    let req = Request::upgrade(ep).header("Sec-WebSocket-Protocol", "foo, superchat");
    let resp = expect_upgrade(ep, &req)?;
    let chosen = resp.header("Sec-WebSocket-Protocol");
    ensure!(
        chosen.map(str::trim) == Some("superchat"),
        "sent {req}; expected `Sec-WebSocket-Protocol: superchat`; got {resp}"
    );
    Ok(())
}

/// No shared protocol: still 101, and no Sec-WebSocket-Protocol at all.
fn subprotocol_none_shared(ep: &Endpoint) -> Outcome {
    let req = Request::upgrade(ep).header("Sec-WebSocket-Protocol", "foo");
    let resp = expect_upgrade(ep, &req)?;
    ensure!(
        resp.header("Sec-WebSocket-Protocol").is_none(),
        "sent {req}; expected 101 without Sec-WebSocket-Protocol; got {resp}"
    );
    Ok(())
}

fn subprotocol_not_offered(ep: &Endpoint) -> Outcome {
    let req = Request::upgrade(ep);
    let resp = expect_upgrade(ep, &req)?;
    ensure!(
        resp.header("Sec-WebSocket-Protocol").is_none(),
        "sent {req}; expected 101 without Sec-WebSocket-Protocol; got {resp}"
    );
    Ok(())
}

// ---- handshake timeout -------------------------------------------------------------------

/// A request trickled one byte per 300 ms must be cut off by `--handshake-timeout 1s`
/// (within ~3 s), while a normal client connecting meanwhile is served.
#[test]
fn slowloris() {
    for_each_server("slowloris", |config| {
        let server = Launch::new(config)
            .args(&["--handshake-timeout", "1s"])
            .start()?;
        run_cases(&server, cases![slow_request_head, slow_tls_handshake])
    });
}

const TRICKLE: Duration = Duration::from_millis(300);

fn slow_request_head(ep: &Endpoint) -> Outcome {
    let request = Request::upgrade(ep).to_bytes();
    trickle_while_others_are_served(ep, RawConn::connect(ep)?, &request)
}

/// The handshake timeout covers the TLS handshake too: a ClientHello trickled over plain TCP.
/// (wss only.)
fn slow_tls_handshake(ep: &Endpoint) -> Outcome {
    let Some(config) = ep.tls.clone() else {
        return Ok(());
    };
    let hello = wsport_conformance::tls::client_hello(config);
    let tcp = wsport_conformance::raw::tcp_connect(ep.addr).context("connect")?;
    let conn = RawConn::over(wsport_conformance::raw::Stream::Plain(tcp));
    trickle_while_others_are_served(ep, conn, &hello)
}

fn trickle_while_others_are_served(ep: &Endpoint, mut slow: RawConn, bytes: &[u8]) -> Outcome {
    let limit = within(Duration::from_secs(3));
    std::thread::scope(|scope| {
        let normal = scope.spawn(|| -> Outcome {
            std::thread::sleep(Duration::from_millis(500));
            let mut client = ws::connect(ep).context("normal client during slowloris")?;
            ws::echo(&mut client, Message::text("not starved"))
        });
        let slow_result = slow
            .trickle_until_closed(bytes, TRICKLE, limit)
            .map(drop)
            .map_err(|e| format!("with --handshake-timeout 1s: {e}"));
        let normal_result = normal
            .join()
            .unwrap_or_else(|_| Err("normal client panicked".into()));
        collect([slow_result, normal_result])
    })
}

// ---- connection limit --------------------------------------------------------------------

#[test]
fn max_connections() {
    for_each_server("max_connections", |config| {
        let server = Launch::new(config)
            .args(&["--max-connections", "2"])
            .start()?;
        run_server_case(&server, "connection_limit", connection_limit)
    });
}

/// How an upgrade attempt ended.
enum Attempt {
    Upgraded(RawConn),
    /// 503, or the connection closed without an answer.
    Refused(String),
}

fn attempt(ep: &Endpoint) -> Result<Attempt, String> {
    let mut conn = match RawConn::connect(ep) {
        Ok(conn) => conn,
        // Closed during the TLS handshake: refused without 101.
        Err(e) if ep.tls.is_some() => return Ok(Attempt::Refused(e)),
        Err(e) => return Err(e),
    };
    let req = Request::upgrade(ep);
    if let Err(e) = conn.send_request(&req) {
        return Ok(Attempt::Refused(format!("write failed: {e}")));
    }
    match conn.try_read_response() {
        Ok(Ok(resp)) if resp.status == 101 => {
            check_switching(&req, &resp)?;
            Ok(Attempt::Upgraded(conn))
        }
        Ok(Ok(resp)) if resp.status == 503 => Ok(Attempt::Refused(resp.to_string())),
        Ok(Ok(resp)) => Err(format!("sent {req}; expected 101 or 503; got {resp}")),
        Ok(Err(malformed)) => Err(format!("sent {req}; expected 101 or 503; got {malformed}")),
        Err(event) if event.is_closed() => Ok(Attempt::Refused(event.to_string())),
        Err(event) => Err(format!(
            "sent {req}; expected 101, 503 or a close; got {event}"
        )),
    }
}

fn upgraded(ep: &Endpoint, which: &str) -> Result<RawConn, String> {
    match attempt(ep)? {
        Attempt::Upgraded(mut conn) => {
            conn.send(&Frame::text(which))?;
            conn.expect_echo(opcode::TEXT, which.as_bytes())?;
            Ok(conn)
        }
        Attempt::Refused(how) => Err(format!("{which}: expected 101; got {how}")),
    }
}

fn connection_limit(server: &Server) -> Outcome {
    let (ws, wss) = (server.endpoint(Scheme::Ws), server.endpoint(Scheme::Wss));
    let mut first = upgraded(ws, "connection 1 of 2")?;
    let _second = upgraded(wss, "connection 2 of 2")?;
    for ep in [ws, wss] {
        if let Attempt::Upgraded(_) = attempt(ep)? {
            return Err(format!(
                "with --max-connections 2 and 2 open: expected the 3rd connection ({ep}) to get \
                 503 or be closed; got 101"
            ));
        }
    }
    first.send(&Frame::close(1000, b""))?;
    first.expect_close_reply(Some(1000))?;
    drop(first);
    // The slot frees once the server has seen the close; give it a moment.
    let deadline = Instant::now() + within(Duration::from_secs(1));
    loop {
        match attempt(ws)? {
            Attempt::Upgraded(_) => return Ok(()),
            Attempt::Refused(how) if Instant::now() > deadline => {
                return Err(format!(
                    "after closing 1 of 2 connections (--max-connections 2): expected a new \
                     connection to be accepted; still refused ({how})"
                ))
            }
            Attempt::Refused(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}
