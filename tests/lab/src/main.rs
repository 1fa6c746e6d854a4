//! `he-lab`: create, run and inspect a simulated hosted-engine host (see tests/lab/README.md).

use anyhow::Context as _;
use he_lab::config::LabConfig;
use he_lab::init::{self, InitOptions};
use he_lab::{daemon, profile, report, shim, state};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: he-lab [--dir DIR] COMMAND
  init [--seed N] [--profile el6-3.6:el7-4.0|el7-4.3:el8-4.4] [--engine-disk-size S]
       [--appliance-size S] [--force]     create the lab (DIR defaults to ./he-lab)
  up                                      start the host daemon and the engine VM
  down                                    stop the VM and the daemon
  status [--json]                         paths, URLs, VM and engine state
  inspect [--json]                        status + volumes, hashes, engine disks, faults
  reset                                   back to the state right after init
  fault NAME on|off                       switch a fault (he-lab fault --list)
  shim hosted-engine|vdsm-client ARGS     the host tools (bin/ wrappers call this)
";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match run(&args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("he-lab: {error:#}");
            1
        }
    };
    std::process::exit(code);
}

/// Parses `12345`, `64M`, `1G`, `512K` into bytes.
fn parse_size(text: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let number: u64 = number
        .parse()
        .with_context(|| format!("bad size '{text}'"))?;
    let factor = match unit
        .trim_end_matches(['i', 'B'])
        .to_ascii_uppercase()
        .as_str()
    {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => anyhow::bail!("bad size unit in '{text}' (use K, M or G)"),
    };
    Ok(number * factor)
}

fn run(args: &[String]) -> anyhow::Result<i32> {
    let mut dir = PathBuf::from("he-lab");
    let mut rest = args;
    while let Some(first) = rest.first() {
        if first == "--dir" {
            dir = PathBuf::from(rest.get(1).context("--dir needs a directory")?);
            rest = &rest[2..];
        } else if let Some(value) = first.strip_prefix("--dir=") {
            dir = PathBuf::from(value);
            rest = &rest[1..];
        } else {
            break;
        }
    }
    let Some(command) = rest.first() else {
        eprint!("{USAGE}");
        return Ok(2);
    };
    let options = &rest[1..];
    let binary = std::env::current_exe().context("cannot locate the he-lab binary")?;
    match command.as_str() {
        "init" => cmd_init(dir, options, &binary),
        "shim" => {
            let config = LabConfig::load(&dir)?;
            let tool = options.first().context("shim needs a tool name")?;
            let output = match tool.as_str() {
                "hosted-engine" => shim::hosted_engine::run(&config, &options[1..]),
                "vdsm-client" => shim::vdsm_client::run(&config, &options[1..]),
                other => anyhow::bail!("unknown tool '{other}'"),
            };
            print!("{}", output.stdout);
            eprint!("{}", output.stderr);
            Ok(output.code)
        }
        "daemon" => {
            let config = LabConfig::load(&dir)?;
            daemon::run(config)?;
            Ok(0)
        }
        "up" => cmd_up(&LabConfig::load(&dir)?, &binary),
        "down" => {
            let config = LabConfig::load(&dir)?;
            daemon::stop(&config)?;
            println!("he-lab is down");
            Ok(0)
        }
        "status" => {
            let config = LabConfig::load(&dir)?;
            print_report(report::status(&config), options)
        }
        "inspect" => {
            let config = LabConfig::load(&dir)?;
            print_report(report::inspect(&config), options)
        }
        "reset" => {
            let config = LabConfig::load(&dir)?;
            let options = InitOptions {
                dir: config.dir.clone(),
                seed: config.seed,
                profile: config.profile.clone(),
                engine_disk_size_bytes: config.engine_disk_size_bytes,
                appliance_size_bytes: config.appliance_size_bytes.max(16 << 20),
                force: true,
            };
            init::init(&options, &binary)?;
            println!(
                "he-lab reset to its post-init state in {}",
                config.dir.display()
            );
            Ok(0)
        }
        "fault" => cmd_fault(&dir, options),
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            Ok(0)
        }
        other => {
            eprint!("he-lab: unknown command '{other}'\n{USAGE}");
            Ok(2)
        }
    }
}

