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

/// Checks that `bytes` is a real chart: the PNG signature, an IHDR of
/// `w`×`h`, pixels that decode, and ink on several percent of them (not a
/// blank or single-colour picture).
pub fn check_png(bytes: &[u8], w: u32, h: u32) {
    assert!(bytes.len() > 1000, "{} bytes is no chart", bytes.len());
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR", "IHDR first");
    let be = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    assert_eq!((be(16), be(20)), (w, h), "IHDR dimensions");
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .expect("a readable PNG header");
    let mut buf = vec![0; reader.output_buffer_size().expect("a sane size")];
    let info = reader.next_frame(&mut buf).expect("readable pixels");
    buf.truncate(info.buffer_size());
    let px = info.color_type.samples();
    let first = &buf[..px];
    let total = buf.len() / px;
    let differ = buf.chunks_exact(px).filter(|p| *p != first).count();
    assert!(
        differ * 100 > total * 2,
        "only {differ} of {total} pixels differ from the corner: a blank picture"
    );
}

/// Whether the server closes `conn` (EOF or reset) within `secs`.
pub fn closed_within(conn: &mut std::net::TcpStream, secs: u64) -> bool {
    use std::io::Read;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let mut buf = [0u8; 512];
    while std::time::Instant::now() < deadline {
        conn.set_read_timeout(Some(std::time::Duration::from_millis(250)))
            .unwrap();
        match conn.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

/// Takes every one of a server's `slots` with a connection that sent
/// `head` (a request line and headers, never finished), and checks that one
/// more connection is closed at once. The server accepts in order: once the
/// extra one is closed, every returned connection holds a slot.
pub fn hold_every_slot(port: u16, slots: usize, head: &[u8]) -> Vec<std::net::TcpStream> {
    use std::io::Write;
    let held = (0..slots)
        .map(|_| {
            let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.write_all(head).unwrap();
            c
        })
        .collect();
    let mut extra = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert!(
        closed_within(&mut extra, 10),
        "a connection over the cap is closed at once"
    );
    held
}
