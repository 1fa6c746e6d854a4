//! STOMP 1.2 frames as vdsm's `yajsonrpc/stomp.py` writes and parses them: a command line,
//! `name:value` header lines (with `\c \n \r \\` escapes), a blank line, the body, NUL.

use std::io::{BufRead, Write};

/// Largest frame the client accepts (vdsm answers are JSON of a few KiB; a bad peer must not
/// make the module allocate without bound).
pub const MAX_FRAME_BYTES: usize = 64 << 20;

/// One STOMP frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// `CONNECT`, `SEND`, `MESSAGE`, `ERROR`, ...
    pub command: String,
    /// Headers in the order they were written; the first of repeated names wins on lookup.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

/// A frame that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The connection failed or timed out.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection (possibly in the middle of a frame).
    #[error("the connection was closed{}", if *.mid_frame { " in the middle of a frame" } else { "" })]
    Closed { mid_frame: bool },
    /// The bytes are not a STOMP frame.
    #[error("malformed STOMP frame: {0}")]
    Malformed(String),
}

impl Frame {
    /// A frame with `command`, `headers` and `body`.
    pub fn new(command: &str, headers: &[(&str, &str)], body: &[u8]) -> Self {
        Frame {
            command: command.to_string(),
            headers: headers
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            body: body.to_vec(),
        }
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The frame's bytes; a non-empty body gets a `content-length` header, as vdsm's do.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 128);
        out.extend_from_slice(self.command.as_bytes());
        out.push(b'\n');
        let has_length = self.headers.iter().any(|(key, _)| key == "content-length");
        for (key, value) in &self.headers {
            out.extend_from_slice(escape(key).as_bytes());
            out.push(b':');
            out.extend_from_slice(escape(value).as_bytes());
            out.push(b'\n');
        }
        if !has_length && !self.body.is_empty() {
            out.extend_from_slice(format!("content-length:{}\n", self.body.len()).as_bytes());
        }
        out.push(b'\n');
        out.extend_from_slice(&self.body);
        out.push(0);
        out
    }

    /// Writes the frame.
    pub fn write_to(&self, writer: &mut impl Write) -> std::io::Result<()> {
        writer.write_all(&self.encode())?;
        writer.flush()
    }

    /// Reads the next frame, skipping heart-beat newlines between frames.
    pub fn read_from(reader: &mut impl BufRead) -> Result<Frame, FrameError> {
        let command = loop {
            let line = read_line(reader, false)?;
            if !line.is_empty() {
                break line;
            }
        };
        let mut headers = Vec::new();
        loop {
            let line = read_line(reader, true)?;
            if line.is_empty() {
                break;
            }
            let (key, value) = line
                .split_once(':')
                .ok_or_else(|| FrameError::Malformed(format!("header line without ':': {line}")))?;
            headers.push((unescape(key)?, unescape(value)?));
        }
        let mut frame = Frame {
            command,
            headers,
            body: Vec::new(),
        };
        match frame.header("content-length") {
            Some(text) => {
                let length: usize = text.trim().parse().map_err(|_| {
                    FrameError::Malformed(format!("content-length '{text}' is not a number"))
                })?;
                if length > MAX_FRAME_BYTES {
                    return Err(FrameError::Malformed(format!(
                        "a body of {length} bytes is larger than {MAX_FRAME_BYTES}"
                    )));
                }
                let mut body = vec![0; length + 1];
                reader.read_exact(&mut body).map_err(mid_frame)?;
                if body.pop() != Some(0) {
                    return Err(FrameError::Malformed(
                        "the body does not end with NUL after content-length bytes".into(),
                    ));
                }
                frame.body = body;
            }
            None => {
                let mut body = Vec::new();
                std::io::Read::take(&mut *reader, MAX_FRAME_BYTES as u64 + 1)
                    .read_until(0, &mut body)
                    .map_err(mid_frame)?;
                if body.pop() != Some(0) {
                    return Err(FrameError::Closed { mid_frame: true });
                }
                frame.body = body;
            }
        }
        Ok(frame)
    }
}

