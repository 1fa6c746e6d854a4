//! `/ovirt-engine/services`: the health servlet and pki-resource (engine-api.md section 6).

use crate::config::LabConfig;
use crate::engine::faults::ActiveFaults;
use crate::engine::http::{Reply, Request};

/// `GET /ovirt-engine/services/health`.
pub fn health(request: &Request, faults: &ActiveFaults) -> Reply {
    if request.method != "GET" {
        return Reply::html_error(405, "HTTP method POST is not supported by this URL");
    }
    if faults.never_healthy {
        return Reply::new(500, "text/html", "DB Down!");
    }
    Reply::new(200, "text/html", "DB Up!Welcome to Health Status!")
}

/// `GET /ovirt-engine/services/pki-resource?resource=..&format=..`: CA or engine certificate.
pub fn pki_resource(config: &LabConfig, request: &Request) -> Reply {
    let Some(resource) = request.query_param("resource") else {
        return Reply::html_error(400, "Missing resource name");
    };
    let (file, default_format) = match resource {
        "ca-certificate" | "qemu-ca-certificate" => ("ca.pem", "X509-PEM-CA"),
        "engine-certificate" => ("engine.pem", "X509-PEM"),
        other => return Reply::html_error(400, &format!("Resource '{other}' is invalid")),
    };
    let format = request.query_param("format").unwrap_or(default_format);
    let content_type = match format {
        "X509-PEM-CA" => "application/x-x509-ca-cert",
        "X509-PEM" => "application/x-x509-cert",
        other => return Reply::html_error(400, &format!("Format '{other}' is invalid")),
    };
    match std::fs::read_to_string(config.pki_dir().join(file)) {
        Ok(pem) => Reply::new(200, content_type, first_certificate(&pem)),
        Err(_) => Reply::html_error(500, "Cannot read certificate"),
    }
}

/// The first `CERTIFICATE` block of a PEM file, normalized to the engine's layout.
fn first_certificate(pem: &str) -> String {
    let begin = "-----BEGIN CERTIFICATE-----";
    let end = "-----END CERTIFICATE-----";
    match (pem.find(begin), pem.find(end)) {
        (Some(start), Some(stop)) if stop > start => {
            let body: String = pem[start + begin.len()..stop]
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            let mut out = format!("{begin}\n");
            for chunk in body.as_bytes().chunks(76) {
                out.push_str(&String::from_utf8_lossy(chunk));
                out.push('\n');
            }
            out.push_str(end);
            out.push('\n');
            out
        }
        _ => pem.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewraps_certificates_at_76_columns() {
        let base64 = "A".repeat(100);
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n{}\n-----END CERTIFICATE-----\n",
            &base64[..64],
            &base64[64..]
        );
        let out = first_certificate(&pem);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[1].len(), 76);
        assert_eq!(lines[2].len(), 24);
        assert_eq!(lines[3], "-----END CERTIFICATE-----");
    }
}
