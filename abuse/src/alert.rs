//! TLS alerts as the abuse reads them: the plaintext alert record a server sends before any
//! keys exist (RFC 8446 §5.1, §6), and the alerts' RFC names for reports.

use rustls::AlertDescription;

/// The bytes every alert record starts with, by position: content type 21 (RFC 8446 §5.1),
/// legacy version 3.x, length 2; then the level and the description.
const FIXED: [(usize, u8); 4] = [(0, 21), (1, 3), (3, 0), (4, 2)];

/// What a server sent to a connection that has no keys yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A whole alert record: its description's code.
    Alert(u8),
    /// Not enough bytes yet to tell.
    Partial,
    /// Bytes that are not an alert record.
    Other,
}

/// Classify the first bytes a server sent.
pub fn parse(bytes: &[u8]) -> Answer {
    if FIXED
        .iter()
        .any(|&(at, want)| bytes.get(at).is_some_and(|&b| b != want))
    {
        return Answer::Other;
    }
    match bytes.get(6) {
        Some(&code) => Answer::Alert(code),
        None => Answer::Partial,
    }
}

/// The RFC name of alert `code` (`bad_record_mac`), from rustls's names (`BadRecordMac`).
pub fn name(code: u8) -> String {
    match AlertDescription::from(code).as_str() {
        Some(camel) => snake_case(camel),
        None => "unknown".into(),
    }
}

/// `BadRecordMac` -> `bad_record_mac`; a run of capitals is one word (`UnknownPSKIdentity` ->
/// `unknown_psk_identity`).
fn snake_case(camel: &str) -> String {
    let chars: Vec<char> = camel.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let after_lower = i > 0 && chars[i - 1].is_lowercase();
        let ends_capitals = i > 0
            && chars[i - 1].is_uppercase()
            && chars.get(i + 1).is_some_and(|n| n.is_lowercase());
        if c.is_uppercase() && (after_lower || ends_capitals) {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_records_parse_and_others_do_not() {
        assert_eq!(parse(&[21, 3, 3, 0, 2, 2, 50]), Answer::Alert(50));
        assert_eq!(parse(&[21, 3, 1, 0, 2, 2, 20, 99]), Answer::Alert(20));
        assert_eq!(parse(&[21]), Answer::Partial);
        assert_eq!(parse(&[21, 3, 3, 0]), Answer::Partial);
        assert_eq!(parse(b"HTTP/1.1 400"), Answer::Other);
        assert_eq!(parse(&[22, 3, 3, 0, 2, 2, 50]), Answer::Other);
        assert_eq!(parse(&[21, 3, 3, 0, 9, 2, 50]), Answer::Other);
    }

    #[test]
    fn names_are_the_rfc_names() {
        assert_eq!(name(20), "bad_record_mac");
        assert_eq!(name(50), "decode_error");
        assert_eq!(name(0), "close_notify");
        assert_eq!(name(48), "unknown_ca");
        assert_eq!(name(115), "unknown_psk_identity");
        assert_eq!(name(200), "unknown");
    }
}
