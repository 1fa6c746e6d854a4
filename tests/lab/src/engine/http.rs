//! Transport-neutral request and reply values the engine's handlers work on.

use std::collections::BTreeMap;

/// One HTTP request as the handlers see it.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path without matrix parameters, e.g. `/ovirt-engine/api/storagedomains/SD/disks`.
    pub path: String,
    /// Matrix parameters found on any path segment (`;unregistered`), keys lowercased.
    pub matrix: BTreeMap<String, String>,
    /// Query parameters, decoded.
    pub query: Vec<(String, String)>,
    /// Headers with lowercased names.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
    /// Whether it came over TLS.
    pub https: bool,
}

impl Request {
    /// Builds a request from a raw target (`/path;m=1?q=2`).
    pub fn new(method: &str, target: &str, headers: Vec<(String, String)>, body: Vec<u8>) -> Self {
        let (raw_path, raw_query) = target.split_once('?').unwrap_or((target, ""));
        let mut matrix = BTreeMap::new();
        let mut segments = Vec::new();
        for segment in raw_path.split('/') {
            let mut parts = segment.split(';');
            segments.push(percent_decode(parts.next().unwrap_or("")));
            for parameter in parts {
                let (key, value) = parameter.split_once('=').unwrap_or((parameter, ""));
                matrix.insert(percent_decode(key).to_lowercase(), percent_decode(value));
            }
        }
        let mut path = segments.join("/");
        while path.len() > 1 && path.ends_with('/') {
            path.pop();
        }
        Request {
            method: method.to_uppercase(),
            path,
            matrix,
            query: parse_form(raw_query),
            headers: headers
                .into_iter()
                .map(|(name, value)| (name.to_lowercase(), value))
                .collect(),
            body,
            https: false,
        }
    }

    /// The first header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim())
    }

    /// The first query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The cookie `name` from the Cookie header(s).
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(key, _)| key == "cookie")
            .flat_map(|(_, value)| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_string())
    }

    /// The body as UTF-8 text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Decodes `application/x-www-form-urlencoded` text into pairs.
pub fn parse_form(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode(&key.replace('+', " ")),
                percent_decode(&value.replace('+', " ")),
            )
        })
        .collect()
}

/// Decodes `%XX` escapes (invalid escapes are kept as they are).
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' && index + 2 < bytes.len() {
            let hex = |byte: u8| (byte as char).to_digit(16);
            if let (Some(high), Some(low)) = (hex(bytes[index + 1]), hex(bytes[index + 2])) {
                out.push((high * 16 + low) as u8);
                index += 3;
                continue;
            }
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a handler answers; `reset` asks the transport to drop the connection instead.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// Extra headers (Content-Type included).
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
    /// Drop the connection without answering.
    pub reset: bool,
}

impl Reply {
    /// A reply with a body of the given content type.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
            reset: false,
        }
    }

    /// An XML reply.
    pub fn xml(status: u16, body: String) -> Reply {
        Reply::new(status, "application/xml;charset=UTF-8", body)
    }

    /// A JSON reply.
    pub fn json(status: u16, value: &serde_json::Value) -> Reply {
        Reply::new(status, "application/json", value.to_string())
    }

    /// A reply without body (e.g. the engine's 404 for an unknown id).
    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            ..Reply::default()
        }
    }

    /// The servlet container's HTML error page.
    pub fn html_error(status: u16, message: &str) -> Reply {
        let reason = reason_phrase(status);
        let body = format!(
            "<html><head><title>JBoss Web/7.0.13.Final - Error report</title></head><body><h1>HTTP Status {status} - {}</h1><p><b>type</b> Status report</p><p><b>message</b> <u>{}</u></p><p><b>description</b> <u>{reason}</u></p></body></html>",
            crate::engine::xml::escape(message),
            crate::engine::xml::escape(message),
        );
        Reply::new(status, "text/html;charset=utf-8", body)
    }

    /// Drops the connection without an answer.
    pub fn connection_reset() -> Reply {
        Reply {
            reset: true,
            ..Reply::default()
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The body as text (tests and logs).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Standard reason phrase of a status code.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_matrix_and_query_parameters() {
        let request = Request::new(
            "get",
            "/ovirt-engine/api/storagedomains/sd1/disks;case_sensitive=True;unregistered=True?search=name%3Dh1&all_content=true",
            vec![("Version".into(), "3".into())],
            vec![],
        );
        assert_eq!(request.path, "/ovirt-engine/api/storagedomains/sd1/disks");
        assert_eq!(
            request.matrix.get("unregistered").map(String::as_str),
            Some("True")
        );
        assert_eq!(request.query_param("search"), Some("name=h1"));
        assert_eq!(request.header("version"), Some("3"));
        assert_eq!(request.method, "GET");
    }

    #[test]
    fn decodes_forms() {
        let form = parse_form("username=admin%40internal&password=p%40ss+word&x");
        assert_eq!(form[0], ("username".into(), "admin@internal".into()));
        assert_eq!(form[1], ("password".into(), "p@ss word".into()));
        assert_eq!(form[2], ("x".into(), "".into()));
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }
}
