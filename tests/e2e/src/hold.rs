//! Holding one step of a playbook run (SIGSTOP) until the playbook has shown something, as a
//! slow host would: what the operator sees of a long step, whatever the speed of the machine.

use crate::kill::{read_record, signal};
use crate::{Finished, Lab};
use std::io::Read;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

impl Lab {
    /// Runs `playbook` to completion. Once the step whose progress file ends in
    /// `.STEP.progress.json` reports a progress text containing `reported`, its module is
    /// stopped until the playbook's output contains `shown`, then let go on.
    pub fn playbook_holding_step_until_shown(
        &self,
        playbook: &str,
        args: &[&str],
        step: &str,
        reported: &str,
        shown: &str,
    ) -> Finished {
        let mut command = self.playbook_command(playbook, args);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("ansible-playbook starts");
        let output = Arc::new(Mutex::new(String::new()));
        let readers: Vec<_> = [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ]
        .into_iter()
        .map(|mut stream| {
            let output = output.clone();
            std::thread::spawn(move || {
                let mut buffer = [0u8; 8192];
                while let Ok(read @ 1..) = stream.read(&mut buffer) {
                    output
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buffer[..read]));
                }
            })
        })
        .collect();
        let deadline = Instant::now() + Duration::from_secs(600);
        let ended = |child: &mut std::process::Child, what: &str| {
            if child.try_wait().unwrap().is_some() {
                panic!("the run ended before {what}:\n{}", output.lock().unwrap());
            }
            assert!(Instant::now() < deadline, "{what} never happened");
        };
        let pid = loop {
            ended(&mut child, &format!("the {step} reported {reported:?}"));
            let reporting = self.running_step(step).and_then(|(pid, file)| {
                let text = read_record(&file)?["text"].as_str()?.to_string();
                text.contains(reported).then_some(pid)
            });
            if let Some(pid) = reporting {
                signal(pid, "STOP");
                break pid;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        while !output.lock().unwrap().contains(shown) {
            ended(&mut child, &format!("the playbook showed {shown:?}"));
            std::thread::sleep(Duration::from_millis(100));
        }
        signal(pid, "CONT");
        let status = child.wait().unwrap();
        for reader in readers {
            reader.join().unwrap();
        }
        let text = output.lock().unwrap().clone();
        Finished {
            code: status.code().unwrap_or(-1),
            text,
        }
    }
}
