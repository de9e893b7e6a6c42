//! The deployment files under `deploy/` agree with the binaries and with each other.
//!
//! - Every YAML file parses (all documents of multi-document files).
//! - Every `coordinator ...` / `worker ...` command line they run — container `command`/`args`
//!   in the Kubernetes manifests, `command`/`entrypoint`/`healthcheck` in the compose file, the
//!   sbatch scripts, the Dockerfile's `CMD`, and the shell blocks of `deploy/README.md` — names
//!   a real subcommand and only flags that subcommand's `--help` lists.
//! - The Dockerfile's build stage runs `cargo build --release --locked` on workspace packages.
//! - The Kubernetes pieces point at each other: workers dial a Service port the coordinator
//!   listens on, probes ask that port, every Secret referenced is defined.
//!
//! - The same for the shell blocks of the README, ARCHITECTURE.md and every page under `docs/`
//!   (issue 23: docs that cannot go stale).
//!
//! Nothing here needs Docker, Kubernetes or Slurm.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_yaml::Value as Yaml;

/// The programs whose command lines are checked.
const PROGRAMS: &[&str] = &["coordinator", "worker"];

/// Files that must contain at least one checked command line (so that a parsing slip cannot
/// make the check vacuous).
const FILES_WITH_COMMANDS: &[&str] = &[
    "deploy/Dockerfile",
    "deploy/README.md",
    "deploy/docker-compose.yaml",
    "deploy/kubernetes/coordinator.yaml",
    "deploy/kubernetes/job-submit.yaml",
    "deploy/kubernetes/workers.yaml",
    "deploy/slurm/coordinator.sbatch",
    "deploy/slurm/workers.sbatch",
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the coordinator crate sits in the workspace")
        .to_path_buf()
}

