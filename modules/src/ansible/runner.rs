//! The one exit path: args file -> options -> module -> exactly one JSON object on stdout.

use super::args::{InternalArgs, ModuleArgs};
use super::log;
use super::options::{take_group, OptionSet};
use super::progress::Reporter;
use super::redact::{Redactor, MASK};
use super::result::{Failure, Outcome};
use super::spec::{self, OptionSpec};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use tracing::Dispatch;

/// One Ansible module: its name, its options and what it does with them.
pub trait Module {
    /// The module name as Ansible knows it (`he_maintenance_facts`).
    const NAME: &'static str;
    /// Options whose values are secrets: masked in every output, log and error.
    const SECRET_OPTIONS: &'static [&'static str] = &[];
    /// The module's typed options.
    type Options: OptionSet;
    /// Does the work (or, in check mode, only plans it) and says what happened.
    fn run(context: &mut Context, options: Self::Options) -> anyhow::Result<Outcome>;
}

/// What every module gets besides its options.
#[derive(Debug)]
pub struct Context {
    /// `--check`: plan only; nothing written, started or created.
    pub check_mode: bool,
    /// `--diff`: the module should fill [`Outcome::diff`].
    pub diff: bool,
    /// `no_log` on the task: log no content of secrets-bearing data.
    pub no_log: bool,
    /// The run id shared by the modules of one playbook run (names the log file).
    pub run_id: String,
    /// The run log file.
    pub log_file: PathBuf,
    /// Where long steps show what they are doing (the task's `progress_file`).
    pub progress: Reporter,
    warnings: Vec<String>,
}

impl Context {
    /// Adds a warning shown by Ansible after the task.
    pub fn warn(&mut self, warning: impl Into<String>) {
        let warning = warning.into();
        tracing::warn!("{warning}");
        self.warnings.push(warning);
    }
}

/// Options every module accepts.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct CommonOptions {
    #[serde(default = "default_log_dir")]
    log_dir: PathBuf,
    run_id: Option<String>,
    progress_file: Option<PathBuf>,
}

fn default_log_dir() -> PathBuf {
    PathBuf::from(log::DEFAULT_LOG_DIR)
}

/// The argument that makes a module binary print its options as JSON (the docs test reads
/// them) instead of running; Ansible always passes an args file.
pub const OPTION_SPEC_ARG: &str = "--option-spec";

/// Every option module `M` accepts, the common ones first, secrets marked `no_log`.
pub fn option_spec<M: Module>() -> Vec<OptionSpec> {
    let mut all = [spec::of::<CommonOptions>(), M::Options::spec()].concat();
    for option in &mut all {
        option.no_log = M::SECRET_OPTIONS.contains(&option.name.as_str());
    }
    all
}

/// Runs module `M` as Ansible does (`MODULE ARGS_FILE`), prints its result and exits.
pub fn run<M: Module>() -> ! {
    install_panic_guard(M::NAME, Redactor::default());
    let (result, failed) = match std::env::args_os().nth(1) {
        Some(arg) if arg == OPTION_SPEC_ARG => (json!(option_spec::<M>()), false),
        None => (
            failure_json(&super::args::ArgsError::Missing.to_string()),
            true,
        ),
        Some(path) => match ModuleArgs::from_file(path.as_ref()) {
            Err(error) => (failure_json(&error.to_string()), true),
            Ok(args) => {
                install_panic_guard(M::NAME, redactor::<M>(&args.options));
                execute::<M>(args)
            }
        },
    };
    println!("{result}");
    std::process::exit(i32::from(failed));
}

