//! `stack-sync serve` as a child process, as a container runs it: started with a test
//! database, spoken to over loopback, read through its JSON logs, stopped with signals.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use super::command::stack_sync;
use super::postgres::TestDb;
use super::signing::{Signer, now};
use super::{SECRET, message_id};

/// `stack-sync serve` running as a child process with JSON logs, on a free loopback port.
pub struct ServeProcess {
    pub child: Child,
    pub logs: mpsc::Receiver<Value>,
    pub address: String,
    pub client: reqwest::Client,
}

impl ServeProcess {
    pub fn start(db: &TestDb, extra: &[(&str, &str)]) -> Self {
        Self::start_with_url(&db.url, extra)
    }

    /// As [`start`](Self::start), connecting with `database_url` (another role, say).
    pub fn start_with_url(database_url: &str, extra: &[(&str, &str)]) -> Self {
        Self::spawn(stack_sync(&["serve"], &serve_vars(database_url, extra)))
    }

    /// As [`start`](Self::start), with the process allowed only `open_files` file descriptors
    /// (`ulimit -n`), as many container runtimes set it.
    pub fn start_with_open_file_limit(
        db: &TestDb,
        extra: &[(&str, &str)],
        open_files: u32,
    ) -> Self {
        let mut command = Command::new("/bin/sh");
        command
            .args([
                "-c",
                &format!("ulimit -n {open_files} && exec \"$0\" serve"),
            ])
            .arg(env!("CARGO_BIN_EXE_stack-sync"))
            .env_clear()
            .envs(serve_vars(&db.url, extra));
        Self::spawn(command)
    }

    fn spawn(mut command: Command) -> Self {
        let mut child = command.stderr(Stdio::piped()).spawn().unwrap();
        let logs = log_lines(&mut child);
        let listening = next_log_with(&logs, "listening");
        let address = listening["address"].as_str().unwrap().to_owned();
        Self {
            child,
            logs,
            address,
            client: reqwest::Client::new(),
        }
    }

    pub async fn post(
        &self,
        id: &str,
        timestamp: i64,
        signature: &str,
        body: &str,
    ) -> reqwest::Response {
        self.client
            .post(format!("http://{}/webhooks/stack", self.address))
            .header("svix-id", id)
            .header("svix-timestamp", timestamp.to_string())
            .header("svix-signature", signature)
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    pub async fn status_of(&self, path: &str) -> u16 {
        let url = format!("http://{}{path}", self.address);
        self.client.get(url).send().await.unwrap().status().as_u16()
    }

    /// Sends SIGTERM, as a container runtime does.
    pub fn terminate(&self) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
    }
}

impl Drop for ServeProcess {
    /// A test that fails half-way leaves no service running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The settings every test service runs with, then `extra`.
fn serve_vars<'a>(database_url: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut vars = vec![
        ("DATABASE_URL", database_url),
        ("STACK_WEBHOOK_SECRET", SECRET),
        ("PORT", "0"),
        ("STACK_SYNC_METRICS__PORT", "0"),
        ("STACK_SYNC_SERVER__HOST", "127.0.0.1"),
        ("STACK_SYNC_LOG__FORMAT", "json"),
    ];
    vars.extend_from_slice(extra);
    vars
}

/// Reads the child's JSON log lines on a thread and forwards them.
pub fn log_lines(child: &mut Child) -> mpsc::Receiver<Value> {
    let logs = child.stderr.take().unwrap();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(logs).lines().map_while(Result::ok) {
            let parsed = serde_json::from_str(&line).unwrap_or(Value::String(line));
            if sender.send(parsed).is_err() {
                break;
            }
        }
    });
    receiver
}

pub fn next_log_with(logs: &mpsc::Receiver<Value>, message: &str) -> Value {
    loop {
        let line = logs
            .recv_timeout(Duration::from_secs(30))
            .expect("a log line in time");
        if line["message"] == message {
            return line;
        }
    }
}

pub fn signed(body: &str) -> (String, i64, String) {
    let (id, ts) = (message_id(), now());
    let signature = Signer::default().signature(&id, ts, body.as_bytes());
    (id, ts, signature)
}
