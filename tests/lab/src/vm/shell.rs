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
    /// Discarded (`/dev/null` and other devices).
    Discard,
    /// A guest file, truncated or appended to.
    File { path: String, append: bool },
}

/// `>`, `>>`, `1>`, `2>`, `2>>`... with an attached target or none: (fd, append, target).
fn redirection(word: &str) -> Option<(u8, bool, &str)> {
    let (fd, rest) = match word.as_bytes().first()? {
        b'1' => (1, &word[1..]),
        b'2' => (2, &word[1..]),
        _ => (1, word),
    };
    let rest = rest.strip_prefix('>')?;
    match rest.strip_prefix('>') {
        Some(target) => Some((fd, true, target)),
        None if rest.starts_with('&') => None,
        None => Some((fd, false, rest)),
    }
}

/// Where output to `path` goes.
fn sink_for(path: &str, append: bool) -> Sink {
    if path == CHANNEL_DEVICE {
        Sink::Channel
    } else if path.starts_with("/dev/") {
        Sink::Discard
    } else {
        Sink::File {
            path: path.to_string(),
            append,
        }
    }
}

/// Writes captured output to a guest file (appending to what it holds with `>>`).
fn write_file(session: &GuestSession, path: &str, append: bool, text: &str) -> anyhow::Result<()> {
    let mut content = if append {
        session.disk.read(path)?.unwrap_or_default()
    } else {
        Vec::new()
    };
    content.extend_from_slice(text.as_bytes());
    session.disk.write(path, &content, 0o644)
}

/// `grep [-q] PATTERN FILE`: `^` and `$` anchors, otherwise a substring.
fn grep(session: &GuestSession, args: &[String], out: &mut dyn FnMut(&str)) -> i32 {
    let quiet = args.iter().any(|a| a == "-q");
    let operands: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let (Some(pattern), Some(file)) = (operands.first(), operands.get(1)) else {
        return 2;
    };
    let Ok(Some(text)) = session.disk.read_text(file) else {
        return 2;
    };
    let (start, rest) = match pattern.strip_prefix('^') {
        Some(rest) => (true, rest),
        None => (false, pattern.as_str()),
    };
    let (end, needle) = match rest.strip_suffix('$') {
        Some(needle) => (true, needle),
        None => (false, rest),
    };
    let matches: Vec<&str> = text
        .lines()
        .filter(|line| match (start, end) {
            (true, true) => *line == needle,
            (true, false) => line.starts_with(needle),
            (false, true) => line.ends_with(needle),
            (false, false) => line.contains(needle),
        })
        .collect();
    if !quiet {
        for line in &matches {
            out(line);
        }
    }
    if matches.is_empty() {
        1
    } else {
        0
    }
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
        let all = split_words(command);
        let mut index = 0;
        while index < all.len() {
            let word = all[index].as_str();
            index += 1;
            if word == "2>&1" {
                stderr = stdout.clone();
                continue;
            }
            let Some((fd, append, attached)) = redirection(word) else {
                words.push(word.to_string());
                continue;
            };
            let path = if attached.is_empty() {
                index += 1;
                all.get(index - 1).cloned().unwrap_or_default()
            } else {
                attached.to_string()
            };
            let sink = sink_for(&path, append);
            if fd == 2 {
                stderr = sink;
            } else {
                stdout = sink;
            }
        }
        let Some(program) = words.first().cloned() else {
            return 0;
        };
        let session = self.session;
        let captured_out = std::cell::RefCell::new(String::new());
        let captured_err = std::cell::RefCell::new(String::new());
        let mut out = |line: &str| emit(session, &stdout, line, &captured_out);
        let mut err = |line: &str| emit(session, &stderr, line, &captured_err);
        let name = program.rsplit('/').next().unwrap_or(&program).to_string();
        let args = &words[1..];
        let status = self.run_program(&name, &program, args, &mut out, &mut err);
        for (sink, captured) in [(&stdout, &captured_out), (&stderr, &captured_err)] {
            if let Sink::File { path, append } = sink {
                let text = captured.borrow();
                if let Err(error) = write_file(session, path, *append, &text) {
                    session.console(&format!("sh: {path}: {error:#}"));
                    return 1;
                }
            }
        }
        status
    }

    /// Runs one program with its arguments.
    fn run_program(
        &mut self,
        name: &str,
        program: &str,
        args: &[String],
        out: &mut dyn FnMut(&str),
        err: &mut dyn FnMut(&str),
    ) -> i32 {
        let session = self.session;
        match name {
            "echo" => {
                out(&args.join(" "));
                0
            }
            "grep" => grep(session, args, out),
            "true" | ":" => 0,
            "false" => 1,
            "engine-backup" => engine_backup::run(session, args, out, err),
            "engine-setup" => engine_setup::run(session, args, out, err),
            "rm" => remove(session, args, err),
            "systemctl" => systemctl(session, args, err),
            "chkconfig" | "engine-config" | "hostnamectl" | "restorecon" | "sed" | "sleep" => 0,
            _ => {
                err(&format!("sh: {program}: command not found"));
                127
            }
        }
    }
}

/// Sends a line to its sink (file output is collected in `captured`).
fn emit(session: &GuestSession, sink: &Sink, line: &str, captured: &std::cell::RefCell<String>) {
    match sink {
        Sink::Channel => session.channel.send_line(line),
        Sink::Console => session.console(line),
        Sink::Discard => {}
        Sink::File { .. } => {
            let mut captured = captured.borrow_mut();
            captured.push_str(line);
            captured.push('\n');
        }
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
    fn redirections() {
        assert_eq!(redirection(">>"), Some((1, true, "")));
        assert_eq!(redirection(">/dev/x"), Some((1, false, "/dev/x")));
        assert_eq!(redirection("1>/dev/x"), Some((1, false, "/dev/x")));
        assert_eq!(redirection("2>>/log"), Some((2, true, "/log")));
        assert_eq!(redirection("2>&1"), None);
        assert_eq!(redirection("echo"), None);
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
