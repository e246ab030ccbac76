//! triad's integration tests: one binary made of modules (ripgrep's layout).

mod util;

mod bench;
mod generate;
mod paper;
mod pyarrow;
mod schemas;
mod score_cli;
mod scripts;
mod server;
mod traces;
mod verify;
