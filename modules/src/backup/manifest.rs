//! The checksum file of an archive: `./sha256sum` or `./md5sum` lines (reference §7).

use super::policy::Hasher;

/// One checksum line: `<hex digest>  <relative path>` (text or `*` binary mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecksumLine {
    /// The member, normalised (`db/engine_backup.db`).
    pub member: String,
    /// Lower-case hex digest.
    pub digest: String,
}

/// Parses the checksum file of `hasher`; a malformed or unsafe line is an error naming it.
pub fn parse_checksums(hasher: Hasher, text: &str) -> Result<Vec<ChecksumLine>, String> {
    let digest_chars = match hasher {
        Hasher::Sha256sum => 64,
        Hasher::Md5sum => 32,
    };
    let file = hasher.member();
    let mut lines = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |why: &str| format!("./{file} line {}: {why}: {line:?}", index + 1);
        let (digest, rest) = line
            .split_once(' ')
            .ok_or_else(|| bad("expected `<checksum>  <path>`"))?;
        let path = rest
            .strip_prefix(' ')
            .or_else(|| rest.strip_prefix('*'))
            .ok_or_else(|| bad("expected two spaces between checksum and path"))?;
        if digest.len() != digest_chars || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(&format!("not a {file} checksum")));
        }
        let member =
            super::member::normalize(path.as_bytes()).map_err(|why| bad(&why.to_string()))?;
        lines.push(ChecksumLine {
            member,
            digest: digest.to_ascii_lowercase(),
        });
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_engine_backup_md5sum() {
        let text = "d41d8cd98f00b204e9800998ecf8427e  db/engine_backup.db\n\
                    0CC175B9C0F1B6A831C399E269772661 *files\n";
        let lines = parse_checksums(Hasher::Md5sum, text).unwrap();
        assert_eq!(lines[0].member, "db/engine_backup.db");
        assert_eq!(
            lines[1],
            ChecksumLine {
                member: "files".into(),
                digest: "0cc175b9c0f1b6a831c399e269772661".into()
            }
        );
        let sha256 = format!("{}  ./version\n", "E3B0C442".repeat(8));
        let lines = parse_checksums(Hasher::Sha256sum, &sha256).unwrap();
        assert_eq!(lines[0].digest, "e3b0c442".repeat(8));
        let error = parse_checksums(Hasher::Sha256sum, text).unwrap_err();
        assert!(
            error.contains("./sha256sum line 1: not a sha256sum checksum"),
            "{error}"
        );
    }

    #[test]
    fn names_the_bad_line() {
        let error = parse_checksums(
            Hasher::Md5sum,
            "d41d8cd98f00b204e9800998ecf8427e  version\nzz  config\n",
        )
        .unwrap_err();
        assert!(error.contains("line 2"), "{error}");
        let error = parse_checksums(Hasher::Md5sum, "d41d8cd98f00b204e9800998ecf8427e  ../x\n")
            .unwrap_err();
        assert!(error.contains(".."), "{error}");
    }
}
