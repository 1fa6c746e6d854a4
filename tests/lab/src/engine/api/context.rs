//! Per-request API context: which dialect (v3 or v4) and base href, the database as the
//! client sees it, and the helpers every resource uses to print shared shapes.

use crate::config::LabConfig;
use crate::engine::db::EngineDb;
use crate::engine::faults::ActiveFaults;
use crate::engine::http::{Reply, Request};
use crate::engine::xml::XmlWriter;

/// The dialect of one API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialect {
    /// v3 shapes (attributes for versions, `<status><state>`) instead of v4.
    pub v3: bool,
    /// Href prefix: `/ovirt-engine/api` or `/ovirt-engine/api/v3`.
    pub base: String,
}

impl Dialect {
    /// `base/rel`.
    pub fn href(&self, rel: &str) -> String {
        if rel.is_empty() {
            self.base.clone()
        } else {
            format!("{}/{rel}", self.base)
        }
    }

    /// `<status>value</status>` (v4) or `<status><state>value</state></status>` (v3).
    pub fn status(&self, xml: &mut XmlWriter, tag: &str, value: &str) {
        if self.v3 {
            xml.open(tag, &[]).leaf("state", value).close(tag);
        } else {
            xml.leaf(tag, value);
        }
    }

    /// A compatibility version: attributes in v3, child elements in v4.
    pub fn version(&self, xml: &mut XmlWriter, major: u32, minor: u32) {
        if self.v3 {
            xml.empty(
                "version",
                &[("major", &major.to_string()), ("minor", &minor.to_string())],
            );
        } else {
            xml.open("version", &[])
                .leaf("major", major)
                .leaf("minor", minor)
                .close("version");
        }
    }

    /// `<tag href=".." id=".."/>`, a reference to another entity.
    pub fn reference(&self, xml: &mut XmlWriter, tag: &str, collection: &str, id: &str) {
        xml.empty(
            tag,
            &[
                ("href", &self.href(&format!("{collection}/{id}"))),
                ("id", id),
            ],
        );
    }

    /// The `<action>` document of a completed action or delete.
    pub fn action_complete(&self) -> Reply {
        let mut xml = XmlWriter::new();
        xml.open("action", &[]);
        self.status(&mut xml, "status", "complete");
        xml.close("action");
        Reply::xml(200, xml.finish())
    }
}

/// Everything a resource handler needs for one request.
pub struct ApiCall<'a> {
    /// The lab (paths, ids).
    pub config: &'a LabConfig,
    /// The persisted database; handlers that change it set `dirty`.
    pub db: &'a mut EngineDb,
    /// The database as clients see it now (faults applied, finished disks unlocked).
    pub view: EngineDb,
    /// Faults on for this request.
    pub faults: ActiveFaults,
    /// Dialect and hrefs.
    pub dialect: Dialect,
    /// The request.
    pub request: &'a Request,
    /// Now, epoch ms.
    pub now_ms: u64,
    /// Whether `db` must be saved.
    pub dirty: bool,
    /// A disk whose creation the client wants to wait for (`Expect: 201-created`).
    pub wait_for_disk: Option<String>,
}

impl ApiCall<'_> {
    /// Whether the client asked for `All-Content: true` / `?all_content=true`.
    pub fn all_content(&self) -> bool {
        self.request
            .header("all-content")
            .or_else(|| self.request.query_param("all_content"))
            .map(|value| value.eq_ignore_ascii_case("true"))
            .unwrap_or(false)
    }

    /// Whether a (matrix or query) boolean parameter is on; present without value = true.
    pub fn flag(&self, name: &str) -> bool {
        let query = if self.view.api_versions.contains(&4) {
            self.request.query_param(name)
        } else {
            // A 3.6 engine honours only the matrix form (engine-api.md part 2 section 7).
            None
        };
        match self.request.matrix.get(name).map(String::as_str).or(query) {
            Some(value) => value.is_empty() || value.eq_ignore_ascii_case("true"),
            None => false,
        }
    }

    /// The client asked to block until asynchronous work finished (`Expect: 201-created`).
    pub fn expects_created(&self) -> bool {
        [
            self.request.header("expect"),
            self.request.header("x-ovirt-expect"),
        ]
        .into_iter()
        .flatten()
        .any(|value| value.eq_ignore_ascii_case("201-created"))
    }
}

/// A `<fault>` document with its status code (engine-api.md section 5).
pub fn fault(status: u16, reason: &str, detail: &str) -> Reply {
    let mut xml = XmlWriter::new();
    xml.open("fault", &[])
        .leaf("reason", reason)
        .leaf("detail", detail)
        .close("fault");
    Reply::xml(status, xml.finish())
}

/// 400 `Operation Failed` with a bracketed validation message.
pub fn operation_failed(status: u16, message: &str) -> Reply {
    fault(status, "Operation Failed", &format!("[{message}]"))
}

/// 400 `Incomplete parameters`: `Disk [provisionedSize|size, format] required for add`.
pub fn incomplete(entity: &str, missing: &[&str], action: &str) -> Reply {
    fault(
        400,
        "Incomplete parameters",
        &format!("{entity} [{}] required for {action}", missing.join(", ")),
    )
}

/// The engine's answer for an unknown id or path: 404 with no body.
pub fn not_found() -> Reply {
    Reply::empty(404)
}

/// 405 for a method a resource does not have.
pub fn method_not_allowed() -> Reply {
    Reply::empty(405)
}

/// Matches a search query (`name=foo and status=up`, `*` wildcards) against the fields an
/// entity exposes through `field`; an unknown field is an error fault.
pub fn search_matches(
    query: Option<&str>,
    field: impl Fn(&str) -> Option<String>,
) -> Result<bool, Reply> {
    let Some(query) = query.map(str::trim).filter(|q| !q.is_empty()) else {
        return Ok(true);
    };
    for clause in query.split(" and ") {
        let Some((name, wanted)) = clause.split_once('=') else {
            return Err(fault(
                400,
                "Operation Failed",
                &format!("[Search query '{query}' is not valid.]"),
            ));
        };
        let name = name.trim().to_lowercase();
        let wanted = wanted.trim().trim_matches('"');
        let Some(actual) = field(&name) else {
            return Err(fault(
                400,
                "Operation Failed",
                &format!("[Search query '{query}' is not valid.]"),
            ));
        };
        if !wildcard_match(&wanted.to_lowercase(), &actual.to_lowercase()) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `*` matches any run of characters.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (index, part) in parts.iter().enumerate() {
        if index == 0 {
            if !rest.starts_with(part) {
                return false;
            }
            rest = &rest[part.len()..];
        } else if index == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(found) = rest.find(part) {
            rest = &rest[found + part.len()..];
        } else {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_supports_equality_wildcards_and_conjunctions() {
        let field = |name: &str| match name {
            "name" => Some("host1.lab".to_string()),
            "status" => Some("up".to_string()),
            _ => None,
        };
        assert!(search_matches(None, field).unwrap());
        assert!(search_matches(Some("name=host1.lab"), field).unwrap());
        assert!(search_matches(Some("name=host*"), field).unwrap());
        assert!(search_matches(Some("name=host1.lab and status=up"), field).unwrap());
        assert!(!search_matches(Some("name=other"), field).unwrap());
        assert!(search_matches(Some("colour=red"), field).is_err());
    }
}
