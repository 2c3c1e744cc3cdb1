//! The Telegram side of the end-to-end tests: the Bot API emulator
//! (`tests/telegram-emulator`, Node) and the real `factbot run` process
//! pointed at it, both on 127.0.0.1. Every wait is bounded.

use super::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The token the tests give the bot; asserted never to reach a log line.
pub const TOKEN: &str = "123456:TEST-SECRET-TOKEN-do-not-log";
pub const BOT_USERNAME: &str = "factbot_test_bot";

/// A running emulator; killed on drop.
pub struct Emulator {
    pub url: String,
    child: Child,
}

impl Emulator {
    pub fn start() -> Emulator {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/telegram-emulator");
        assert!(
            dir.join("node_modules/telegram-test-api").exists(),
            "the Telegram emulator is not installed: run `npm ci` in {} (scripts/test.sh does)",
            dir.display()
        );
        let port = free_port();
        let child = Command::new("node")
            .arg(dir.join("server.js"))
            .env("TG_EMU_PORT", port.to_string())
            .env("TG_EMU_BOT_USERNAME", BOT_USERNAME)
            .env("TG_EMU_INLINE", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("node must be installed to run the Telegram emulator");
        let emu = Emulator {
            url: format!("http://127.0.0.1:{port}"),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while ureq::get(&format!("{}/control/health", emu.url))
            .call()
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "the emulator did not come up in 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        emu
    }

    fn post(&self, path: &str, body: Value) -> Value {
        match ureq::post(&format!("{}{path}", self.url)).send_json(body) {
            Ok(r) => r.into_json().expect("JSON from the emulator"),
            Err(ureq::Error::Status(code, r)) => {
                panic!(
                    "POST {path}: {code} {}",
                    r.into_string().unwrap_or_default()
                )
            }
            Err(e) => panic!("POST {path}: {e}"),
        }
    }

    pub fn get(&self, path: &str) -> Value {
        match ureq::get(&format!("{}{path}", self.url)).call() {
            Ok(r) => r.into_json().expect("JSON from the emulator"),
            Err(e) => panic!("GET {path}: {e}"),
        }
    }

    /// A user writes `text` in `chat` (positive: private, negative: group).
    pub fn say(&self, chat: i64, text: &str) -> Value {
        self.say_as(
            chat,
            text,
            json!({"id": chat.abs(), "first_name": "Ann", "language_code": "en"}),
        )
    }

    pub fn say_as(&self, chat: i64, text: &str, from: Value) -> Value {
        self.post(
            "/control/message",
            json!({"chat_id": chat, "text": text, "from": from}),
        )["result"]
            .clone()
    }

    /// A user replies to message `to` in `chat`.
    pub fn reply(&self, chat: i64, to: i64, text: &str) -> Value {
        self.post(
            "/control/message",
            json!({"chat_id": chat, "text": text, "reply_to_message_id": to}),
        )["result"]
            .clone()
    }

    /// User `from` replies to message `to` in `chat`.
    pub fn reply_as(&self, chat: i64, to: i64, text: &str, from: Value) -> Value {
        self.post(
            "/control/message",
            json!({"chat_id": chat, "text": text, "reply_to_message_id": to, "from": from}),
        )["result"]
            .clone()
    }

    /// Presses the inline button with callback `data` under message `message_id`.
    pub fn press(&self, chat: i64, message_id: i64, data: &str) -> Value {
        self.post(
            "/control/callback",
            json!({"chat_id": chat, "message_id": message_id, "data": data}),
        )["result"]
            .clone()
    }

    /// Like [`Emulator::press`], even if the button is no longer there (a
    /// second tap that raced the message's edit).
    pub fn press_forced(&self, chat: i64, message_id: i64, data: &str) -> Value {
        self.post(
            "/control/callback",
            json!({"chat_id": chat, "message_id": message_id, "data": data, "force": true}),
        )["result"]
            .clone()
    }

    pub fn inline_query(&self, query: &str) -> Value {
        self.post("/control/inline_query", json!({"query": query}))["result"].clone()
    }

    /// Injects a raw update (`{"<kind>": {...}}`); its update id.
    pub fn raw_update(&self, update: Value) -> i64 {
        self.post("/control/update", json!({ "update": update }))["result"]["update_id"]
            .as_i64()
            .unwrap_or(0)
    }

    pub fn fault(&self, fault: Value) {
        self.post("/control/faults", fault);
    }

    /// Turns on Telegram's real rate limits (30/s overall, 1/s per chat,
    /// 20/min per group), answered with 429s as Telegram does.
    pub fn enforce_limits(&self) {
        self.post("/control/limits", json!({"enabled": true}));
    }

    /// Events (`sent`, `edited`, …) in `chat` after `after`, waiting up to
    /// `secs` for the first.
    pub fn events(&self, chat: Option<i64>, after: u64, secs: u64) -> Vec<Value> {
        let chat = chat.map(|c| format!("chat_id={c}&")).unwrap_or_default();
        self.get(&format!(
            "/control/messages?{chat}after={after}&timeout={secs}"
        ))["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The next event of `kind` in `chat` after sequence `after`; panics
    /// after `secs` seconds without one.
    pub fn next(&self, chat: Option<i64>, kind: &str, after: u64, secs: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut after = after;
        loop {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .as_secs()
                .max(1);
            for e in self.events(chat, after, left) {
                after = after.max(e["seq"].as_u64().unwrap_or(0));
                if e["kind"] == kind {
                    return e;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no {kind} event in chat {chat:?} within {secs} s"
            );
        }
    }

    /// The latest event sequence number.
    pub fn last_seq(&self) -> u64 {
        self.get("/control/messages?after=0&timeout=0")["last_seq"]
            .as_u64()
            .unwrap_or(0)
    }

    /// Waits (at most `secs`) until the bot has confirmed every update.
    pub fn wait_confirmed(&self, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while self.get("/control/stats")["result"]["pending_updates"] != 0 {
            assert!(
                Instant::now() < deadline,
                "updates still unconfirmed after {secs} s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Telegram starts update ids over: the next update gets `id`.
    pub fn next_update_id(&self, id: i64) {
        self.post("/control/next_update_id", json!({ "update_id": id }));
    }

    /// Calls of a Bot API `method` (as teloxide names it, e.g. `GetUpdates`)
    /// the emulator has counted, successful or not.
    pub fn calls(&self, method: &str) -> u64 {
        self.get("/control/stats")["result"]["calls"][method]
            .as_u64()
            .unwrap_or(0)
    }

    /// Declares `user`'s status in `chat` for getChatMember.
    pub fn member(&self, chat: i64, user: i64, status: &str) {
        self.post(
            "/control/member",
            json!({"chat_id": chat, "user_id": user, "status": status}),
        );
    }

    /// Updates the bot has not yet confirmed (polling) or acknowledged
    /// (webhook).
    pub fn pending_updates(&self) -> u64 {
        self.get("/control/stats")["result"]["pending_updates"]
            .as_u64()
            .unwrap_or(0)
    }

    /// Successful sends per chat, as the emulator counted them.
    pub fn sends_by_chat(&self) -> std::collections::HashMap<i64, u64> {
        let stats = self.get("/control/stats");
        stats["result"]["chats"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.parse().ok()?, v["SendMessage"].as_u64()?)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The bytes of a file the bot sent, by any of its file ids.
    pub fn file(&self, file_id: &str) -> Vec<u8> {
        let url = format!("{}/control/file?file_id={file_id}", self.url);
        let r = ureq::get(&url)
            .call()
            .unwrap_or_else(|e| panic!("GET file {file_id}: {e}"));
        let mut out = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(r.into_reader(), 20 << 20),
            &mut out,
        )
        .unwrap();
        out
    }

    /// Photos uploaded (multipart) so far, by method.
    pub fn uploads(&self, method: &str) -> u64 {
        self.get("/control/stats")["result"]["uploads"][method]
            .as_u64()
            .unwrap_or(0)
    }

    /// Forgets every file: the bot's stored file ids go stale.
    pub fn forget_files(&self) {
        let url = format!("{}/control/files", self.url);
        ureq::delete(&url).call().expect("DELETE /control/files");
    }

    /// Successful sends to `chat`, as the emulator counted them.
    pub fn sends_to(&self, chat: i64) -> u64 {
        // teloxide names methods in PascalCase; the emulator counts as called.
        self.get("/control/stats")["result"]["chats"][chat.to_string()]["SendMessage"]
            .as_u64()
            .unwrap_or(0)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `factbot run`; killed on drop.
pub struct BotProcess {
    pub child: Child,
    pub dir: PathBuf,
    pub log: PathBuf,
}

impl BotProcess {
    /// Starts the bot with its store in `dir` against `emu`.
    pub fn start(emu: &Emulator, dir: &Path) -> BotProcess {
        Self::start_with(emu, dir, "")
    }

    pub fn start_with(emu: &Emulator, dir: &Path, extra_config: &str) -> BotProcess {
        Self::start_env(emu, dir, extra_config, &[])
    }

    /// Like [`BotProcess::start_with`], with extra environment variables.
    pub fn start_env(
        emu: &Emulator,
        dir: &Path,
        extra_config: &str,
        env: &[(&str, &str)],
    ) -> BotProcess {
        Self::start_api(&format!("{}/", emu.url), dir, extra_config, env)
    }

    /// Starts the bot against the Bot API at `api_url` (no emulator: an
    /// address nobody answers on, say).
    pub fn start_api(
        api_url: &str,
        dir: &Path,
        extra_config: &str,
        env: &[(&str, &str)],
    ) -> BotProcess {
        let cfg = dir.join("bot.toml");
        std::fs::write(
            &cfg,
            format!(
                "[store]\npath = \"state\"\n[telegram]\napi_url = \"{api_url}\"\n{extra_config}"
            ),
        )
        .unwrap();
        // As an operator keeps a config with a token: private (else the bot
        // warns, and tests that read the log for warnings would see it).
        std::fs::set_permissions(
            &cfg,
            <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600),
        )
        .unwrap();
        let log = dir.join(format!(
            "bot-{}.log",
            Instant::now().elapsed().as_nanos() ^ u128::from(std::process::id())
        ));
        let log = if log.exists() {
            dir.join("bot-2.log")
        } else {
            log
        };
        let child = Command::new(super::BIN)
            .args(["run", "--config"])
            .arg(&cfg)
            .envs(env.iter().copied())
            .env("TELOXIDE_TOKEN", TOKEN)
            .env("RUST_LOG", "trace")
            .env_remove("FACTBOT_CONFIG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        BotProcess {
            child,
            dir: dir.to_path_buf(),
            log,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Waits (at most `secs`) until the bot has recorded `n` updates as
    /// answered (its debug log says so).
    pub fn wait_answered(&self, n: usize, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while self.log().matches("telegram: update answered").count() < n {
            assert!(
                Instant::now() < deadline,
                "fewer than {n} updates recorded as answered after {secs} s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (at most `secs`) until the log has `n` lines containing `what`.
    pub fn wait_log(&self, what: &str, n: usize, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while self.log().matches(what).count() < n {
            assert!(
                Instant::now() < deadline,
                "fewer than {n} log lines with {what:?} after {secs} s; log tail:\n{}",
                self.log()
                    .lines()
                    .rev()
                    .take(30)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, and wait for it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits (at most `secs`) for the bot to exit; its exit status.
    pub fn wait_exit(&mut self, secs: u64) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "the bot did not exit within {secs} s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The bot's resident memory: (now, peak) in KiB, from /proc.
    pub fn rss_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// SIGTERM; the exit status within `secs`, or a panic.
    pub fn terminate(&mut self, secs: u64) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.wait_exit(secs)
    }
}

impl Drop for BotProcess {
    fn drop(&mut self) {
        self.kill9();
        let log = self.log();
        assert!(
            !log.contains(TOKEN) && !log.contains("TEST-SECRET"),
            "the bot token reached a log line"
        );
    }
}
