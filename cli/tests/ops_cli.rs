//! The CLI as documented (issue 16): every command and subcommand's `--help` shows an example
//! (README promises it), found by walking the command tree `--help` itself lists.

use std::process::Command;

const PLAZA: &str = env!("CARGO_BIN_EXE_plaza");

fn help(path: &[String]) -> String {
    let out = Command::new(PLAZA).args(path).arg("--help").output().expect("plaza --help");
    assert!(out.status.success(), "plaza {} --help failed: {}", path.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The subcommands a help text lists under "Commands:".
fn subcommands(text: &str) -> Vec<String> {
    let Some(at) = text.find("\nCommands:\n") else { return Vec::new() };
    text[at + "\nCommands:\n".len()..]
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_command_has_an_example_in_its_help() {
    let mut stack: Vec<Vec<String>> = vec![Vec::new()];
    let mut walked = Vec::new();
    let mut missing = Vec::new();
    while let Some(path) = stack.pop() {
        let text = help(&path);
        if !text.contains("Example: plaza") && !text.contains("Examples:\n  plaza") {
            missing.push(format!("plaza {}", path.join(" ")));
        }
        for sub in subcommands(&text) {
            let mut p = path.clone();
            p.push(sub);
            stack.push(p);
        }
        walked.push(path.join(" "));
    }
    assert!(walked.len() >= 45, "the whole tree was walked: {walked:?}");
    for expected in ["query status", "submit sale", "keys new", "genesis example", "init", "query merchants"] {
        assert!(walked.iter().any(|w| w == expected), "{expected} walked: {walked:?}");
    }
    assert!(missing.is_empty(), "commands without an example in --help: {missing:?}");
}

#[test]
fn shell_completions_know_the_commands() {
    for (shell, marker) in [("bash", "_plaza()"), ("zsh", "#compdef plaza"), ("fish", "complete -c plaza")] {
        let out = Command::new(PLAZA).args(["completions", shell]).output().expect("plaza completions");
        assert!(out.status.success(), "{shell}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(marker), "{shell} completion script: {marker:?} missing");
        for word in ["testnet", "verify-proof", "backup", "--network-key"] {
            assert!(text.contains(word), "{shell} completions know {word}");
        }
    }
    let out = Command::new(PLAZA).args(["completions", "tcsh"]).output().expect("plaza completions");
    assert_eq!(out.status.code(), Some(2), "an unknown shell is a usage error");
}
