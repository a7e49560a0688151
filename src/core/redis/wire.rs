//! RESP replies for the JS-thread connection (napi-free): the read buffer, frame decoding with the
//! `redis-protocol` crate (never hand-written), and what a reply means for our error codes.
//!
//! Commands are encoded by the `redis` crate (`Cmd::write_packed_command`); this module only reads.

use redis_protocol::resp2::decode::decode_range;
use redis_protocol::resp2::types::RangeFrame;

use crate::error::AdapterError;

/// One decoded reply, owning its bytes (so the read buffer can be drained before JS runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Nil,
    Int(i64),
    Bulk(Vec<u8>),
    Simple(String),
    /// `-ERR ...` reply: only this command failed; the connection stays usable.
    Error(String),
    Array(Vec<Reply>),
}

impl Reply {
    fn from_range(buf: &[u8], f: &RangeFrame) -> Reply {
        match f {
            RangeFrame::Null => Reply::Nil,
            RangeFrame::Integer(i) => Reply::Int(*i),
            RangeFrame::BulkString((s, e)) => Reply::Bulk(buf[*s..*e].to_vec()),
            RangeFrame::SimpleString((s, e)) => Reply::Simple(String::from_utf8_lossy(&buf[*s..*e]).into_owned()),
            RangeFrame::Error((s, e)) => Reply::Error(String::from_utf8_lossy(&buf[*s..*e]).into_owned()),
            RangeFrame::Array(items) => Reply::Array(items.iter().map(|i| Reply::from_range(buf, i)).collect()),
        }
    }

    /// The error code of an error reply (its first word, e.g. `WRONGTYPE`, `NOSCRIPT`).
    pub fn error_code(&self) -> Option<&str> {
        match self {
            Reply::Error(m) => Some(m.split(' ').next().unwrap_or("")),
            _ => None,
        }
    }
}

/// Our error for a server error reply: credentials problems are `MOTIA_AUTH`, the rest `MOTIA_BACKEND`.
pub fn server_error(message: &str) -> AdapterError {
    let code = message.split(' ').next().unwrap_or("");
    if matches!(code, "WRONGPASS" | "NOAUTH" | "NOPERM") || message.starts_with("ERR invalid password") {
        AdapterError::Auth(format!("Redis rejected the credentials: {message}"))
    } else {
        AdapterError::Backend(format!("Redis error: {message}"))
    }
}

/// Bytes read from the socket and not yet decoded: `buf[start..end]`. The vector is kept at its
/// full (zero-initialised) length so a read never pays for zeroing.
#[derive(Debug, Default)]
pub struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

/// Bytes asked from the socket per read call.
pub const READ_CHUNK: usize = 64 * 1024;

impl ReadBuf {
    /// Spare room at the end for the next `read` (at least `READ_CHUNK` bytes).
    pub fn spare(&mut self) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.buf.len() - self.end < READ_CHUNK {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() - self.end < READ_CHUNK {
                let want = (self.end + READ_CHUNK).max(self.buf.len() * 2);
                self.buf.resize(want, 0);
            }
        }
        &mut self.buf[self.end..]
    }

    /// After a read of `n` bytes into [`ReadBuf::spare`].
    pub fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Drops whatever was buffered (the connection is gone); a huge buffer is released.
    pub fn reset(&mut self) {
        self.start = 0;
        self.end = 0;
        if self.buf.len() > 4 * READ_CHUNK {
            self.buf = Vec::new();
        }
    }

    /// The next complete reply, `Ok(None)` if more bytes are needed, `Err` on a protocol error.
    pub fn next_reply(&mut self) -> Result<Option<Reply>, String> {
        let data = &self.buf[self.start..self.end];
        if data.is_empty() {
            return Ok(None);
        }
        match decode_range(data) {
            Ok(Some((frame, used))) => {
                let reply = Reply::from_range(data, &frame);
                self.start += used;
                Ok(Some(reply))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(format!("{e:?}")),
        }
    }

    /// Appends bytes (tests and TLS plaintext).
    pub fn extend(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            let spare = self.spare();
            let n = spare.len().min(rest.len());
            spare[..n].copy_from_slice(&rest[..n]);
            self.filled(n);
            rest = &rest[n..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_kind_and_waits_for_partial_frames() {
        let mut r = ReadBuf::default();
        r.extend(b"+OK\r\n:42\r\n$-1\r\n-WRONGTYPE Operation against a key\r\n*2\r\n$1\r\na\r\n$2\r\nb");
        assert_eq!(r.next_reply().unwrap(), Some(Reply::Simple("OK".into())));
        assert_eq!(r.next_reply().unwrap(), Some(Reply::Int(42)));
        assert_eq!(r.next_reply().unwrap(), Some(Reply::Nil));
        let e = r.next_reply().unwrap().unwrap();
        assert_eq!(e.error_code(), Some("WRONGTYPE"));
        assert_eq!(r.next_reply().unwrap(), None); // array incomplete
        r.extend(b"c\r\n");
        assert_eq!(
            r.next_reply().unwrap(),
            Some(Reply::Array(vec![
                Reply::Bulk(b"a".to_vec()),
                Reply::Bulk(b"bc".to_vec())
            ]))
        );
        assert!(r.is_empty());
    }

    #[test]
    fn spare_and_filled_keep_only_what_was_read() {
        let mut r = ReadBuf::default();
        let spare = r.spare();
        assert!(spare.len() >= READ_CHUNK);
        spare[..5].copy_from_slice(b"$1\r\nx");
        r.filled(5);
        assert_eq!(r.next_reply().unwrap(), None);
        r.spare()[..2].copy_from_slice(b"\r\n");
        r.filled(2);
        assert_eq!(r.next_reply().unwrap(), Some(Reply::Bulk(b"x".to_vec())));
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        let mut r = ReadBuf::default();
        r.extend(b"HTTP/1.1 400\r\n");
        assert!(r.next_reply().is_err());
    }

    #[test]
    fn auth_errors_are_classified() {
        assert_eq!(
            server_error("WRONGPASS invalid username-password pair").code(),
            "MOTIA_AUTH"
        );
        assert_eq!(server_error("NOAUTH Authentication required.").code(), "MOTIA_AUTH");
        assert_eq!(server_error("WRONGTYPE Operation").code(), "MOTIA_BACKEND");
    }
}
