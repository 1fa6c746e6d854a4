//! The Ansible binary-module protocol: the args file in, one JSON result out.
//!
//! A module binary calls [`run`] with a type implementing [`Module`]; everything a module
//! shares with every other (argument parsing, option validation, check/diff/no_log handling,
//! secret redaction, the run log, the panic guard) lives here and nowhere else.

mod args;
mod log;
mod options;
pub mod progress;
mod redact;
mod result;
mod runner;
mod seconds;
pub mod spec;

pub use args::{InternalArgs, MalformedArgs, ModuleArgs};
pub use options::{
    at_most_one_of, exactly_one_of, take_group, take_named, take_rest, OptionError, OptionSet,
    Secret,
};
pub use redact::Redactor;
pub use result::{Diff, Failure, Outcome};
pub use runner::{execute, option_spec, run, Context, Module, OPTION_SPEC_ARG};
pub use seconds::Seconds;
