//! The real `stack-sync` binary, run as a user runs it.

use std::process::{Command, Output};

/// The binary with an empty environment but for `vars`, so no developer setting leaks in.
pub fn stack_sync(args: &[&str], vars: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stack-sync"));
    command.args(args).env_clear().envs(vars.iter().copied());
    command
}

pub fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
