//! STOMP 1.2 frames as vdsm writes and parses them (`yajsonrpc/stomp.py`): an incremental
//! parser fed with whatever bytes arrived, and frames encoded with vdsm's header order.

/// Largest frame the lab accepts before calling the peer broken.
pub const MAX_FRAME_BYTES: usize = 64 << 20;

/// One frame. `body: None` is vdsm's "no body" (no `content-length` header is written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Command line.
    pub command: String,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
    /// Body, if any.
    pub body: Option<Vec<u8>>,
}

impl Frame {
    /// A frame with `headers` and an optional body.
    pub fn new(command: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Self {
        Frame {
            command: command.into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.map(<[u8]>::to_vec),
        }
    }

    /// First value of header `name` (vdsm keeps the first of repeated headers).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// vdsm's `Frame.encode`: `content-length` set (in place, or appended) when there is a
    /// body, values escaped, then the body and NUL.
    pub fn encode(&self) -> Vec<u8> {
        let mut headers = self.headers.clone();
        if let Some(body) = &self.body {
            let length = body.len().to_string();
            match headers.iter_mut().find(|(k, _)| k == "content-length") {
                Some(entry) => entry.1 = length,
                None => headers.push(("content-length".into(), length)),
            }
        }
        let mut out = Vec::new();
        out.extend_from_slice(escape(&self.command).as_bytes());
        out.push(b'\n');
        for (key, value) in &headers {
            out.extend_from_slice(escape(key).as_bytes());
            out.push(b':');
            out.extend_from_slice(escape(value).as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
        if let Some(body) = &self.body {
            out.extend_from_slice(body);
        }
        out.push(0);
        out
    }
}

/// vdsm's `Parser`: bytes in, frames out; blank lines between frames are heart-beats.
#[derive(Debug, Default)]
pub struct Parser {
    buffer: Vec<u8>,
}

impl Parser {
    /// Adds received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buffer.extend_from_slice(data);
    }

    /// Whether a partial frame is buffered.
    pub fn in_frame(&self) -> bool {
        self.buffer.iter().any(|b| *b != b'\n' && *b != b'\r')
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, String> {
        while self.buffer.first() == Some(&b'\n') || self.buffer.starts_with(b"\r\n") {
            let skip = if self.buffer[0] == b'\n' { 1 } else { 2 };
            self.buffer.drain(..skip);
        }
        let Some(header_end) = find(&self.buffer, b"\n\n")
            .map(|i| (i, 2))
            .into_iter()
            .chain(find(&self.buffer, b"\n\r\n").map(|i| (i, 3)))
            .min_by_key(|(i, _)| *i)
        else {
            return self.check_size();
        };
        let head = String::from_utf8(self.buffer[..header_end.0].to_vec())
            .map_err(|_| "a frame head is not UTF-8".to_string())?;
        let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        let command = unescape(lines.next().unwrap_or_default())?;
        let mut headers = Vec::new();
        for line in lines {
            let (key, value) = line
                .split_once(':')
                .ok_or_else(|| format!("header line without ':': {line}"))?;
            headers.push((unescape(key)?, unescape(value)?));
        }
        let body_start = header_end.0 + header_end.1;
        let mut frame = Frame {
            command,
            headers,
            body: None,
        };
        let end = match frame.header("content-length") {
            Some(text) => {
                let length: usize = text
                    .parse()
                    .map_err(|_| format!("content-length '{text}' is not a number"))?;
                if self.buffer.len() < body_start + length + 1 {
                    return self.check_size();
                }
                if self.buffer[body_start + length] != 0 {
                    return Err("Frame end is missing \\0".into());
                }
                body_start + length
            }
            None => match self.buffer[body_start..].iter().position(|b| *b == 0) {
                Some(offset) => body_start + offset,
                None => return self.check_size(),
            },
        };
        frame.body = Some(self.buffer[body_start..end].to_vec());
        self.buffer.drain(..=end);
        Ok(Some(frame))
    }

    fn check_size(&self) -> Result<Option<Frame>, String> {
        if self.buffer.len() > MAX_FRAME_BYTES {
            Err(format!("a frame larger than {MAX_FRAME_BYTES} bytes"))
        } else {
            Ok(None)
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace(':', "\\c")
        .replace('\r', "\\r")
        .replace('\n', "\\n")
}

fn unescape(text: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut characters = text.chars();
    while let Some(character) = characters.next() {
        if character != '\\' {
            out.push(character);
            continue;
        }
        out.push(match characters.next() {
            Some('\\') => '\\',
            Some('c') => ':',
            Some('n') => '\n',
            Some('r') => '\r',
            other => {
                return Err(format!(
                    "Containes invalid escape squence `\\{}`",
                    other.map(String::from).unwrap_or_default()
                ))
            }
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_frames_split_anywhere_with_heart_beats_between() {
        let bytes = b"\nCONNECT\r\naccept-version:1.2\nheart-beat:0,5000\n\n\0\nSEND\ndestination:a\\cb\ncontent-length:3\n\nx\0y\0";
        for split in 0..bytes.len() {
            let mut parser = Parser::default();
            let mut frames = Vec::new();
            for part in [&bytes[..split], &bytes[split..]] {
                parser.push(part);
                while let Some(frame) = parser.next_frame().unwrap() {
                    frames.push(frame);
                }
            }
            assert_eq!(frames.len(), 2, "split at {split}");
            assert_eq!(frames[0].header("heart-beat"), Some("0,5000"));
            assert_eq!(frames[1].header("destination"), Some("a:b"));
            assert_eq!(frames[1].body.as_deref(), Some(&b"x\0y"[..]));
        }
    }

    #[test]
    fn encodes_like_vdsm() {
        assert_eq!(
            Frame::new("ERROR", &[], Some(b"Version unsupported")).encode(),
            b"ERROR\ncontent-length:19\n\nVersion unsupported\0"
        );
        assert_eq!(
            Frame::new(
                "CONNECTED",
                &[("version", "1.2"), ("heart-beat", "0,0")],
                None
            )
            .encode(),
            b"CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0"
        );
    }
}
