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
/// answered with the documented success status and fields.
#[test]
fn openapi_document_matches_the_server() {
    let text = std::fs::read_to_string(crate::util::repo().join("schemas/reward-api.openapi.json"))
        .unwrap();
    let spec: serde_json::Value = serde_json::from_str(&text).unwrap();
    let paths: Vec<&String> = spec["paths"].as_object().unwrap().keys().collect();
    assert_eq!(
        paths,
        [
            "/get_reward",
            "/health",
            "/metrics",
            "/score",
            "/sessions",
            "/sessions/{id}",
            "/tasks"
        ]
    );
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
        // A fresh server: creating answers 201 where the document has it.
        let success = ["201", "200"]
            .into_iter()
            .find(|code| post["responses"].get(code).is_some())
            .unwrap();
        assert_eq!(status.to_string(), success, "{path}: {body}");
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        let response = &post["responses"][success]["content"]["application/json"]["schema"];
        let schema = match response["$ref"].as_str() {
            Some(reference) => {
                &spec["components"]["schemas"][reference.rsplit('/').next().unwrap()]
            }
            None => response,
        };
        for field in schema["required"].as_array().unwrap() {
            assert!(
                answer.get(field.as_str().unwrap()).is_some(),
                "{path}: no {field} in {body}"
            );
        }
        if path == "/score" || path == "/get_reward" {
            assert!(body.contains("3.0"), "{path}: the example scores 3: {body}");
        }
        if path == "/tasks" {
            assert_eq!(answer["tasks"].as_array().unwrap().len(), 2, "{body}");
        }
        if path == "/sessions" {
            let id = answer["id"].as_str().unwrap();
            let (status, body) = http("GET", &format!("{}/sessions/{id}", server.url), None, &[]);
            assert_eq!(status, 200, "{body}");
        }
    }
}

/// A raw TCP client, for what an HTTP library will not do: send half a request and stall.
fn connect(url: &str) -> std::net::TcpStream {
    let address = url.trim_start_matches("http://");
    let stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    stream
}