fn relative(path: &Path) -> String {
    path.strip_prefix(repo_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Every file under `deploy/`, sorted.
fn deploy_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&repo_root().join("deploy"), &mut files);
    files.sort();
    files
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

/// All documents of a YAML file.
fn yaml_documents(path: &Path) -> Result<Vec<Yaml>, serde_yaml::Error> {
    let text = read(path);
    serde_yaml::Deserializer::from_str(&text)
        .map(Yaml::deserialize)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The binaries' command-line interface, from their --help output.

/// Subcommands and flags of one program, keyed "coordinator serve", "worker", "worker train".
struct Cli {
    subcommands: BTreeMap<String, BTreeSet<String>>,
    flags: BTreeMap<String, BTreeSet<String>>,
}

fn help(binary: &Path, args: &[&str]) -> String {
    let out = Command::new(binary)
        .args(args)
        .arg("--help")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
    assert!(
        out.status.success(),
        "{} {} --help failed: {}",
        binary.display(),
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// The long flags a clap help text lists (`  -h, --help`, `      --db <PATH>`).
fn help_flags(text: &str) -> BTreeSet<String> {
    let mut flags = BTreeSet::new();
    for line in text.lines() {
        let line = line.trim_start();
        if !line.starts_with('-') {
            continue;
        }
        for word in line.split_whitespace() {
            let word = word.trim_end_matches(',');
            if word.starts_with("--") {
                flags.insert(word.to_string());
            } else if !word.starts_with('-') && !word.starts_with('<') && !word.starts_with('[') {
                break;
            }
        }
    }
    flags
}

/// The subcommand names under `Commands:` in a clap help text.
fn help_subcommands(text: &str) -> BTreeSet<String> {
    text.lines()
        .skip_while(|line| line.trim() != "Commands:")
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// The newest modification time of the files under `dirs` (relative to the repository root).
fn newest_mtime(dirs: &[&str]) -> std::time::SystemTime {
    fn walk(path: &Path, newest: &mut std::time::SystemTime) {
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        if meta.is_dir() {
            for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
                walk(&entry.path(), newest);
            }
        } else if let Ok(modified) = meta.modified() {
            *newest = (*newest).max(modified);
        }
    }
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    for dir in dirs {
        walk(&repo_root().join(dir), &mut newest);
    }
    newest
}

/// The `worker` binary: the sibling of the `coordinator` binary cargo built for this test
/// (`cargo test --workspace` builds it). Under `cargo test -p coordinator` cargo builds only
/// the coordinator's binaries, so a missing or stale worker is built here with the same profile
/// and target directory.
fn worker_binary() -> PathBuf {
    let coordinator = Path::new(env!("CARGO_BIN_EXE_coordinator"));
    let profile_dir = coordinator.parent().expect("the binary has a directory");
    let worker = profile_dir.join(format!("worker{}", std::env::consts::EXE_SUFFIX));
    let built = std::fs::metadata(&worker).and_then(|m| m.modified()).ok();
    let sources = newest_mtime(&["Cargo.toml", "Cargo.lock", "worker", "shared", "proto"]);
    if built.is_some_and(|built| built >= sources) {
        return worker;
    }
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("profile directory name");
    let target_dir = profile_dir.parent().expect("the target directory");
    let mut build = Command::new(env!("CARGO"));
    build
        .current_dir(repo_root())
        .args(["build", "--quiet", "-p", "worker", "--bin", "worker"])
        .arg("--target-dir")
        .arg(target_dir);
    match profile {
        "debug" => {}
        "release" => {
            build.arg("--release");
        }
        other => {
            build.args(["--profile", other]);
        }
    }
    let status = build.status().expect("run cargo build -p worker");
    assert!(status.success(), "cargo build -p worker failed");
    assert!(worker.is_file(), "no worker binary at {}", worker.display());
    worker
}

/// Subcommands that `--help` does not list but the docs run (the benchmarks).
const HIDDEN_SUBCOMMANDS: &[(&str, &str)] = &[("coordinator", "bench")];

fn load_cli(program: &str, binary: &Path, cli: &mut Cli) {
    let top = help(binary, &[]);
    cli.flags.insert(program.to_string(), help_flags(&top));
    let mut subcommands = help_subcommands(&top);
    subcommands.extend(
        HIDDEN_SUBCOMMANDS
            .iter()
            .filter(|(p, _)| *p == program)
            .map(|(_, sub)| sub.to_string()),
    );
    for sub in subcommands.iter().filter(|s| *s != "help") {
        let text = help(binary, &[sub]);
        cli.flags
            .insert(format!("{program} {sub}"), help_flags(&text));
    }
    cli.subcommands.insert(program.to_string(), subcommands);
}

fn cli() -> &'static Cli {
    static CLI: OnceLock<Cli> = OnceLock::new();
    CLI.get_or_init(|| {
        let mut cli = Cli {
            subcommands: BTreeMap::new(),
            flags: BTreeMap::new(),
        };
        load_cli(
            "coordinator",
            Path::new(env!("CARGO_BIN_EXE_coordinator")),
            &mut cli,
        );
        load_cli("worker", &worker_binary(), &mut cli);
        cli
    })
}

#[test]
fn help_parsing_finds_the_known_flags() {
    let cli = cli();
    for (key, flag) in [
        ("coordinator serve", "--listen"),
        ("coordinator serve", "--db"),
        ("coordinator submit", "--coordinator"),
        ("coordinator results", "--format"),
        ("worker", "--coordinator"),
        ("worker", "--exit-when-idle"),
    ] {
        assert!(
            cli.flags.get(key).is_some_and(|f| f.contains(flag)),
            "`{key} --help` parsed without {flag}: {:?}",
            cli.flags.get(key)
        );
    }
    assert!(cli.subcommands["coordinator"].contains("serve"));
    assert!(cli.subcommands["worker"].contains("train"));
}

// ---------------------------------------------------------------------------------------------
// Finding command lines.

/// Splits shell text into simple commands (token lists): quotes, backslash escapes and line
/// continuations, `#` comments; `;`, `&`, `|` and newlines end a command. Enough for the
/// scripts and snippets under deploy/, not a full shell parser.
fn shell_commands(text: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let mut command: Vec<String> = Vec::new();
    let mut token = String::new();
    let mut in_token = false;
    let mut chars = text.chars().peekable();
    fn end_token(token: &mut String, in_token: &mut bool, command: &mut Vec<String>) {
        if *in_token {
            command.push(std::mem::take(token));
            *in_token = false;
        }
    }
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_token = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    token.push(q);
                }
            }
            '"' => {
                in_token = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some('\n') | None => {}
                            Some(e @ ('$' | '`' | '"' | '\\')) => token.push(e),
                            Some(e) => {
                                token.push('\\');
                                token.push(e);
                            }
                        },
                        _ => token.push(q),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') | None => {}
                Some(e) => {
                    in_token = true;
                    token.push(e);
                }
            },
            '#' if !in_token => {
                while chars.peek().is_some_and(|&n| n != '\n') {
                    chars.next();
                }
            }
            ' ' | '\t' | '\r' => end_token(&mut token, &mut in_token, &mut command),
            '\n' | ';' | '&' | '|' => {
                end_token(&mut token, &mut in_token, &mut command);
                if !command.is_empty() {
                    commands.push(std::mem::take(&mut command));
                }
            }
            _ => {
                in_token = true;
                token.push(c);
            }
        }
    }
    end_token(&mut token, &mut in_token, &mut command);
    if !command.is_empty() {
        commands.push(command);
    }
    commands
}

