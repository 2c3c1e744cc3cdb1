//! Helpers shared by the integration tests: run the real binary, make
//! throw-away store and dataset directories.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_factbot");

/// A port nobody listens on right now (for a server a test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The repository's `data/` directory.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// Runs `factbot ARGS` with the store in `db`; never reads a user config.
pub fn factbot(db: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--db")
        .arg(db)
        .env_remove("FACTBOT_CONFIG")
        .env_remove("RUST_LOG")
        .env_remove("MATRIX_PASSWORD")
        .env_remove("MATRIX_ACCESS_TOKEN")
        .env_remove("TELOXIDE_TOKEN")
        .output()
        .expect("run factbot")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Copies `data/` into a fresh directory under `dir`, returns its path.
pub fn copy_dataset(dir: &Path) -> PathBuf {
    let to = dir.join("dataset");
    std::fs::create_dir_all(&to).unwrap();
    for f in ["facts.toml", "article.txt", "synonyms.toml"] {
        std::fs::copy(data_dir().join(f), to.join(f)).unwrap();
    }
    to
}

#[cfg(feature = "matrix")]
pub mod matrix;
pub mod telegram;
