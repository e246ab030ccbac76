//! `triad serve` as a real process, driven by real clients (Python's urllib through the verl and
//! TRL clients in `integrations/python`, and OpenRLHF's request shape at high concurrency).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::util::run_python;

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `triad serve --port 0 …` and read the bound address from its stderr.
fn start(extra: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_triad"))
        .args(["serve", "--port", "0"])
        .args(extra)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start triad serve");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in stderr.lines() {});
    Server { child, url }
}

fn http(method: &str, url: &str, body: Option<&str>, headers: &[(&str, &str)]) -> (u16, String) {
    let script = r#"
import sys, urllib.request, urllib.error
method, url, body = sys.argv[1], sys.argv[2], sys.argv[3]
headers = dict(h.split(": ", 1) for h in sys.argv[4:])
req = urllib.request.Request(url, data=body.encode() if body else None, method=method, headers=headers)
try:
    with urllib.request.urlopen(req) as r: print(r.status); print(r.read().decode())
except urllib.error.HTTPError as e: print(e.code); print(e.read().decode())
"#;
    let header_args: Vec<String> = headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    let output = Command::new(crate::util::python())
        .args(["-c", script, method, url, body.unwrap_or("")])
        .args(&header_args)
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let (status, body) = text.split_once('\n').unwrap_or((&text, ""));
    (status.trim().parse().unwrap_or(0), body.to_string())
}

#[test]
fn clients_get_correct_rewards_and_bad_input_is_refused() {
    let mut server = start(&[]);
    let pid = server.child.id().to_string();
    let report = run_python("server_clients.py", &[&server.url, &pid]);
    assert!(report.contains("ok graceful shutdown"), "{report}");
    // SIGTERM let the in-flight batch finish, then the process exited cleanly.
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn api_key_body_limit_and_item_timeout() {
    let server = start(&[
        "--api-key",
        "s3cret",
        "--max-body-bytes",
        "2048",
        "--item-timeout-ms",
        "0",
    ]);
    let body = r#"{"items": [{"response": "x</think><answer>A is false, B is true</answer>", "label": "(1) A is False\n(2) B is True"}]}"#;
    let (status, _) = http("POST", &format!("{}/score", server.url), Some(body), &[]);
    assert_eq!(status, 401);
    let (status, _) = http(
        "POST",
        &format!("{}/score", server.url),
        Some(body),
        &[("Authorization", "Bearer wrong")],
    );
    assert_eq!(status, 401);
    let (status, text) = http(
        "POST",
        &format!("{}/score", server.url),
        Some(body),
        &[("Authorization", "Bearer s3cret")],
    );
    assert_eq!(status, 200, "{text}");
    // With a zero time bound every item overruns it and scores as a timeout.
    assert!(text.contains("\"reason\":\"timeout: "), "{text}");
    let big = format!(
        r#"{{"items": [{{"response": "{}", "label": "1"}}]}}"#,
        "y".repeat(4096)
    );
    let (status, _) = http(
        "POST",
        &format!("{}/score", server.url),
        Some(&big),
        &[("Authorization", "Bearer s3cret")],
    );
    assert_eq!(status, 413);
    let (status, _) = http("GET", &format!("{}/health", server.url), None, &[]);
    assert_eq!(status, 200);
}

/// The published OpenAPI document names exactly the server's routes, and its request examples are
/// answered 200 with the documented fields.
#[test]
fn openapi_document_matches_the_server() {
    let text = std::fs::read_to_string(crate::util::repo().join("schemas/reward-api.openapi.json"))
        .unwrap();
    let spec: serde_json::Value = serde_json::from_str(&text).unwrap();
    let paths: Vec<&String> = spec["paths"].as_object().unwrap().keys().collect();
    assert_eq!(paths, ["/get_reward", "/health", "/metrics", "/score"]);
    let server = start(&[]);
    for (path, item) in spec["paths"].as_object().unwrap() {
        let Some(post) = item.get("post") else {
            continue;
        };
        let media = &post["requestBody"]["content"]["application/json"];
        let example = media["example"].to_string();
        let (status, body) = http(
            "POST",
            &format!("{}{path}", server.url),
            Some(&example),
            &[],
        );
        assert_eq!(status, 200, "{path}: {body}");
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        let schema = &post["responses"]["200"]["content"]["application/json"]["schema"];
        for field in schema["required"].as_array().unwrap() {
            assert!(
                answer.get(field.as_str().unwrap()).is_some(),
                "{path}: no {field} in {body}"
            );
        }
        assert!(body.contains("3.0"), "{path}: the example scores 3: {body}");
    }
}