/// The program a token runs, if it is one of ours (`worker`, `/usr/local/bin/worker`).
fn program_of(token: &str) -> Option<&'static str> {
    let name = token.rsplit('/').next().unwrap_or(token);
    PROGRAMS.iter().copied().find(|p| *p == name)
}

/// The command line of ours inside one shell command, if any: the program in command position
/// (after variable assignments and wrappers such as `exec` or `srun`), after `--`
/// (`kubectl exec POD -- coordinator ...`), or elsewhere when a subcommand or long flag follows
/// it and it is no option's value (`docker compose run --rm cli coordinator status ...`).
fn our_command(tokens: &[String]) -> Option<Vec<String>> {
    let mut start = 0;
    while let Some(token) = tokens.get(start) {
        let assignment = token
            .split_once('=')
            .is_some_and(|(name, _)| !name.is_empty() && !name.starts_with('-'));
        let wrapper = matches!(
            token.as_str(),
            "exec" | "srun" | "nohup" | "time" | "env" | "sudo" | "command"
        );
        let wrapper_option = start > 0 && token.starts_with('-');
        if assignment || wrapper || wrapper_option {
            start += 1;
        } else {
            break;
        }
    }
    let cli = cli();
    (0..tokens.len()).find_map(|i| {
        let program = program_of(&tokens[i])?;
        let next = tokens.get(i + 1);
        let previous = i.checked_sub(1).map(|p| tokens[p].as_str());
        let in_position = i == start || previous == Some("--");
        // Not the value of an option (`cargo install --path worker`).
        let an_argument = previous.is_some_and(|p| p.starts_with('-'));
        let followed = next.is_some_and(|n| {
            (n.starts_with("--") && n.len() > 2) || cli.subcommands[program].contains(n.as_str())
        });
        (in_position || (followed && !an_argument)).then(|| tokens[i..].to_vec())
    })
}

/// A command line found in a file, with where it was found.
struct Found {
    origin: String,
    argv: Vec<String>,
}

fn from_shell(origin: &str, text: &str, out: &mut Vec<Found>) {
    for tokens in shell_commands(text) {
        if let Some(argv) = our_command(&tokens) {
            out.push(Found {
                origin: origin.to_string(),
                argv,
            });
        }
    }
}

