//! PostgreSQL custom-format dumps of the lab's databases, as engine-backup's pg_dump makes
//! them: pg_dump's own dumps (tests/lab/data/README.md), the engine one carrying the lab's
//! engine state in the data block of its `he_lab_engine_state` table; read back with the
//! real `pg_restore`.

use crate::engine::db::EngineDb;
use flate2::write::ZlibEncoder;
use std::io::Write;
use std::path::Path;
use std::process::Command;

/// The `engine` database as pg_dump dumped it, the state table empty.
const ENGINE_TEMPLATE: &[u8] = include_bytes!("../data/engine.dump");
/// The `ovirt_engine_history` database as pg_dump dumped it.
pub const DWH_DUMP: &[u8] = include_bytes!("../data/dwh.dump");
/// The dump id of `TABLE DATA public he_lab_engine_state` in the template (`pg_restore -l`).
const STATE_DUMP_ID: u32 = 3338;
/// The table holding the state.
const STATE_TABLE: &str = "he_lab_engine_state";
/// pg_dump's block type for table data.
const BLOCK_DATA: u8 = 1;
/// What pg_dump puts after the last COPY row of a table's data.
const END_OF_COPY: &[u8] = b"\\.\n\n\n";

/// pg_dump's `WriteInt` for 4-byte integers: a sign byte, then the value, low byte first.
fn write_int(out: &mut Vec<u8>, value: u32) {
    out.push(0);
    out.extend_from_slice(&value.to_le_bytes());
}

/// The start of the state table's data block in the template.
fn state_block_start() -> usize {
    let mut marker = vec![BLOCK_DATA];
    write_int(&mut marker, STATE_DUMP_ID);
    ENGINE_TEMPLATE
        .windows(marker.len())
        .rposition(|window| window == marker)
        .expect("engine.dump holds the state table's data block")
}

/// A value as one field of COPY text: backslash, newline, carriage return and tab escaped.
fn copy_field(text: &str) -> String {
    let mut field = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => field.push_str("\\\\"),
            '\n' => field.push_str("\\n"),
            '\r' => field.push_str("\\r"),
            '\t' => field.push_str("\\t"),
            c => field.push(c),
        }
    }
    field
}

/// Reverses [`copy_field`].
fn parse_copy_field(field: &str) -> String {
    let mut text = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            text.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => text.push('\n'),
            Some('r') => text.push('\r'),
            Some('t') => text.push('\t'),
            Some(other) => text.push(other),
            None => {}
        }
    }
    text
}

/// `./db/engine_backup.db`: the engine database with `db` as the state table's one row.
pub fn engine_dump(db: &EngineDb) -> anyhow::Result<Vec<u8>> {
    let mut rows = copy_field(&serde_json::to_string(db)?).into_bytes();
    rows.push(b'\n');
    rows.extend_from_slice(END_OF_COPY);
    let mut encoder = ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&rows)?;
    let chunk = encoder.finish()?;
    let start = state_block_start();
    let mut dump = ENGINE_TEMPLATE[..start].to_vec();
    dump.push(BLOCK_DATA);
    write_int(&mut dump, STATE_DUMP_ID);
    write_int(&mut dump, u32::try_from(chunk.len())?);
    dump.extend_from_slice(&chunk);
    write_int(&mut dump, 0);
    Ok(dump)
}

/// Runs `pg_restore ARGS DUMP`; its stdout, or its own error lines.
fn pg_restore(dump: &Path, args: &[&str]) -> Result<String, String> {
    let output = Command::new("pg_restore")
        .args(args)
        .arg(dump)
        .output()
        .map_err(|e| format!("cannot run pg_restore: {e}"))?;
    let errors = String::from_utf8_lossy(&output.stderr).trim().to_string();
    if !output.status.success() || errors.to_ascii_lowercase().contains("error: ") {
        return Err(errors);
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Checks a dump is one pg_restore reads (`pg_restore -l`); the error is pg_restore's own.
pub fn check_dump(dump: &Path) -> Result<(), String> {
    pg_restore(dump, &["-l"]).map(|_| ())
}

/// Reads the engine state from a dump as engine-backup's restore reads a dump: the real
/// `pg_restore -l`, then the state table's data; the error is pg_restore's own message.
pub fn read_engine_state(dump: &Path) -> Result<EngineDb, String> {
    check_dump(dump)?;
    let sql = pg_restore(dump, &["-f", "-", "--data-only", "-t", STATE_TABLE])?;
    let copy = format!("COPY public.{STATE_TABLE} (state) FROM stdin;");
    let row = sql
        .lines()
        .skip_while(|line| *line != copy)
        .nth(1)
        .filter(|row| *row != "\\.")
        .ok_or_else(|| format!("the dump has no row in table {STATE_TABLE}"))?;
    serde_json::from_str(&parse_copy_field(row))
        .map_err(|e| format!("table {STATE_TABLE} does not hold an engine state: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_fields_round_trip() {
        let text = "a\\b\n\"c\"\td\r";
        assert_eq!(copy_field(text), "a\\\\b\\n\"c\"\\td\\r");
        assert_eq!(parse_copy_field(&copy_field(text)), text);
    }

    #[test]
    fn the_template_ends_with_the_empty_state_block() {
        let start = state_block_start();
        // Block type, dump id, one chunk, zero length.
        assert_eq!(ENGINE_TEMPLATE[start], BLOCK_DATA);
        assert!(ENGINE_TEMPLATE.starts_with(b"PGDMP"));
        assert_eq!(&ENGINE_TEMPLATE[ENGINE_TEMPLATE.len() - 5..], &[0; 5]);
    }
}
