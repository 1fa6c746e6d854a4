//! The modules' user-facing contract holds: each sidecar doc lists exactly the options its
//! binary parses (names, types, required, defaults, choices, list elements, no_log), and
//! every binary stays a thin story over the library.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every module binary, with the path cargo built it at.
const MODULES: [(&str, &str); 10] = [
    ("he_backup_disk", env!("CARGO_BIN_EXE_he_backup_disk")),
    ("he_boot_and_wait", env!("CARGO_BIN_EXE_he_boot_and_wait")),
    ("he_cloudinit", env!("CARGO_BIN_EXE_he_cloudinit")),
    ("he_image_copy", env!("CARGO_BIN_EXE_he_image_copy")),
    ("he_inject_backup", env!("CARGO_BIN_EXE_he_inject_backup")),
    (
        "he_maintenance_facts",
        env!("CARGO_BIN_EXE_he_maintenance_facts"),
    ),
    ("he_preflight", env!("CARGO_BIN_EXE_he_preflight")),
    ("he_register_disk", env!("CARGO_BIN_EXE_he_register_disk")),
    ("he_spm_facts", env!("CARGO_BIN_EXE_he_spm_facts")),
    ("he_upgrade_plan", env!("CARGO_BIN_EXE_he_upgrade_plan")),
];

/// The longest a module binary may be.
const MAX_BINARY_LINES: usize = 150;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// File stems under `dir` with extension `extension`, sorted.
fn stems(dir: &Path, extension: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == extension))
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// One option as either side describes it, normalised for comparison.
#[derive(Debug, Clone, PartialEq)]
struct Described {
    kind: String,
    required: bool,
    default: Option<Value>,
    choices: Option<Vec<String>>,
    elements: Option<String>,
    no_log: bool,
}

/// What the binary says it parses (`MODULE --option-spec`).
fn parsed_options(binary: &str) -> BTreeMap<String, Described> {
    let output = Command::new(binary).arg("--option-spec").output().unwrap();
    assert!(output.status.success(), "{binary} --option-spec failed");
    let spec: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    spec.iter()
        .map(|option| {
            let described = Described {
                kind: option["type"].as_str().unwrap().to_string(),
                required: option["required"].as_bool().unwrap(),
                default: option.get("default").map(number_as_float),
                choices: option.get("choices").map(choice_names),
                elements: option["elements"].as_str().map(String::from),
                no_log: option["no_log"].as_bool().unwrap(),
            };
            (option["name"].as_str().unwrap().to_string(), described)
        })
        .collect()
}

/// What a DOCUMENTATION block says (the module's own options and its doc fragments').
fn documented_options(documentation: &Value) -> BTreeMap<String, Described> {
    let mut options = BTreeMap::new();
    for fragment in documentation["extends_documentation_fragment"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let name = fragment.as_str().unwrap();
        let file = name.strip_prefix("ovirt_he.upgrade.").unwrap();
        let path = repo().join(format!("collection/plugins/doc_fragments/{file}.py"));
        let python = std::fs::read_to_string(&path).unwrap();
        let (_, rest) = python.split_once("DOCUMENTATION = r\"\"\"").unwrap();
        let (yaml, _) = rest.split_once("\"\"\"").unwrap();
        options.extend(documented_options(&serde_yaml::from_str(yaml).unwrap()));
    }
    let empty = serde_json::Map::new();
    for (name, option) in documentation["options"].as_object().unwrap_or(&empty) {
        let kind = option["type"].as_str().unwrap_or("str");
        let described = Described {
            // A path is a string to the binary; the docs say which strings are paths.
            kind: match kind {
                "path" => "str".to_string(),
                other => other.to_string(),
            },
            required: option["required"].as_bool().unwrap_or(false),
            default: option.get("default").map(number_as_float),
            choices: option.get("choices").map(choice_names),
            elements: option["elements"].as_str().map(|e| match e {
                "path" => "str".to_string(),
                other => other.to_string(),
            }),
            no_log: option["no_log"].as_bool().unwrap_or(false),
        };
        options.insert(name.clone(), described);
    }
    options
}

/// Numbers compare as floats (`60` in the docs, `60` or `60.0` from the binary).
fn number_as_float(value: &Value) -> Value {
    match value.as_f64() {
        Some(number) if value.is_number() => Value::from(number),
        _ => value.clone(),
    }
}

/// Choices compare as their string forms, sorted (`"3"` and `3` are the same choice).
fn choice_names(value: &Value) -> Vec<String> {
    let mut names: Vec<String> = value
        .as_array()
        .unwrap()
        .iter()
        .map(|choice| match choice {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        })
        .collect();
    names.sort();
    names
}

#[test]
fn every_module_has_a_sidecar_doc_and_a_binary() {
    let modules: Vec<&str> = MODULES.iter().map(|(name, _)| *name).collect();
    // A module implemented by an action plugin (he_wait_job) has its docs and no binary.
    let actions = stems(&repo().join("collection/plugins/action"), "py");
    let mut docs = stems(&repo().join("collection/plugins/modules"), "yml");
    docs.retain(|doc| !actions.contains(doc));
    let binaries = stems(&repo().join("modules/src/bin"), "rs");
    assert_eq!(docs, modules, "sidecar docs vs the modules this test knows");
    assert_eq!(binaries, modules, "binaries vs the modules this test knows");
}

#[test]
fn sidecar_docs_list_exactly_the_options_each_binary_parses() {
    let mut problems = Vec::new();
    for (module, binary) in MODULES {
        let path = repo().join(format!("collection/plugins/modules/{module}.yml"));
        let doc: Value = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let documented = documented_options(&doc["DOCUMENTATION"]);
        let parsed = parsed_options(binary);
        for name in documented.keys().filter(|name| !parsed.contains_key(*name)) {
            problems.push(format!("{module}: '{name}' is documented but not parsed"));
        }
        for (name, parsed) in &parsed {
            match documented.get(name) {
                None => problems.push(format!("{module}: '{name}' is parsed but not documented")),
                Some(documented) if documented != parsed => problems.push(format!(
                    "{module}: '{name}' is documented as {documented:?} but parsed as {parsed:?}"
                )),
                Some(_) => {}
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn binaries_stay_thin() {
    let dir = repo().join("modules/src/bin");
    let too_long: Vec<String> = stems(&dir, "rs")
        .into_iter()
        .filter_map(|name| {
            let text = std::fs::read_to_string(dir.join(format!("{name}.rs"))).unwrap();
            let lines = text.lines().count();
            (lines > MAX_BINARY_LINES).then(|| format!("{name}.rs: {lines} lines"))
        })
        .collect();
    assert!(
        too_long.is_empty(),
        "binaries over {MAX_BINARY_LINES} lines (move logic into the library): {too_long:?}"
    );
}