fn print_report(value: serde_json::Value, options: &[String]) -> anyhow::Result<i32> {
    if options.iter().any(|o| o == "--json") {
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else if let Some(map) = value.as_object() {
        for (key, value) in map {
            let text = match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            println!("{key:20} {text}");
        }
    }
    Ok(0)
}

fn cmd_init(dir: PathBuf, options: &[String], binary: &std::path::Path) -> anyhow::Result<i32> {
    let mut init_options = InitOptions {
        dir,
        seed: 1,
        profile: profile::DEFAULT_PROFILE.into(),
        engine_disk_size_bytes: init::DEFAULT_ENGINE_DISK_BYTES,
        appliance_size_bytes: init::DEFAULT_APPLIANCE_BYTES,
        force: false,
    };
    let mut index = 0;
    while index < options.len() {
        let option = options[index].as_str();
        let (name, inline) = match option.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (option, None),
        };
        let mut value = || -> anyhow::Result<String> {
            if let Some(value) = inline.clone() {
                return Ok(value);
            }
            index += 1;
            options
                .get(index)
                .cloned()
                .with_context(|| format!("{name} needs a value"))
        };
        match name {
            "--seed" => init_options.seed = value()?.parse().context("--seed must be a number")?,
            "--profile" => init_options.profile = value()?,
            "--engine-disk-size" => init_options.engine_disk_size_bytes = parse_size(&value()?)?,
            "--appliance-size" => init_options.appliance_size_bytes = parse_size(&value()?)?,
            "--dir" => init_options.dir = PathBuf::from(value()?),
            "--force" => init_options.force = true,
            other => anyhow::bail!("unknown init option '{other}'\n{USAGE}"),
        }
        index += 1;
    }
    let started = Instant::now();
    let config = init::init(&init_options, binary)?;
    println!(
        "he-lab initialized in {} ({}, seed {}) in {:.1} s; inventory: {}",
        config.dir.display(),
        config.profile,
        config.seed,
        started.elapsed().as_secs_f64(),
        config.inventory_path().display()
    );
    Ok(0)
}

/// Starts the daemon and the engine VM, and waits until the engine answers.
fn cmd_up(config: &LabConfig, binary: &std::path::Path) -> anyhow::Result<i32> {
    let started = Instant::now();
    let config = &daemon::start(config, binary)?;
    if !state::vm(config).exists() {
        let output = shim::hosted_engine::run(config, &["--vm-start".to_string()]);
        anyhow::ensure!(
            output.code == 0,
            "the engine VM did not start: {}{}",
            output.stdout,
            output.stderr
        );
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let vm = state::vm(config);
        if vm.status == "Up" && vm.booted {
            break;
        }
        if !vm.exists() {
            anyhow::bail!(
                "the engine VM went down while booting ({}); see {}",
                vm.exit_message,
                config.daemon_log_path().display()
            );
        }
        if Instant::now() > deadline {
            anyhow::bail!("the engine VM is still {} after 30 s", vm.status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let vm = state::vm(config);
    let engine = match (&vm.engine_version, vm.engine_running) {
        (Some(version), true) => format!("engine {version} at {}", config.engine_url()),
        (Some(version), false) => format!("engine {version} installed but not serving"),
        (None, _) => "no engine on the disk".to_string(),
    };
    println!(
        "he-lab is up in {:.1} s: {engine}",
        started.elapsed().as_secs_f64()
    );
    Ok(0)
}

fn cmd_fault(dir: &std::path::Path, options: &[String]) -> anyhow::Result<i32> {
    if options.first().map(String::as_str) == Some("--list") {
        let config = LabConfig::load(dir)?;
        let on = config.faults();
        for name in state::FAULTS {
            println!(
                "{name:24} {}",
                if on.iter().any(|f| f == name) {
                    "on"
                } else {
                    "off"
                }
            );
        }
        return Ok(0);
    }
    let (Some(name), Some(switch)) = (options.first(), options.get(1)) else {
        anyhow::bail!(
            "usage: he-lab fault NAME on|off (names: {})",
            state::FAULTS.join(", ")
        );
    };
    let on = match switch.as_str() {
        "on" => true,
        "off" => false,
        other => anyhow::bail!("fault switch must be 'on' or 'off', not '{other}'"),
    };
    let config = LabConfig::load(dir)?;
    state::set_fault(&config, name, on)?;
    println!("fault {name} {switch}");
    Ok(0)
}
