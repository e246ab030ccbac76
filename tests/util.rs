//! Helpers: the built binary, temporary directories, the Python interpreter the tests use.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Run the `triad` binary with arguments; panics with its stderr on failure.
pub fn triad(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_triad"))
        .args(args)
        .output()
        .expect("run triad");
    assert!(
        output.status.success(),
        "triad {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Run `triad` with standard input.
pub fn triad_stdin(args: &[&str], stdin: &str) -> Output {
    triad_stdin_bytes(args, stdin.as_bytes())
}

/// Run `triad` with standard input given as bytes (which need not be UTF-8).
pub fn triad_stdin_bytes(args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_triad"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn triad");
    let mut input = child.stdin.take().unwrap();
    let bytes = stdin.to_vec();
    let writer = std::thread::spawn(move || input.write_all(&bytes));
    let output = child.wait_with_output().expect("wait triad");
    writer.join().unwrap().unwrap();
    output
}

/// Generate a small dataset into `dir` with extra arguments.
pub fn generate(dir: &Path, extra: &[&str]) {
    let out = dir.to_str().unwrap();
    let mut args = vec!["generate", "--out", out, "--quiet"];
    args.extend_from_slice(extra);
    triad(&args);
}

/// The Python interpreter for tests: `$TRIAD_PYTHON`, else the repository's `.venv`, else
/// `python3`. It must have pyarrow and jsonschema (`.ci/run` installs them).
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("TRIAD_PYTHON") {
        return p.into();
    }
    let venv = repo().join(".venv/bin/python");
    if venv.exists() {
        venv
    } else {
        "python3".into()
    }
}

/// Run a test script from `tests/python/` with arguments; panics with its output on failure.
pub fn run_python(script: &str, args: &[&str]) -> String {
    let output = Command::new(python())
        .arg(repo().join("tests/python").join(script))
        .args(args)
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "{script} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The paper's released test splits: `$TRIAD_PAPER_DATA` (which must then exist: CI sets it, and
/// a wrong path must fail rather than skip), else `../shared/reference/paper` when present. The
/// rows have no licence to vendor, so on a fresh clone without them the tests that need them skip,
/// each with one loud line saying so; `None` then.
pub fn paper_data(test: &str) -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("TRIAD_PAPER_DATA") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.is_dir(),
            "TRIAD_PAPER_DATA={} is not a directory",
            dir.display()
        );
        return Some(dir);
    }
    let default = repo().join("../shared/reference/paper");
    if default.is_dir() {
        return Some(default);
    }
    // Straight to the stderr stream, not `eprintln!`, which the test harness captures and hides
    // for passing tests: the skip must show.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: the paper's released test splits are not here; set TRIAD_PAPER_DATA=DIR (the folder of its *-level-N-test.parquet files) to run it"
    );
    None
}

/// All shard files under a dataset directory, sorted.
pub fn shards(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}
