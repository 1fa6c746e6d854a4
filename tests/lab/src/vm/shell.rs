//! A small `/bin/sh` for cloud-init `runcmd` lines: words and quotes, `&&` / `||`,
//! `if [ $? -eq 0 ]; then ...; else ...; fi`, redirections to the setup channel, a trailing
//! `&`, and the handful of guest commands an appliance upgrade uses.

use crate::vm::{engine_backup, engine_setup, GuestSession, CHANNEL_DEVICE};

/// Where a command's output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sink {
    /// The VM console (daemon log).
    Console,
    /// The setup channel device.
    Channel,
    /// Discarded (`/dev/null`) or another file.
    Discard,
}

/// The shell state across runcmd lines (`$?`).
pub struct Shell<'s, 'a> {
    session: &'s GuestSession<'a>,
    /// Exit status of the last command.
    pub status: i32,
}

impl<'s, 'a> Shell<'s, 'a> {
    /// A shell in `session` with `$?` = 0.
    pub fn new(session: &'s GuestSession<'a>) -> Self {
        Shell { session, status: 0 }
    }

    /// Runs one runcmd line and returns its exit status (also kept as `$?`).
    pub fn run_line(&mut self, line: &str) -> i32 {
        let line = line.trim();
        let (line, background) = match line.strip_suffix('&') {
            Some(rest) if !rest.ends_with('&') => (rest.trim(), true),
            _ => (line, false),
        };
        let status = if let Some(status) = self.run_if(line) {
            status
        } else {
            self.run_list(line)
        };
        if !background {
            self.status = status;
        }
        self.status
    }

    /// `if [ $? -eq 0 ]; then A; else B; fi` (also `-ne`); None when `line` is no `if`.
    fn run_if(&mut self, line: &str) -> Option<i32> {
        let rest = line.strip_prefix("if ")?;
        let (condition, rest) = rest.split_once("; then ")?;
        let (then_part, else_part) = match rest.split_once("; else ") {
            Some((then_part, else_part)) => (then_part, else_part.strip_suffix("; fi")?),
            None => (rest.strip_suffix("; fi")?, ""),
        };
        let words = split_words(condition);
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let truth = match words.as_slice() {
            ["[", left, op, right, "]"] => {
                let value = |word: &str| {
                    if word == "$?" {
                        self.status.to_string()
                    } else {
                        word.to_string()
                    }
                };
                let (left, right) = (value(left), value(right));
                match *op {
                    "-eq" | "=" | "==" => left == right,
                    "-ne" | "!=" => left != right,
                    _ => false,
                }
            }
            _ => self.run_list(condition) == 0,
        };
        let branch = if truth { then_part } else { else_part };
        if branch.trim().is_empty() {
            return Some(0);
        }
        Some(self.run_list(branch))
    }

    /// `a && b || c` with shell semantics (left to right).
    fn run_list(&mut self, line: &str) -> i32 {
        let mut status = 0;
        let mut skip_next = false;
        for (index, (operator, command)) in split_list(line).into_iter().enumerate() {
            if index > 0 {
                skip_next = match operator.as_str() {
                    "&&" => status != 0,
                    "||" => status == 0,
                    _ => false,
                };
            }
            if skip_next {
                continue;
            }
            status = self.run_simple(&command);
            self.status = status;
        }
        status
    }

    /// One simple command with its redirections (a `( ... )` group runs as a list).
    fn run_simple(&mut self, command: &str) -> i32 {
        let trimmed = command.trim();
        if let Some(group) = trimmed.strip_prefix('(').and_then(|g| g.strip_suffix(')')) {
            return self.run_list(group);
        }
        let mut words = Vec::new();
        let mut stdout = Sink::Console;
        let mut stderr = Sink::Console;
        for word in split_words(command) {
            let target = |path: &str| {
                if path == CHANNEL_DEVICE {
                    Sink::Channel
                } else {
                    Sink::Discard
                }
            };
            if word == "2>&1" {
                stderr = stdout.clone();
            } else if let Some(path) = word.strip_prefix("2>") {
                stderr = target(path);
            } else if let Some(path) = word.strip_prefix("1>").or_else(|| word.strip_prefix('>')) {
                stdout = target(path.trim_start_matches('>'));
            } else {
                words.push(word);
            }
        }
        let Some(program) = words.first().cloned() else {
            return 0;
        };
        let session = self.session;
        let mut out = |line: &str| emit(session, &stdout, line);
        let mut err = |line: &str| emit(session, &stderr, line);
        let name = program.rsplit('/').next().unwrap_or(&program).to_string();
        let args = &words[1..];
        match name.as_str() {
            "echo" => {
                out(&args.join(" "));
                0
            }
            "true" | ":" => 0,
            "false" => 1,
            "engine-backup" => engine_backup::run(session, args, &mut out, &mut err),
            "engine-setup" => engine_setup::run(session, args, &mut out, &mut err),
            "rm" => remove(session, args, &mut err),
            "systemctl" => systemctl(session, args, &mut err),
            "chkconfig" | "engine-config" | "hostnamectl" | "restorecon" | "sed" | "sleep" => 0,
            _ => {
                err(&format!("sh: {program}: command not found"));
                127
            }
        }
    }
}