/// Runs module `M` on already-read args; returns the JSON result and whether it failed.
pub fn execute<M: Module>(args: ModuleArgs) -> (Value, bool) {
    let ModuleArgs {
        internal,
        mut options,
    } = args;
    let redactor = redactor::<M>(&options);
    let invocation = json!({ "module_args": masked_invocation(&options, M::SECRET_OPTIONS) });

    let common: CommonOptions = match take_group(&mut options) {
        Ok(common) => common,
        Err(error) => return finish(failure_json(&error.0), invocation, &redactor, true),
    };
    let (mut context, dispatch) = match start_context::<M>(&internal, common, &redactor) {
        Ok(started) => started,
        Err(message) => return finish(failure_json(&message), invocation, &redactor, true),
    };
    tracing::dispatcher::with_default(&dispatch, || {
        let outcome = M::Options::take(&mut options)
            .map_err(anyhow::Error::from)
            .and_then(|typed| M::run(&mut context, typed));
        let (mut result, failed) = report::<M>(outcome, internal.diff);
        (context.progress).finish(&finished_text::<M>(&result, failed), failed);
        add_context_keys(&mut result, &context);
        finish(result, invocation, &redactor, failed)
    })
}

fn report<M: Module>(outcome: anyhow::Result<Outcome>, want_diff: bool) -> (Value, bool) {
    match outcome {
        Ok(outcome) => {
            tracing::info!(changed = outcome.changed, "{} finished", M::NAME);
            (success_json(outcome, want_diff), false)
        }
        Err(error) => {
            let message = describe_error(&error);
            tracing::error!("{} failed: {message}", M::NAME);
            let mut result = failure_json(&message);
            if let Some(failure) = error.downcast_ref::<Failure>() {
                result["changed"] = json!(failure.changed);
                for (key, value) in &failure.data {
                    result[key.as_str()] = value.clone();
                }
            }
            (result, true)
        }
    }
}

/// Opens the run log and the progress file; either failing is a refusal naming its option,
/// before the module runs.
fn start_context<M: Module>(
    internal: &InternalArgs,
    common: CommonOptions,
    redactor: &Redactor,
) -> Result<(Context, Dispatch), String> {
    let run_id = common.run_id.unwrap_or_else(default_run_id::<M>);
    let log_dir = common.log_dir;
    let (log_file, dispatch) = log::start(&log_dir, &run_id, internal.verbosity, redactor.clone())
        .map_err(|error| {
            format!(
                "option 'log_dir': cannot write the run log under {}: {error}",
                log_dir.display()
            )
        })?;
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::info!(
            check_mode = internal.check_mode,
            ansible_version = internal.ansible_version.as_deref().unwrap_or("unknown"),
            "{} started",
            M::NAME
        )
    });
    let progress = match common.progress_file {
        Some(path) => {
            Reporter::start(path.clone(), M::NAME, redactor.clone()).map_err(|error| {
                format!(
                    "option 'progress_file': cannot write the progress file {}: {error}",
                    path.display()
                )
            })?
        }
        None => Reporter::none(),
    };
    let context = Context {
        check_mode: internal.check_mode,
        diff: internal.diff,
        no_log: internal.no_log,
        run_id,
        log_file,
        progress,
        warnings: Vec::new(),
    };
    Ok((context, dispatch))
}

/// The last progress record: the module's message, or that it finished.
fn finished_text<M: Module>(result: &Value, failed: bool) -> String {
    match result["msg"].as_str() {
        Some(msg) if failed => format!("{} failed: {msg}", M::NAME),
        Some(msg) => msg.to_string(),
        None => format!("{} finished", M::NAME),
    }
}

fn default_run_id<M: Module>() -> String {
    let now = time::OffsetDateTime::now_utc();
    let stamp = now
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]"
        ))
        .unwrap_or_else(|_| now.unix_timestamp().to_string());
    format!("{}-{stamp}-{}", M::NAME, std::process::id())
}

fn success_json(outcome: Outcome, want_diff: bool) -> Value {
    let mut result = Map::new();
    result.insert("changed".into(), json!(outcome.changed));
    result.insert("failed".into(), json!(false));
    if let Some(msg) = outcome.msg {
        result.insert("msg".into(), json!(msg));
    }
    if want_diff {
        if let Some(diff) = outcome.diff {
            result.insert("diff".into(), json!(diff));
        }
    }
    if let Some(facts) = outcome.facts {
        result.insert("ansible_facts".into(), Value::Object(facts));
    }
    for (key, value) in outcome.data {
        result.entry(key).or_insert(value);
    }
    Value::Object(result)
}

