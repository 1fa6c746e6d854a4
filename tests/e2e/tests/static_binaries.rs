//! The shipped module binaries need nothing from the host: fully static (no ELF interpreter,
//! no shared library), stripped, at most 8 MiB, and each answers Ansible (an args file in, one
//! JSON document out) inside an empty chroot that holds only the binary and its args file.
//! This is what lets them run on EL7 hosts (glibc 2.17) as on any later one.

use goblin::elf::program_header::PT_INTERP;
use goblin::elf::Elf;
use he_e2e::{collections_path, repo_root};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;

/// The modules' names, from their sources (`modules/src/bin/he_*.rs`).
fn module_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo_root().join("modules/src/bin"))
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter_map(|name| name.strip_suffix(".rs").map(str::to_string))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no module sources");
    names
}

/// Each module's binary as the installed collection ships it.
fn shipped_binaries() -> Vec<(String, PathBuf)> {
    let dir = collections_path().join("ansible_collections/ovirt_he/upgrade/plugins/modules");
    module_names()
        .into_iter()
        .map(|name| {
            let path = dir.join(&name);
            assert!(path.is_file(), "{} is not shipped", path.display());
            (name, path)
        })
        .collect()
}

#[test]
fn every_shipped_module_is_static_stripped_and_at_most_8_mib() {
    for (name, path) in shipped_binaries() {
        let bytes = std::fs::read(&path).unwrap();
        println!("{name}: {} bytes", bytes.len());
        assert!(
            bytes.len() <= 8 << 20,
            "{name} is {} bytes, over 8 MiB",
            bytes.len()
        );
        let elf = Elf::parse(&bytes).unwrap_or_else(|e| panic!("{name} is no ELF file: {e}"));
        assert!(
            elf.program_headers.iter().all(|h| h.p_type != PT_INTERP),
            "{name} asks for the ELF interpreter {:?}",
            elf.interpreter
        );
        assert!(
            elf.libraries.is_empty(),
            "{name} needs the shared libraries {:?}",
            elf.libraries
        );
        let sections: Vec<&str> = elf
            .section_headers
            .iter()
            .filter_map(|section| elf.shdr_strtab.get_at(section.sh_name))
            .collect();
        assert!(
            !sections
                .iter()
                .any(|s| *s == ".symtab" || s.starts_with(".debug")),
            "{name} is not stripped: {sections:?}"
        );
    }
}

#[test]
fn every_shipped_module_answers_in_an_empty_chroot() {
    for (name, path) in shipped_binaries() {
        let root = tempfile::tempdir().unwrap();
        std::fs::copy(&path, root.path().join(&name)).unwrap();
        let args = json!({"no_such_option": true, "_ansible_check_mode": true});
        std::fs::write(root.path().join("args.json"), args.to_string()).unwrap();
        let output = Command::new("/usr/sbin/chroot")
            .arg(root.path())
            .arg(format!("/{name}"))
            .arg("/args.json")
            // Nothing from here either: no PATH, no locale, no HOME.
            .env_clear()
            .output()
            .expect("chroot runs (as root)");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let documents: Vec<Value> = serde_json::Deserializer::from_str(&stdout)
            .into_iter::<Value>()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{name} printed more than JSON ({e}):\n{stdout}"));
        assert_eq!(
            documents.len(),
            1,
            "{name} must print one JSON document:\n{stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let result = &documents[0];
        assert_eq!(result["failed"], json!(true), "{name}: {result}");
        let message = result["msg"].as_str().unwrap_or_default();
        assert!(
            message.contains("unsupported option `no_such_option`"),
            "{name}: {result}"
        );
    }
}