/// Sends a line to its sink.
fn emit(session: &GuestSession, sink: &Sink, line: &str) {
    match sink {
        Sink::Channel => session.channel.send_line(line),
        Sink::Console => session.console(line),
        Sink::Discard => {}
    }
}

/// `rm [-f] [-r] FILE...` in the guest.
fn remove(session: &GuestSession, args: &[String], err: &mut dyn FnMut(&str)) -> i32 {
    let force = args.iter().any(|a| a.starts_with('-') && a.contains('f'));
    let mut status = 0;
    for path in args.iter().filter(|a| !a.starts_with('-')) {
        if !session.disk.exists(path) {
            if !force {
                err(&format!(
                    "rm: cannot remove '{path}': No such file or directory"
                ));
                status = 1;
            }
            continue;
        }
        if let Err(error) = session.disk.remove(path) {
            err(&format!("rm: cannot remove '{path}': {error}"));
            status = 1;
        }
    }
    status
}

/// `systemctl mask UNIT` leaves `/etc/systemd/system/UNIT.service` -> /dev/null; other verbs
/// succeed.
fn systemctl(session: &GuestSession, args: &[String], err: &mut dyn FnMut(&str)) -> i32 {
    match args.first().map(String::as_str) {
        Some("mask") => {
            for unit in &args[1..] {
                let unit = if unit.contains('.') {
                    unit.clone()
                } else {
                    format!("{unit}.service")
                };
                let path = format!("/etc/systemd/system/{unit}");
                if let Err(error) = session.disk.write(&path, b"/dev/null\n", 0o644) {
                    err(&format!("Failed to mask unit: {error}"));
                    return 1;
                }
            }
            0
        }
        Some(_) => 0,
        None => {
            err("systemctl: missing verb");
            1
        }
    }
}

/// Splits a command line into words (single and double quotes, backslash escapes).
pub fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    current.push(c);
                }
            }
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => {
                            if let Some(next) = chars.next() {
                                current.push(next);
                            }
                        }
                        _ => current.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            _ => {
                in_word = true;
                current.push(c);
            }
        }
    }
    if in_word {
        words.push(current);
    }
    words
}

/// Splits `a && b || c` into (operator before, command) pairs, outside quotes.
fn split_list(line: &str) -> Vec<(String, String)> {
    let mut parts = Vec::new();
    let mut operator = String::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut depth = 0i32;
    let chars: Vec<char> = line.chars().collect();
    let mut index = 0;
    while index < chars.len() {
        let c = chars[index];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '(' => depth += 1,
            None if c == ')' => depth -= 1,
            None if depth == 0 && (c == '&' || c == '|') && chars.get(index + 1) == Some(&c) => {
                parts.push((operator.clone(), current.trim().to_string()));
                operator = format!("{c}{c}");
                current.clear();
                index += 2;
                continue;
            }
            None => {}
        }
        current.push(c);
        index += 1;
    }
    parts.push((operator, current.trim().to_string()));
    parts.retain(|(_, command)| !command.is_empty());
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_quotes() {
        assert_eq!(
            split_words(r#"echo "HE_APPLIANCE_ENGINE_RESTORE_SUCCESS" >/dev/x 2>&1"#),
            vec![
                "echo",
                "HE_APPLIANCE_ENGINE_RESTORE_SUCCESS",
                ">/dev/x",
                "2>&1"
            ]
        );
        assert_eq!(split_words("a 'b c' d\\ e"), vec!["a", "b c", "d e"]);
    }

    #[test]
    fn groups_stay_whole() {
        let parts = split_list("a || ( b && c )");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1].1, "( b && c )");
    }

    #[test]
    fn lists_split_outside_quotes() {
        let parts = split_list("a && b 'x && y' || c");
        assert_eq!(
            parts,
            vec![
                (String::new(), "a".to_string()),
                ("&&".to_string(), "b 'x && y'".to_string()),
                ("||".to_string(), "c".to_string())
            ]
        );
    }
}