/// Read until the server closes the connection (or the read timeout); what arrived.
fn read_all(stream: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    let mut out = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buffer[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Send `request` as it is on a fresh connection; everything the server answers before closing.
fn raw(url: &str, request: &[u8]) -> String {
    use std::io::Write;
    let mut stream = connect(url);
    stream.write_all(request).unwrap();
    read_all(&mut stream)
}

fn raw_get(url: &str, path: &str, headers: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n");
    raw(url, request.as_bytes())
}

fn raw_post(url: &str, path: &str, body: &str) -> String {
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    raw(url, request.as_bytes())
}

/// Slow clients cannot hold the server: connections over the cap are closed at once, stalled
/// ones are dropped at the header timeout, and `/health` answers throughout the recovery.
#[test]
fn stalled_connections_are_bounded_in_number_and_time() {
    use std::io::Write;
    let server = start(&["--max-connections", "16", "--header-timeout-ms", "700"]);
    let started = std::time::Instant::now();
    let mut stalled: Vec<std::net::TcpStream> = (0..40)
        .map(|_| {
            let mut stream = connect(&server.url);
            // Half a request line, then nothing: a byte-a-second client.
            stream.write_all(b"POST /score HT").unwrap();
            stream
        })
        .collect();
    // Every connection is closed by the server: those over the cap at once, the others at the
    // header timeout. None is held until the client's own 10 s read timeout.
    for stream in &mut stalled {
        let answer = read_all(stream);
        assert!(!answer.contains("200 OK"), "{answer}");
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "stalled connections were held for {:?}",
        started.elapsed()
    );
    let health = raw_get(&server.url, "/health", "");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let metrics = raw_get(&server.url, "/metrics", "");
    let counter = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing: {metrics}"))
            .trim()
            .parse()
            .unwrap()
    };
    assert!(
        counter("triad_connections_refused_total") >= 20.0,
        "{metrics}"
    );
    assert!(
        counter("triad_connections_dropped_total") >= 1.0,
        "{metrics}"
    );
}

/// A declared body over the limit is answered 413 before any of it is sent; a body that does not
/// arrive in time is answered 408.
#[test]
fn oversized_and_stalled_bodies_are_answered_at_once() {
    let server = start(&["--max-body-bytes", "2048", "--body-timeout-ms", "500"]);
    let started = std::time::Instant::now();
    let answer = raw(
        &server.url,
        b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("--max-body-bytes"), "{answer}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));

    let answer = raw(
        &server.url,
        b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"items\":",
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

/// SIGTERM with a client stalled mid-headers: the server still exits, within its grace period.
#[test]
fn shutdown_has_a_deadline() {
    use std::io::Write;
    let mut server = start(&["--shutdown-grace-ms", "500", "--header-timeout-ms", "60000"]);
    let mut stalled = connect(&server.url);
    stalled
        .write_all(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Le")
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let pid = server.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// With an API key, `/metrics` (per-family accuracy) needs it too; `/health` stays open.
#[test]
fn metrics_are_behind_the_key() {
    let server = start(&["--api-key", "s3cret"]);
    assert!(raw_get(&server.url, "/metrics", "").starts_with("HTTP/1.1 401"));
    let metrics = raw_get(&server.url, "/metrics", "Authorization: Bearer s3cret\r\n");
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(metrics.contains("triad_items_scored_total"));
    assert!(raw_get(&server.url, "/health", "").starts_with("HTTP/1.1 200"));
}

/// POST `body` to `/get_reward`; it must be answered 200; the reply.
fn get_reward(server: &Server, body: &str) -> serde_json::Value {
    let (status, text) = http(
        "POST",
        &format!("{}/get_reward", server.url),
        Some(body),
        &[],
    );
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// Timeouts and bad labels are flagged in `extra_logs`, never to be read as wrong answers.
#[test]
fn extra_logs_flag_timeouts_and_errors() {
    let server = start(&["--item-timeout-ms", "0"]);
    let body = serde_json::json!({
        "query": ["x</think><answer>A is false, B is true</answer>"],
        "labels": ["(1) A is False\n(2) B is True"],
    })
    .to_string();
    let reply = get_reward(&server, &body);
    assert_eq!(reply["extra_logs"]["timeout"], serde_json::json!([1.0]));
    assert_eq!(reply["extra_logs"]["error"], serde_json::json!([0.0]));
    let server = start(&[]);
    let body = serde_json::json!({
        "query": ["x</think><answer>A is false</answer>", "x</think><answer>A is false, B is true</answer>"],
        "labels": ["{\"v\":1,\"family\":\"deduction\",\"level\":1,\"instance\":{\"variables\":[],\"formulas\":[],\"solution\":[]}}", "(1) A is False\n(2) B is True"],
    })
    .to_string();
    let reply = get_reward(&server, &body);
    assert_eq!(reply["extra_logs"]["error"], serde_json::json!([1.0, 0.0]));
    assert_eq!(
        reply["extra_logs"]["timeout"],
        serde_json::json!([0.0, 0.0])
    );
    assert_eq!(reply["rewards"][1], 3.0);
}

/// One request whose label is a formula nested 100,000 deep (60 KB) used to overflow a worker's
/// stack and abort the whole server; now it is a bad label and the server carries on.
#[test]
fn a_deeply_nested_label_does_not_kill_the_server() {
    let server = start(&[]);
    let deep = format!("{}A{}", "(".repeat(100_000), ")".repeat(100_000));
    let label = serde_json::json!({"v": 1, "family": "deduction", "level": 1,
        "instance": {"variables": ["A"], "formulas": [deep], "solution": [true]}})
    .to_string();
    let body = serde_json::json!({"items": [{"response": "<think>x</think><answer>A is true</answer>", "label": label}]}).to_string();
    let text = raw_post(&server.url, "/score", &body);
    assert!(
        text.starts_with("HTTP/1.1 200"),
        "{}",
        &text[..text.len().min(300)]
    );
    assert!(
        text.contains("bad_label"),
        "{}",
        &text[..text.len().min(300)]
    );
    let (status, _) = http("GET", &format!("{}/health", server.url), None, &[]);
    assert_eq!(status, 200);
}

/// `"reward": "steps"` on `/score`: a wrong answer whose think block has one checked step of the
/// label's three-line trace earns 0.5 / 3, a right one 1, and an unknown preset is a 4xx.
#[test]
fn score_takes_the_steps_preset() {
    let server = start(&[]);
    let label = serde_json::json!({"v": 1, "family": "deduction", "level": 1,
        "instance": {"variables": ["A", "B"], "formulas": ["(A ∨ B)", "¬A"], "solution": [false, true]}})
    .to_string();
    let first = "A is False, since otherwise formula 2 would be false.";
    let item = |think: &str, answer: &str| {
        serde_json::json!({"response": format!("<think>\n{think}\n</think>\n<answer>\n{answer}\n</answer>"),
            "label": label})
    };
    let body = serde_json::json!({"reward": "steps", "items": [
        item(first, "(1) A is True\n(2) B is True"),
        item("", "(1) A is False\n(2) B is True"),
    ]})
    .to_string();
    let (status, text) = http("POST", &format!("{}/score", server.url), Some(&body), &[]);
    assert_eq!(status, 200, "{text}");
    let reply: serde_json::Value = serde_json::from_str(&text).unwrap();
    let scores: Vec<f64> = reply["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["score"].as_f64().unwrap())
        .collect();
    assert_eq!(scores, [0.5 / 3.0, 1.0], "{text}");
    let unknown = body.replace("\"steps\"", "\"shaped\"");
    let (status, _) = http(
        "POST",
        &format!("{}/score", server.url),
        Some(&unknown),
        &[],
    );
    assert!((400..500).contains(&status), "{status}");
}

/// `POST /tasks` and sessions with a real server and Python's HTTP client: rows equal the
/// dataset's, a simulated learner is driven up the levels and back down, bad requests get 4xx,
/// and the session survives a restart (SIGTERM writes it; a new process reads it).
#[test]
fn online_tasks_follow_the_learner_and_sessions_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    crate::util::generate(
        &data,
        &[
            "--families",
            "deduction",
            "--levels",
            "2",
            "--train",
            "20",
            "--test",
            "5",
            "--seed",
            "5",
        ],
    );
    let sessions = dir.path().join("sessions");
    let sessions_flag = sessions.to_str().unwrap();
    let mut server = start(&["--sessions-dir", sessions_flag]);
    let out = run_python(
        "online_tasks.py",
        &[&server.url, data.to_str().unwrap(), "learner-1"],
    );
    let report: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(report["id"], "learner-1", "{out}");
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(server.child.wait().unwrap().success());
    assert!(sessions.join("learner-1.json").exists());
    let restarted = start(&["--sessions-dir", sessions_flag]);
    let (status, body) = http(
        "GET",
        &format!("{}/sessions/learner-1", restarted.url),
        None,
        &[],
    );
    assert_eq!(status, 200, "{body}");
    let after: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(after, report);
}