fn mid_frame(error: std::io::Error) -> FrameError {
    if error.kind() == std::io::ErrorKind::UnexpectedEof {
        FrameError::Closed { mid_frame: true }
    } else {
        FrameError::Io(error)
    }
}

/// One line without its `\n` (and a `\r` before it); EOF before any byte of a frame is a
/// clean close, EOF inside one is not.
fn read_line(reader: &mut impl BufRead, in_frame: bool) -> Result<String, FrameError> {
    let mut line = Vec::new();
    std::io::Read::take(&mut *reader, MAX_FRAME_BYTES as u64).read_until(b'\n', &mut line)?;
    if line.last() != Some(&b'\n') {
        return Err(FrameError::Closed {
            mid_frame: in_frame || !line.is_empty(),
        });
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| FrameError::Malformed("a line is not UTF-8".into()))
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '\\' => out.push_str("\\\\"),
            ':' => out.push_str("\\c"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            other => out.push(other),
        }
    }
    out
}

fn unescape(text: &str) -> Result<String, FrameError> {
    let mut out = String::with_capacity(text.len());
    let mut characters = text.chars();
    while let Some(character) = characters.next() {
        if character != '\\' {
            out.push(character);
            continue;
        }
        match characters.next() {
            Some('\\') => out.push('\\'),
            Some('c') => out.push(':'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            other => {
                return Err(FrameError::Malformed(format!(
                    "invalid escape sequence \\{}",
                    other.map(String::from).unwrap_or_default()
                )))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Result<Frame, FrameError> {
        Frame::read_from(&mut std::io::BufReader::new(bytes))
    }

    #[test]
    fn encodes_like_vdsm_with_content_length_and_escapes() {
        let frame = Frame::new("SEND", &[("destination", "a:b")], b"{}");
        assert_eq!(
            frame.encode(),
            b"SEND\ndestination:a\\cb\ncontent-length:2\n\n{}\0".to_vec()
        );
        assert_eq!(
            Frame::new("SUBSCRIBE", &[("id", "1")], b"").encode(),
            b"SUBSCRIBE\nid:1\n\n\0".to_vec()
        );
    }

    #[test]
    fn reads_frames_after_heart_beats_with_or_without_length() {
        let mut reader = std::io::BufReader::new(
            &b"\n\r\nMESSAGE\r\nsubscription:s\\c1\ncontent-length:3\n\na\0b\0CONNECTED\nversion:1.2\n\n\0"[..],
        );
        let first = Frame::read_from(&mut reader).unwrap();
        assert_eq!(first.command, "MESSAGE");
        assert_eq!(first.header("subscription"), Some("s:1"));
        assert_eq!(first.body, b"a\0b");
        let second = Frame::read_from(&mut reader).unwrap();
        assert_eq!(
            (second.command.as_str(), second.body.len()),
            ("CONNECTED", 0)
        );
        assert!(matches!(
            Frame::read_from(&mut reader),
            Err(FrameError::Closed { mid_frame: false })
        ));
    }

    #[test]
    fn a_frame_cut_short_is_a_close_in_the_middle_of_a_frame() {
        for bytes in [
            &b"MESSAGE\ncontent-len"[..],
            b"MESSAGE\ncontent-length:10\n\n{\"a\"",
            b"ERROR\n\nno nul",
        ] {
            let error = read(bytes).unwrap_err();
            assert!(
                matches!(error, FrameError::Closed { mid_frame: true }),
                "{error:?}"
            );
        }
    }

    #[test]
    fn rejects_bad_lengths_and_escapes() {
        assert!(matches!(
            read(b"MESSAGE\ncontent-length:x\n\n\0"),
            Err(FrameError::Malformed(_))
        ));
        assert!(matches!(
            read(b"MESSAGE\ncontent-length:1\n\nab\0"),
            Err(FrameError::Malformed(_))
        ));
        assert!(matches!(
            read(b"MESSAGE\nk:\\t\n\n\0"),
            Err(FrameError::Malformed(_))
        ));
    }
}