/// The error and its causes as one line, skipping a cause its parent already quotes
/// (typed errors often include their source in their own message).
fn describe_error(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

fn add_context_keys(result: &mut Value, context: &Context) {
    if !context.warnings.is_empty() {
        result["warnings"] = json!(context.warnings);
    }
    result["log_file"] = json!(context.log_file);
    result["run_id"] = json!(context.run_id);
}

fn failure_json(message: &str) -> Value {
    json!({ "failed": true, "changed": false, "msg": message })
}

fn finish(
    mut result: Value,
    invocation: Value,
    redactor: &Redactor,
    failed: bool,
) -> (Value, bool) {
    result["invocation"] = invocation;
    (redactor.json(result), failed)
}

/// Masks the values of `M`'s secret options.
fn redactor<M: Module>(options: &Map<String, Value>) -> Redactor {
    Redactor::new(secret_values(options, M::SECRET_OPTIONS))
}

fn secret_values(options: &Map<String, Value>, secret_names: &[&str]) -> Vec<String> {
    secret_names
        .iter()
        .filter_map(|name| options.get(*name))
        .filter_map(|value| match value {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        })
        .collect()
}

fn masked_invocation(options: &Map<String, Value>, secret_names: &[&str]) -> Value {
    Value::Object(
        options
            .iter()
            .map(|(name, value)| {
                let shown = if secret_names.contains(&name.as_str()) && !value.is_null() {
                    json!(MASK)
                } else {
                    value.clone()
                };
                (name.clone(), shown)
            })
            .collect(),
    )
}

/// A panic must still end in one failed JSON result, never a backtrace on stdout, and
/// never show a secret `redactor` masks.
fn install_panic_guard(module_name: &'static str, redactor: Redactor) {
    std::panic::set_hook(Box::new(move |info| {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message =
            format!("internal error in {module_name}: {payload}{location}; please report it");
        let message = redactor.text(&message);
        tracing::error!("{message}");
        println!("{}", failure_json(&message));
        std::process::exit(1);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ansible::{take_rest, OptionError, Secret};

    #[derive(Debug, Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct EchoOptions {
        word: String,
        password: Option<Secret>,
        #[serde(default)]
        fail: bool,
    }

    impl OptionSet for EchoOptions {
        fn take(options: &mut Map<String, Value>) -> Result<Self, OptionError> {
            take_rest(options)
        }
    }

    struct Echo;

    impl Module for Echo {
        const NAME: &'static str = "echo";
        const SECRET_OPTIONS: &'static [&'static str] = &["password"];
        type Options = EchoOptions;

        fn run(context: &mut Context, options: EchoOptions) -> anyhow::Result<Outcome> {
            let password = options
                .password
                .map(|p| p.expose().to_string())
                .unwrap_or_default();
            tracing::info!("using password {password}");
            if options.fail {
                anyhow::bail!("could not log in with {password}");
            }
            context.warn("just a warning");
            Ok(Outcome::changed(!context.check_mode)
                .msg(format!("said {}", options.word))
                .with("word", &options.word)
                .diff("", &options.word))
        }
    }

    fn run_echo(args: Value) -> (Value, bool, tempfile::TempDir) {
        let logs = tempfile::tempdir().unwrap();
        let mut args = args;
        args["log_dir"] = json!(logs.path());
        args["run_id"] = json!("test-run");
        let (result, failed) = execute::<Echo>(ModuleArgs::from_json(&args.to_string()).unwrap());
        (result, failed, logs)
    }

    #[test]
    fn success_has_changed_msg_return_keys_and_invocation() {
        let (result, failed, _logs) = run_echo(json!({"word": "hi", "_ansible_diff": false}));
        assert!(!failed);
        assert_eq!(result["changed"], json!(true));
        assert_eq!(result["failed"], json!(false));
        assert_eq!(result["msg"], json!("said hi"));
        assert_eq!(result["word"], json!("hi"));
        assert_eq!(result["warnings"], json!(["just a warning"]));
        assert_eq!(result["invocation"]["module_args"]["word"], json!("hi"));
        assert!(result.get("diff").is_none(), "diff only when asked");
    }

    #[test]
    fn error_chains_read_as_one_line_without_repeats() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        #[derive(Debug, thiserror::Error)]
        #[error("cannot read /x: {source}")]
        struct Wrapped {
            source: std::io::Error,
        }
        let error =
            anyhow::Error::from(Wrapped { source: io }).context("loading the configuration");
        assert_eq!(
            describe_error(&error),
            "loading the configuration: cannot read /x: gone"
        );
    }

    #[test]
    fn check_mode_and_diff_reach_the_module() {
        let (result, _, _logs) =
            run_echo(json!({"word": "hi", "_ansible_check_mode": true, "_ansible_diff": true}));
        assert_eq!(result["changed"], json!(false));
        assert_eq!(result["diff"], json!({"before": "", "after": "hi"}));
    }

    #[test]
    fn bad_options_fail_with_a_named_message() {
        let (result, failed, _logs) = run_echo(json!({"wrod": "hi"}));
        assert!(failed);
        assert_eq!(result["failed"], json!(true));
        assert!(
            result["msg"]
                .as_str()
                .unwrap()
                .contains("unsupported option `wrod`"),
            "{result}"
        );
    }

    #[test]
    fn secrets_are_masked_in_result_invocation_errors_and_log() {
        let (result, failed, logs) =
            run_echo(json!({"word": "hi", "password": "pa55word", "fail": true}));
        assert!(failed);
        let text = result.to_string();
        assert!(!text.contains("pa55word"), "{text}");
        assert_eq!(result["invocation"]["module_args"]["password"], json!(MASK));
        assert!(result["msg"].as_str().unwrap().contains(MASK));
        let log_path = logs.path().join("test-run.log");
        let log_text = std::fs::read_to_string(&log_path).unwrap();
        assert!(log_text.contains("echo started"), "{log_text}");
        assert!(!log_text.contains("pa55word"), "{log_text}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&log_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    /// A log_dir or progress_file that is missing its parent, a looping link or of the wrong
    /// type refuses the run before the module runs, naming the option and the path.
    #[test]
    fn bad_log_dir_or_progress_file_refuses_the_run_naming_the_option() {
        let work = tempfile::tempdir().unwrap();
        let dir = work.path();
        let (a, b) = (dir.join("loop"), dir.join("loop.other"));
        std::os::unix::fs::symlink(&b, &a).unwrap();
        std::os::unix::fs::symlink(&a, &b).unwrap();
        let file = dir.join("a-file");
        std::fs::write(&file, "x").unwrap();
        let a_dir = dir.join("a-dir");
        std::fs::create_dir(&a_dir).unwrap();
        let logs = dir.join("logs");
        let cases = [
            ("log_dir", a.clone()),
            ("log_dir", file.clone()),
            ("progress_file", a.clone()),
            ("progress_file", a_dir.clone()),
            ("progress_file", dir.join("missing").join("p.json")),
        ];
        for (option, path) in cases {
            let mut args = json!({"word": "hi", "log_dir": logs, "run_id": "test-run"});
            args[option] = json!(path);
            let (result, failed) =
                execute::<Echo>(ModuleArgs::from_json(&args.to_string()).unwrap());
            assert!(failed, "{option} {}: {result}", path.display());
            let msg = result["msg"].as_str().unwrap();
            assert!(
                msg.starts_with(&format!("option '{option}': ")),
                "{option}: {msg}"
            );
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(result.get("word").is_none(), "the module ran: {result}");
        }
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
        assert_eq!(std::fs::read_dir(&a_dir).unwrap().count(), 0);
        assert!(std::fs::symlink_metadata(&a).unwrap().is_symlink());
    }
}