fn yaml_str(value: &Yaml) -> Option<String> {
    match value {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// An argv from a YAML `command`-like value: a list of strings, or a string that a shell (or
/// compose) splits.
fn yaml_argv(value: &Yaml) -> Option<Vec<String>> {
    match value {
        Yaml::Sequence(items) => items.iter().map(yaml_str).collect(),
        Yaml::String(s) => shell_commands(s).into_iter().next(),
        _ => None,
    }
}

fn from_argv(origin: &str, argv: Vec<String>, out: &mut Vec<Found>) {
    let Some(first) = argv.first() else { return };
    if program_of(first).is_some() {
        out.push(Found {
            origin: origin.to_string(),
            argv,
        });
    } else if matches!(first.rsplit('/').next(), Some("sh" | "bash")) {
        if let Some(i) = argv.iter().position(|a| a == "-c") {
            if let Some(script) = argv.get(i + 1) {
                from_shell(origin, script, out);
            }
        }
    }
}

/// Command lines in a YAML tree: container `command` + `args` (Kubernetes), service
/// `entrypoint` + `command` (compose), and healthcheck `test`s.
fn from_yaml(origin: &str, value: &Yaml, out: &mut Vec<Found>) {
    match value {
        Yaml::Mapping(map) => {
            let mut argv = Vec::new();
            for key in ["entrypoint", "command", "args"] {
                if let Some(part) = map.get(key).and_then(yaml_argv) {
                    argv.extend(part);
                }
            }
            from_argv(origin, argv, out);
            if let Some(test) = map.get("test").and_then(yaml_argv) {
                match test.first().map(String::as_str) {
                    Some("CMD") => from_argv(origin, test[1..].to_vec(), out),
                    Some("CMD-SHELL") => from_shell(origin, &test[1..].join(" "), out),
                    _ => {}
                }
            }
            for child in map.values() {
                from_yaml(origin, child, out);
            }
        }
        Yaml::Sequence(items) => {
            for item in items {
                from_yaml(origin, item, out);
            }
        }
        _ => {}
    }
}

/// The Dockerfile's instructions: (keyword, rest), continuation lines joined, comments dropped.
fn dockerfile_instructions(text: &str) -> Vec<(String, String)> {
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (current.is_empty() && trimmed.is_empty()) {
            continue;
        }
        if let Some(body) = trimmed.strip_suffix('\\') {
            current.push_str(body);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let text = std::mem::take(&mut current);
        let (keyword, rest) = text.split_once(char::is_whitespace).unwrap_or((&text, ""));
        instructions.push((keyword.to_ascii_uppercase(), rest.trim().to_string()));
    }
    instructions
}

/// Every command line of ours in the deploy files.
fn all_commands() -> Vec<Found> {
    let mut found = Vec::new();
    for path in deploy_files() {
        let origin = relative(&path);
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if is_yaml(&path) {
            let documents = yaml_documents(&path)
                .unwrap_or_else(|e| panic!("{origin} does not parse as YAML: {e}"));
            for (i, doc) in documents.iter().enumerate() {
                from_yaml(&format!("{origin} (document {})", i + 1), doc, &mut found);
            }
        } else if name.ends_with(".sbatch") || name.ends_with(".sh") {
            from_shell(&origin, &read(&path), &mut found);
        } else if name.ends_with(".md") {
            for block in shell_blocks(&read(&path)) {
                from_shell(&origin, &block, &mut found);
            }
        } else if name == "Dockerfile" {
            let mut entrypoint = Vec::new();
            let mut cmd = Vec::new();
            for (keyword, rest) in dockerfile_instructions(&read(&path)) {
                let exec_form = || {
                    serde_json::from_str::<Vec<String>>(&rest).unwrap_or_else(|_| {
                        panic!("{origin}: write {keyword} in exec (JSON) form: {rest}")
                    })
                };
                match keyword.as_str() {
                    "FROM" => {
                        entrypoint.clear();
                        cmd.clear();
                    }
                    "ENTRYPOINT" => entrypoint = exec_form(),
                    "CMD" => cmd = exec_form(),
                    _ => {}
                }
            }
            from_argv(&origin, [entrypoint, cmd].concat(), &mut found);
        }
    }
    found
}

/// The contents of the ```sh / ```bash / ```shell blocks of a Markdown file.
fn shell_blocks(markdown: &str) -> Vec<String> {
    enum State {
        Text,
        Shell(String),
        Other,
    }
    let mut blocks = Vec::new();
    let mut state = State::Text;
    for line in markdown.lines() {
        let fence = line.trim_start().strip_prefix("```");
        state = match (state, fence) {
            (State::Text, Some(info)) if matches!(info.trim(), "sh" | "bash" | "shell") => {
                State::Shell(String::new())
            }
            (State::Text, Some(_)) => State::Other,
            (State::Shell(block), Some(_)) => {
                blocks.push(block);
                State::Text
            }
            (State::Other, Some(_)) => State::Text,
            (State::Shell(mut block), None) => {
                block.push_str(line);
                block.push('\n');
                State::Shell(block)
            }
            (state, None) => state,
        };
    }
    blocks
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn every_yaml_file_parses() {
    let mut parsed = 0;
    for path in deploy_files().into_iter().filter(|p| is_yaml(p)) {
        let documents = yaml_documents(&path)
            .unwrap_or_else(|e| panic!("{} does not parse as YAML: {e}", relative(&path)));
        assert!(
            documents.iter().any(|d| !d.is_null()),
            "{} holds no YAML document",
            relative(&path)
        );
        parsed += 1;
    }
    assert!(
        parsed >= 6,
        "expected the compose file and the Kubernetes manifests, parsed {parsed}"
    );
}

/// What is wrong with these command lines (one line each), and the pending flags they use.
fn check_commands(found: &[Found]) -> Vec<String> {
    let cli = cli();
    let mut problems = Vec::new();
    for Found { origin, argv } in found {
        let program = program_of(&argv[0]).expect("found commands start with a program");
        let line = argv.join(" ");
        let first = argv.get(1).map(String::as_str);
        let key = match first {
            Some(sub) if cli.subcommands[program].contains(sub) => format!("{program} {sub}"),
            Some("--help" | "-h" | "--version" | "-V") => program.to_string(),
            _ if program == "coordinator" => {
                problems.push(format!("{origin}: `{line}`: no coordinator subcommand"));
                continue;
            }
            _ => program.to_string(),
        };
        let flags = &cli.flags[&key];
        for (i, arg) in argv.iter().enumerate().skip(1) {
            if arg == "--" {
                break;
            }
            if !arg.starts_with("--") || arg.len() == 2 {
                continue;
            }
            let flag = arg.split_once('=').map_or(arg.as_str(), |(f, _)| f);
            if flag == "--http" {
                // The report page is unauthenticated: serve refuses a public address for it
                // unless --allow-insecure-public, which the deployments never use.
                let value = arg
                    .split_once('=')
                    .map(|(_, v)| v)
                    .or(argv.get(i + 1).map(String::as_str))
                    .unwrap_or("");
                let host = value.rsplit_once(':').map_or(value, |(h, _)| h);
                if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
                    problems.push(format!(
                        "{origin}: `{line}`: keep --http on loopback (127.0.0.1:PORT)"
                    ));
                }
            }
            if flag.contains("token") && flag != "--token-file" {
                problems.push(format!(
                    "{origin}: `{line}`: pass the token with --token-file or COORDINATOR_TOKEN, \
                     never as an argument"
                ));
            }
            if flag == "--allow-insecure-public" {
                problems.push(format!(
                    "{origin}: `{line}`: the deployments set a token; drop --allow-insecure-public"
                ));
            }
            if !flags.contains(flag) {
                problems.push(format!(
                    "{origin}: `{line}`: `{key}` has no flag {flag} (it has: {})",
                    flags.iter().cloned().collect::<Vec<_>>().join(" ")
                ));
            }
        }
    }
    problems
}

#[test]
fn every_command_line_uses_real_subcommands_and_flags() {
    let found = all_commands();
    let mut problems = check_commands(&found);
    for file in FILES_WITH_COMMANDS {
        if !found.iter().any(|f| f.origin.starts_with(file)) {
            problems.push(format!(
                "{file}: no `coordinator`/`worker` command line found"
            ));
        }
    }
    eprintln!("checked {} command lines", found.len());
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

/// The Markdown pages outside `deploy/` whose shell blocks are checked, and those of them that
/// must hold at least one command line of ours.
fn doc_pages() -> Vec<PathBuf> {
    let root = repo_root();
    let mut pages = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("read docs/")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

const DOCS_WITH_COMMANDS: &[&str] = &[
    "README.md",
    "docs/controls.md",
    "docs/performance.md",
    "docs/reproduction.md",
];

#[test]
fn every_command_line_of_the_docs_uses_real_subcommands_and_flags() {
    let mut found = Vec::new();
    for page in doc_pages() {
        for block in shell_blocks(&read(&page)) {
            from_shell(&relative(&page), &block, &mut found);
        }
    }
    let mut problems = check_commands(&found);
    for file in DOCS_WITH_COMMANDS {
        if !found.iter().any(|f| f.origin == *file) {
            problems.push(format!(
                "{file}: no `coordinator`/`worker` command line found"
            ));
        }
    }
    eprintln!("checked {} command lines of the docs", found.len());
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn the_check_catches_wrong_commands() {
    let found = |line: &str| Found {
        origin: "test".to_string(),
        argv: line.split_whitespace().map(str::to_string).collect(),
    };
    let bad = [
        "coordinator serv --listen 0.0.0.0:50051",
        "coordinator serve --no-such-flag",
        "coordinator results x --watch",
        "worker --coordinator http://h:50051 --paralel 4",
        "worker --token abc",
        "coordinator serve --allow-insecure-public",
        "coordinator serve --http 0.0.0.0:8080",
        // The security flags are checked like any other.
        "coordinator serve --token-files /run/token",
        "coordinator submit x.yaml --tls-ca-file ca.pem",
        "worker --coordinator https://h:50051 --tls-certificate c.pem",
    ];
    for line in bad {
        let problems = check_commands(&[found(line)]);
        assert!(!problems.is_empty(), "`{line}` passed the check");
    }
    let good = [
        "coordinator serve --listen=0.0.0.0:50051 --db /data/x.db --log-json",
        "coordinator status x --watch --coordinator http://h:50051",
        "worker --coordinator http://h:50051 --parallel 4 --exit-when-idle",
        "worker train sweep.yaml --task 0",
        "coordinator serve --token-file /run/token --tls-cert c.pem --tls-key k.pem",
        "coordinator results x --token-file t --tls-ca ca.pem",
        "worker --coordinator https://h:50051 --token-file t --tls-ca ca.pem",
    ];
    for line in good {
        let problems = check_commands(&[found(line)]);
        assert!(problems.is_empty(), "`{line}`: {problems:?}");
    }
}

#[test]
fn the_dockerfile_builds_workspace_packages_locked() {
    let path = repo_root().join("deploy/Dockerfile");
    let instructions = dockerfile_instructions(&read(&path));

    let metadata = Command::new(env!("CARGO"))
        .current_dir(repo_root())
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .output()
        .expect("run cargo metadata");
    assert!(metadata.status.success(), "cargo metadata failed");
    let metadata: serde_json::Value =
        serde_json::from_slice(&metadata.stdout).expect("cargo metadata prints JSON");
    let members: BTreeSet<String> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect();

    let builds: Vec<Vec<String>> = instructions
        .iter()
        .filter(|(keyword, _)| keyword == "RUN")
        .flat_map(|(_, rest)| shell_commands(rest))
        .filter_map(|tokens| {
            let i = tokens.iter().position(|t| t == "cargo")?;
            (tokens.get(i + 1).map(String::as_str) == Some("build")).then(|| tokens[i..].to_vec())
        })
        .collect();
    assert_eq!(
        builds.len(),
        1,
        "expected one `cargo build` in deploy/Dockerfile: {builds:?}"
    );
    let build = &builds[0];
    let line = build.join(" ");
    assert!(
        build.iter().any(|a| a == "--locked"),
        "`{line}` must use --locked"
    );
    assert!(
        build.iter().any(|a| a == "--release"),
        "`{line}` must use --release"
    );

    let mut packages = BTreeSet::new();
    let mut args = build.iter();
    while let Some(arg) = args.next() {
        let package = match arg.as_str() {
            "-p" | "--package" => args.next().cloned(),
            other => other
                .strip_prefix("--package=")
                .or_else(|| other.strip_prefix("-p").filter(|p| !p.is_empty()))
                .map(str::to_string),
        };
        if let Some(package) = package {
            assert!(
                members.contains(&package),
                "`{line}` builds {package}, which is not a workspace package ({members:?})"
            );
            packages.insert(package);
        }
    }
    for binary in PROGRAMS {
        assert!(
            packages.contains(*binary),
            "`{line}` does not build {binary}"
        );
        assert!(
            instructions.iter().any(|(keyword, rest)| keyword == "COPY"
                && rest.starts_with("--from=")
                && rest
                    .split_whitespace()
                    .any(|w| w.ends_with(&format!("/{binary}")))),
            "deploy/Dockerfile copies no {binary} binary into the runtime stage"
        );
    }
}

/// The value after `flag` in an argv (`--flag VALUE` or `--flag=VALUE`).
fn flag_value<'a>(argv: &'a [String], flag: &str) -> Option<&'a str> {
    argv.iter().enumerate().find_map(|(i, a)| {
        if a == flag {
            argv.get(i + 1).map(String::as_str)
        } else {
            a.strip_prefix(flag).and_then(|r| r.strip_prefix('='))
        }
    })
}

fn port_of(address: &str) -> Option<u16> {
    address
        .rsplit(':')
        .next()?
        .trim_end_matches('/')
        .parse()
        .ok()
}

/// The Kubernetes objects (documents with a `kind`) under deploy/kubernetes, with their file.
fn kubernetes_objects() -> Vec<(String, Yaml)> {
    let dir = repo_root().join("deploy/kubernetes");
    deploy_files()
        .into_iter()
        .filter(|p| p.starts_with(&dir) && is_yaml(p))
        .flat_map(|p| {
            let origin = relative(&p);
            yaml_documents(&p)
                .expect("parses")
                .into_iter()
                .filter(|d| d.get("kind").is_some())
                .map(move |d| (origin.clone(), d))
        })
        .collect()
}

fn containers(object: &Yaml) -> Vec<&Yaml> {
    let spec = &object["spec"];
    let pod = if spec.get("template").is_some() {
        &spec["template"]["spec"]
    } else {
        spec
    };
    pod.get("containers")
        .and_then(Yaml::as_sequence)
        .map(|c| c.iter().collect())
        .unwrap_or_default()
}

fn container_argv(container: &Yaml) -> Vec<String> {
    ["command", "args"]
        .iter()
        .filter_map(|k| container.get(*k).and_then(yaml_argv))
        .flatten()
        .collect()
}

#[test]
fn the_kubernetes_pieces_point_at_each_other() {
    let objects = kubernetes_objects();
    let kind = |o: &Yaml| o["kind"].as_str().unwrap_or("").to_string();
    let name = |o: &Yaml| o["metadata"]["name"].as_str().unwrap_or("").to_string();

    // Services and their ports.
    let services: BTreeMap<String, BTreeSet<u16>> = objects
        .iter()
        .filter(|(_, o)| kind(o) == "Service")
        .map(|(_, o)| {
            let ports = o["spec"]["ports"]
                .as_sequence()
                .into_iter()
                .flatten()
                .filter_map(|p| p["port"].as_u64().map(|p| p as u16))
                .collect();
            (name(o), ports)
        })
        .collect();

    // Secrets: the example, and what kustomization.yaml generates.
    let mut secrets: BTreeSet<String> = objects
        .iter()
        .filter(|(_, o)| kind(o) == "Secret")
        .map(|(_, o)| name(o))
        .collect();
    for (_, o) in objects.iter().filter(|(_, o)| kind(o) == "Kustomization") {
        for generator in o["secretGenerator"].as_sequence().into_iter().flatten() {
            secrets.extend(generator["name"].as_str().map(str::to_string));
        }
        for resource in o["resources"].as_sequence().into_iter().flatten() {
            let file = resource.as_str().expect("resource path");
            assert!(
                repo_root().join("deploy/kubernetes").join(file).is_file(),
                "kustomization.yaml lists {file}, which does not exist"
            );
        }
    }

    let mut serve_ports = BTreeSet::new();
    let mut dialled = Vec::new();
    for (origin, object) in &objects {
        for container in containers(object) {
            let argv = container_argv(container);
            // Every Secret a container reads is defined.
            for env in container["env"].as_sequence().into_iter().flatten() {
                if let Some(secret) = env["valueFrom"]["secretKeyRef"]["name"].as_str() {
                    assert!(secrets.contains(secret), "{origin}: no Secret {secret}");
                }
            }
            if argv.first().map(String::as_str) == Some("coordinator")
                && argv.get(1).map(String::as_str) == Some("serve")
            {
                assert_eq!(
                    kind(object),
                    "StatefulSet",
                    "{origin}: run the coordinator as a StatefulSet"
                );
                assert_eq!(
                    object["spec"]["replicas"].as_u64(),
                    Some(1),
                    "{origin}: one coordinator"
                );
                let port = flag_value(&argv, "--listen")
                    .and_then(port_of)
                    .unwrap_or_else(|| panic!("{origin}: serve without --listen HOST:PORT"));
                serve_ports.insert(port);
                for probe in ["readinessProbe", "livenessProbe"] {
                    assert_eq!(
                        container[probe]["grpc"]["port"].as_u64(),
                        Some(u64::from(port)),
                        "{origin}: the {probe} must be a gRPC probe on the listen port {port}"
                    );
                }
                let env_token = container["env"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .any(|e| e["name"].as_str() == Some("COORDINATOR_TOKEN"));
                assert!(
                    env_token || flag_value(&argv, "--token-file").is_some(),
                    "{origin}: the coordinator needs the token (COORDINATOR_TOKEN or --token-file)"
                );
            }
            if let Some(url) = flag_value(&argv, "--coordinator") {
                dialled.push((origin.clone(), url.to_string()));
            }
        }
        let volumes = if object["spec"].get("template").is_some() {
            &object["spec"]["template"]["spec"]["volumes"]
        } else {
            &object["spec"]["volumes"]
        };
        for volume in volumes.as_sequence().into_iter().flatten() {
            if let Some(secret) = volume["secret"]["secretName"].as_str() {
                assert!(secrets.contains(secret), "{origin}: no Secret {secret}");
            }
        }
    }

    assert!(
        !serve_ports.is_empty(),
        "no `coordinator serve` container in deploy/kubernetes"
    );
    assert!(
        !dialled.is_empty(),
        "no container dials the coordinator in deploy/kubernetes"
    );
    for (origin, url) in dialled {
        let authority = url
            .split_once("://")
            .map_or(url.as_str(), |(_, rest)| rest)
            .trim_end_matches('/');
        let (host, port) = authority
            .rsplit_once(':')
            .unwrap_or_else(|| panic!("{origin}: {url} names no port"));
        let port: u16 = port
            .parse()
            .unwrap_or_else(|_| panic!("{origin}: bad port in {url}"));
        let service = host.split('.').next().unwrap_or(host);
        let ports = services
            .get(service)
            .unwrap_or_else(|| panic!("{origin}: {url} names no Service of deploy/kubernetes"));
        assert!(
            ports.contains(&port),
            "{origin}: Service {service} has no port {port}"
        );
        assert!(
            serve_ports.contains(&port),
            "{origin}: the coordinator does not listen on {port}"
        );
    }
}

#[test]
fn the_compose_workers_dial_the_coordinator_service() {
    let path = repo_root().join("deploy/docker-compose.yaml");
    let compose: Yaml = serde_yaml::from_str(&read(&path)).expect("parses");
    let services = compose["services"].as_mapping().expect("services");
    let names: BTreeSet<&str> = services.keys().filter_map(Yaml::as_str).collect();
    let mut dialled = 0;
    for (name, service) in services {
        let argv = yaml_argv(&service["command"]).unwrap_or_default();
        if let Some(url) = flag_value(&argv, "--coordinator") {
            let host = url
                .split_once("://")
                .map_or(url, |(_, rest)| rest)
                .split(':')
                .next()
                .unwrap_or("");
            assert!(
                names.contains(host) || host == "127.0.0.1",
                "compose service {name:?} dials {url}, not a compose service"
            );
            dialled += 1;
        }
    }
    assert!(dialled > 0, "no compose service dials the coordinator");
    assert!(services.contains_key("coordinator") && services.contains_key("worker"));
}

#[test]
fn the_slurm_workers_get_sigterm_and_exec() {
    let text = read(&repo_root().join("deploy/slurm/workers.sbatch"));
    let signal = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("#SBATCH --signal="))
        .expect("workers.sbatch sets #SBATCH --signal=B:TERM@SECONDS");
    assert!(
        signal.starts_with("B:TERM@") || signal.starts_with("TERM@"),
        "workers.sbatch: --signal={signal}: Slurm must send SIGTERM"
    );
    let workers: Vec<Vec<String>> = shell_commands(&text)
        .into_iter()
        .filter(|tokens| tokens.iter().any(|t| program_of(t) == Some("worker")))
        .collect();
    assert_eq!(
        workers.len(),
        1,
        "one worker command in workers.sbatch: {workers:?}"
    );
    let tokens = &workers[0];
    assert!(
        tokens[0] == "exec" || tokens[0] == "srun" || signal.starts_with("TERM@"),
        "workers.sbatch: start the worker with `exec` (or srun) so that SIGTERM reaches it"
    );
    assert!(
        tokens.iter().any(|t| t == "--exit-when-idle"),
        "Slurm workers leave when idle"
    );
}

#[test]
fn the_shell_splitter_handles_the_forms_used() {
    let commands = shell_commands(
        "# comment\nexec worker \\\n    --coordinator \"$URL\" --name 'a b' # trailing\n\
         kubectl exec -i pod -- coordinator status x | tee out; echo \"q\\\"uote\"\n",
    );
    assert_eq!(
        commands,
        vec![
            vec!["exec", "worker", "--coordinator", "$URL", "--name", "a b"],
            vec![
                "kubectl",
                "exec",
                "-i",
                "pod",
                "--",
                "coordinator",
                "status",
                "x"
            ],
            vec!["tee", "out"],
            vec!["echo", "q\"uote"],
        ]
    );
    let ours = |line: &str| our_command(&shell_commands(line)[0]).map(|a| a.join(" "));
    assert_eq!(
        ours("exec worker --exit-when-idle").as_deref(),
        Some("worker --exit-when-idle")
    );
    assert_eq!(
        ours("kubectl exec pod -- coordinator status").as_deref(),
        Some("coordinator status")
    );
    assert_eq!(
        ours("docker compose run --rm cli coordinator results x --format csv").as_deref(),
        Some("coordinator results x --format csv")
    );
    assert_eq!(ours("docker compose logs -f worker"), None);
    assert_eq!(
        ours("cargo install --locked --path worker --root ~/.local"),
        None
    );
    assert_eq!(
        ours("kubectl scale deployment/lottery-worker --replicas=4"),
        None
    );
}
