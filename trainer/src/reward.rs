//! Scoring rollouts: triad's scorer in process, or a running `triad serve` by URL (`/score`).
//!
//! The remote client is a minimal HTTP/1.1 POST over a `TcpStream` (`http://host:port` only):
//! the server is triad's own, on a trusted network, and this keeps an HTTP stack out of the
//! trainer's dependencies.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use triad::reward::{Preset, Score};

use crate::TrainError;

/// Where rewards come from.
#[derive(Clone, Debug)]
pub enum RewardSource {
    /// Score in this process.
    InProcess(Preset),
    /// POST to a `triad serve` at `http://host:port`.
    Remote {
        /// `host:port`.
        address: String,
        /// The preset to ask for.
        preset: Preset,
        /// Optional bearer token.
        api_key: Option<String>,
    },
}

/// One rollout to score.
#[derive(Clone, Debug)]
pub struct Rollout<'a> {
    /// The response text.
    pub response: &'a str,
    /// The task's label.
    pub label: &'a str,
    /// The prompt text the response followed.
    pub prompt: &'a str,
}

impl RewardSource {
    /// A source from an optional URL.
    pub fn new(
        url: Option<&str>,
        preset: Preset,
        api_key: Option<String>,
    ) -> Result<Self, TrainError> {
        let Some(url) = url else {
            return Ok(RewardSource::InProcess(preset));
        };
        let address = url
            .strip_prefix("http://")
            .ok_or_else(|| {
                TrainError::Invalid(format!("--reward-url {url}: only http:// is supported"))
            })?
            .trim_end_matches('/')
            .to_string();
        Ok(RewardSource::Remote {
            address,
            preset,
            api_key,
        })
    }

    /// Score `rollouts`, in order.
    pub fn score(&self, rollouts: &[Rollout]) -> Result<Vec<Score>, TrainError> {
        match self {
            RewardSource::InProcess(preset) => Ok(rollouts
                .iter()
                .map(|r| triad::reward::score(r.response, r.label, Some(r.prompt), *preset))
                .collect()),
            RewardSource::Remote {
                address,
                preset,
                api_key,
            } => score_remote(address, *preset, api_key.as_deref(), rollouts),
        }
    }
}

fn score_remote(
    address: &str,
    preset: Preset,
    api_key: Option<&str>,
    rollouts: &[Rollout],
) -> Result<Vec<Score>, TrainError> {
    let items: Vec<_> = rollouts
        .iter()
        .map(|r| serde_json::json!({"response": r.response, "label": r.label, "prompt": r.prompt}))
        .collect();
    let body =
        serde_json::to_vec(&serde_json::json!({"items": items, "reward": preset})).expect("json");
    let remote = |e: std::io::Error| TrainError::Invalid(format!("reward server {address}: {e}"));
    let mut stream = TcpStream::connect(address).map_err(remote)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(remote)?;
    let auth = api_key.map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
    let head = format!(
        "POST /score HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .and_then(|_| stream.write_all(&body))
        .map_err(remote)?;
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).map_err(remote)?;
    let mut length = None;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).map_err(remote)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse::<usize>().ok();
        }
    }
    let mut payload = Vec::new();
    match length {
        Some(n) => {
            payload.resize(n, 0);
            reader.read_exact(&mut payload).map_err(remote)?;
        }
        None => {
            reader.read_to_end(&mut payload).map_err(remote)?;
        }
    }
    if !status.contains(" 200 ") {
        return Err(TrainError::Invalid(format!(
            "reward server {address}: {} {}",
            status.trim(),
            String::from_utf8_lossy(&payload)
        )));
    }
    #[derive(serde::Deserialize)]
    struct Reply {
        results: Vec<Score>,
    }
    let reply: Reply = serde_json::from_slice(&payload)
        .map_err(|e| TrainError::Invalid(format!("reward server {address}: bad reply: {e}")))?;
    if reply.results.len() != rollouts.len() {
        return Err(TrainError::Invalid(format!(
            "reward server {address}: {} scores for {} rollouts",
            reply.results.len(),
            rollouts.len()
        )));
    }
    Ok(reply.results)
}
