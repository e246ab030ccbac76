//! The shell scripts shipped beside the code (recipes, benchmarks) parse: `bash -n` on each, so
//! a script that cannot run where it is meant to (a GPU cluster, a long benchmark) at least has
//! no syntax error.

use crate::util::repo;

#[test]
fn every_shipped_shell_script_parses() {
    let mut checked = 0;
    for dir in [
        "integrations/recipes",
        "integrations/ecosystem",
        "bench/train",
        "bench/compare",
        ".ci",
    ] {
        let Ok(entries) = std::fs::read_dir(repo().join(dir)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let is_script = path.extension().is_some_and(|e| e == "sh")
                || path.file_name().is_some_and(|n| n == "run");
            if !is_script {
                continue;
            }
            let output = std::process::Command::new("bash")
                .arg("-n")
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&output.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} scripts found");
}
