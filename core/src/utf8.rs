//! Incremental UTF-8 validation for text messages (RFC 6455 §5.6, §8.1).
//!
//! A text message may be split across frames, and a frame across reads, at any byte, even in
//! the middle of a multi-byte character. [`Utf8Validator`] carries at most three bytes of an
//! unfinished character from one piece to the next, and fails as soon as a byte makes the
//! sequence invalid, not at the end of the message ("fail fast", §8.1).

/// Invalid UTF-8 in a text message or a close reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utf8Error;

/// Validates a byte stream piece by piece.
#[derive(Debug, Clone, Default)]
pub struct Utf8Validator {
    /// Bytes of a character whose end has not arrived yet.
    pending: [u8; 4],
    pending_len: usize,
}

impl Utf8Validator {
    /// A validator at the start of a message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Validate the next piece of the message.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), Utf8Error> {
        if self.pending_len > 0 {
            bytes = self.finish_pending(bytes)?;
        }
        match std::str::from_utf8(bytes) {
            Ok(_) => Ok(()),
            // `error_len() == None`: the input ended inside a character that can still be
            // completed; keep its bytes for the next piece.
            Err(e) if e.error_len().is_none() => {
                let tail = &bytes[e.valid_up_to()..];
                self.pending[..tail.len()].copy_from_slice(tail);
                self.pending_len = tail.len();
                Ok(())
            }
            Err(_) => Err(Utf8Error),
        }
    }

    /// The message ended: a character still unfinished is an error.
    pub fn finish(&mut self) -> Result<(), Utf8Error> {
        let unfinished = self.pending_len > 0;
        self.pending_len = 0;
        if unfinished {
            Err(Utf8Error)
        } else {
            Ok(())
        }
    }

    /// Complete the pending character with bytes from the front of `bytes`; return the rest.
    fn finish_pending<'a>(&mut self, bytes: &'a [u8]) -> Result<&'a [u8], Utf8Error> {
        let take = bytes.len().min(4 - self.pending_len);
        let mut joined = self.pending;
        joined[self.pending_len..self.pending_len + take].copy_from_slice(&bytes[..take]);
        let joined = &joined[..self.pending_len + take];
        let complete = match std::str::from_utf8(joined) {
            Ok(_) => joined.len(),
            Err(e) if e.valid_up_to() > 0 => e.valid_up_to(),
            Err(e) if e.error_len().is_none() => {
                // Still unfinished: every byte of `bytes` joined the pending character.
                self.pending[..joined.len()].copy_from_slice(joined);
                self.pending_len = joined.len();
                return Ok(&[]);
            }
            Err(_) => return Err(Utf8Error),
        };
        let used = complete - self.pending_len;
        self.pending_len = 0;
        Ok(&bytes[used..])
    }
}

/// Validate a complete byte string (close reasons, single-frame messages).
pub fn validate(bytes: &[u8]) -> Result<(), Utf8Error> {
    std::str::from_utf8(bytes)
        .map(|_| ())
        .map_err(|_| Utf8Error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_split(bytes: &[u8], splits: &[usize]) -> Result<(), Utf8Error> {
        let mut v = Utf8Validator::new();
        let mut start = 0;
        for &s in splits.iter().chain(std::iter::once(&bytes.len())) {
            v.feed(&bytes[start..s])?;
            start = s;
        }
        v.finish()
    }

    #[test]
    fn every_split_of_valid_text_is_valid() {
        let text = "κόσμε — 𝄞 hello €".as_bytes();
        for a in 0..=text.len() {
            for b in a..=text.len() {
                assert_eq!(feed_split(text, &[a, b]), Ok(()), "splits {a},{b}");
            }
        }
    }

    #[test]
    fn byte_by_byte_matches_whole() {
        let cases: &[&[u8]] = &[
            "plain".as_bytes(),
            "𝄞𝄞".as_bytes(),
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
            b"\xf4\x90\x80\x80",
            b"\xc0\xaf",
            b"ab\xe2\x82",
            b"\xff",
        ];
        for &case in cases {
            let whole = feed_split(case, &[]);
            let splits: Vec<usize> = (1..case.len()).collect();
            assert_eq!(feed_split(case, &splits), whole, "{case:x?}");
            assert_eq!(
                whole.is_ok(),
                std::str::from_utf8(case).is_ok(),
                "{case:x?}"
            );
        }
    }

    /// §8.1 fail fast: a code point above U+10FFFF is rejected at its second byte.
    #[test]
    fn fails_at_the_first_bad_byte() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"ok \xf4"), Ok(()));
        assert_eq!(v.feed(b"\x90"), Err(Utf8Error));
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xed"), Ok(()));
        assert_eq!(v.feed(b"\xa0"), Err(Utf8Error), "surrogate half");
    }

    #[test]
    fn unfinished_character_at_message_end() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xe2\x82"), Ok(()));
        assert_eq!(v.finish(), Err(Utf8Error));
        assert_eq!(v.finish(), Ok(()), "finish resets for the next message");
    }
}
