//! The Matrix side of the end-to-end tests: a real Synapse homeserver
//! (`tests/synapse`, from PyPI) on 127.0.0.1, people talking to the bot
//! through matrix-sdk clients of their own, and the real `factbot run`
//! process. Every wait is bounded.
//!
//! One Synapse serves all tests of a test binary (started on first use and
//! stopped by a watcher when the test process exits, whichever way it
//! exits); a test that stops the homeserver starts a private one.

use super::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use matrix_sdk::config::SyncSettings;
use matrix_sdk::deserialized_responses::TimelineEventKind;
use matrix_sdk::ruma::api::client::filter::FilterDefinition;
use matrix_sdk::ruma::api::client::room::create_room::v3::Request as CreateRoom;
use matrix_sdk::ruma::events::room::encryption::RoomEncryptionEventContent;
use matrix_sdk::ruma::events::room::message::{
    MessageType, OriginalSyncRoomMessageEvent, Relation, RoomMessageEventContent,
};
use matrix_sdk::ruma::events::{
    AnySyncMessageLikeEvent, AnySyncTimelineEvent, InitialStateEvent, SyncMessageLikeEvent,
};
use matrix_sdk::ruma::{OwnedEventId, OwnedRoomId, OwnedUserId};
use matrix_sdk::{Client, Room};

pub const BOT_PASSWORD: &str = "bot-PASSWORD-do-not-log";

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/synapse")
}

/// A Synapse started by `tests/synapse/start.sh` into a throw-away folder.
pub struct Synapse {
    pub url: String,
    pub port: u16,
    pub dir: PathBuf,
}

impl Synapse {
    /// The test binary's shared homeserver.
    pub fn shared() -> &'static Synapse {
        static SHARED: OnceLock<Synapse> = OnceLock::new();
        SHARED.get_or_init(|| {
            let s = Synapse::start_private();
            s.stop_when_tests_exit();
            s
        })
    }

    /// A homeserver of one's own (to stop and start it).
    pub fn start_private() -> Synapse {
        let dir = tempfile::Builder::new()
            .prefix("factbot-synapse-")
            .tempdir()
            .expect("temp dir")
            .keep();
        let port = free_port();
        let s = Synapse {
            url: format!("http://127.0.0.1:{port}"),
            port,
            dir,
        };
        s.start();
        s
    }

    /// Starts (again) on the same folder and port; panics with the script's
    /// output if it fails (a missing Synapse is a failure, never a skip).
    pub fn start(&self) {
        let out = Command::new(scripts().join("start.sh"))
            .arg(&self.dir)
            .arg(self.port.to_string())
            .output()
            .expect("run tests/synapse/start.sh");
        assert!(
            out.status.success(),
            "Synapse did not start (tests/synapse/start.sh):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn stop(&self) {
        let out = Command::new(scripts().join("stop.sh"))
            .arg(&self.dir)
            .output()
            .expect("run tests/synapse/stop.sh");
        assert!(out.status.success(), "stop.sh failed");
    }

    /// Synapse runs in its own session (start.sh uses setsid) and would
    /// outlive the tests: a watcher stops it when this process is gone.
    // The watcher must outlive this process, so it is never waited for.
    #[allow(clippy::zombie_processes)]
    pub fn stop_when_tests_exit(&self) {
        let script = format!(
            "tail --pid={} -f /dev/null; '{}' '{}' >/dev/null 2>&1; rm -rf '{}'",
            std::process::id(),
            scripts().join("stop.sh").display(),
            self.dir.display(),
            self.dir.display()
        );
        Command::new("setsid")
            .args(["bash", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the Synapse watcher");
    }

    /// Registers `user` (or logs in if it exists): (user id, access token,
    /// device id).
    pub fn register(&self, user: &str, password: &str, admin: bool) -> (String, String, String) {
        let mut cmd = Command::new("python3");
        cmd.arg(scripts().join("register.py"))
            .args(["--url", &self.url, "--secret-file"])
            .arg(self.dir.join("shared_secret"))
            .args(["--user", user, "--password", password, "--login-if-exists"]);
        if admin {
            cmd.arg("--admin");
        }
        let out = cmd.output().expect("run register.py");
        assert!(
            out.status.success(),
            "register.py {user}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("register.py JSON");
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        (s("user_id"), s("access_token"), s("device_id"))
    }

    /// Sets a user's message rate limit (Synapse admin API).
    pub fn override_ratelimit(
        &self,
        admin_token: &str,
        user_id: &str,
        per_second: u32,
        burst: u32,
    ) {
        ureq::post(&format!(
            "{}/_synapse/admin/v1/users/{user_id}/override_ratelimit",
            self.url
        ))
        .set("Authorization", &format!("Bearer {admin_token}"))
        .send_json(serde_json::json!({"messages_per_second": per_second, "burst_count": burst}))
        .expect("override_ratelimit");
    }

    /// The devices of a user (Synapse admin API).
    pub fn devices(&self, admin_token: &str, user_id: &str) -> Vec<String> {
        let v: serde_json::Value = ureq::get(&format!(
            "{}/_synapse/admin/v2/users/{user_id}/devices",
            self.url
        ))
        .set("Authorization", &format!("Bearer {admin_token}"))
        .call()
        .expect("list devices")
        .into_json()
        .expect("devices JSON");
        v["devices"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d["device_id"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A unique user name per call (tests share the homeserver).
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A message seen by a person.
#[derive(Clone, Debug)]
pub struct Seen {
    pub event_id: OwnedEventId,
    pub sender: OwnedUserId,
    pub notice: bool,
    pub body: String,
    pub html: Option<String>,
    pub in_reply_to: Option<OwnedEventId>,
    /// The content of an `m.image` (source, info).
    pub image: Option<matrix_sdk::ruma::events::room::message::ImageMessageEventContent>,
}

/// A person with a matrix-sdk client (in-memory stores, encryption on).
pub struct Person {
    pub client: Client,
    pub user_id: OwnedUserId,
    token: Option<String>,
    /// Messages seen so far, in order.
    pub seen: Vec<(OwnedRoomId, Seen)>,
}

impl Person {
    pub async fn new(hs: &Synapse, name: &str) -> Person {
        hs.register(name, "pw", false);
        let client = Client::builder()
            .homeserver_url(&hs.url)
            .build()
            .await
            .expect("client");
        client
            .matrix_auth()
            .login_username(name, "pw")
            .initial_device_display_name("test person")
            .send()
            .await
            .expect("login");
        let user_id = client.user_id().expect("user id").to_owned();
        let mut p = Person {
            client,
            user_id,
            token: None,
            seen: Vec::new(),
        };
        p.sync(Duration::ZERO).await;
        p
    }

    /// One sync; records messages (up to 500 per room since the last
    /// sync: a test that floods a room must still see every reply).
    pub async fn sync(&mut self, timeout: Duration) {
        let mut filter = FilterDefinition::default();
        filter.room.timeline.limit = Some(500u32.into());
        let mut s = SyncSettings::default()
            .timeout(timeout)
            .filter(filter.into());
        if let Some(t) = &self.token {
            s = s.token(t.clone());
        }
        let r = self.client.sync_once(s).await.expect("sync");
        for (room_id, update) in &r.rooms.joined {
            for ev in &update.timeline.events {
                if let TimelineEventKind::UnableToDecrypt { .. } = ev.kind {
                    self.seen.push((
                        room_id.clone(),
                        Seen {
                            event_id: ev.event_id().expect("event id"),
                            sender: ev.raw().get_field("sender").ok().flatten().expect("sender"),
                            notice: false,
                            body: "<unable to decrypt>".into(),
                            html: None,
                            in_reply_to: None,
                            image: None,
                        },
                    ));
                    continue;
                }
                if let Ok(AnySyncTimelineEvent::MessageLike(
                    AnySyncMessageLikeEvent::RoomMessage(SyncMessageLikeEvent::Original(m)),
                )) = ev.raw().deserialize()
                {
                    self.seen.push((room_id.clone(), seen(&m)));
                }
            }
        }
        self.token = Some(r.next_batch);
    }

    /// Creates a room and invites `invite`; encrypted if asked.
    pub async fn create_room(&mut self, invite: &[&str], encrypted: bool) -> Room {
        let mut req = CreateRoom::new();
        req.invite = invite.iter().map(|u| u.parse().expect("user id")).collect();
        if encrypted {
            req.initial_state = vec![InitialStateEvent::with_empty_state_key(
                RoomEncryptionEventContent::with_recommended_defaults(),
            )
            .to_raw_any()];
        }
        let room = self.client.create_room(req).await.expect("create room");
        self.sync(Duration::ZERO).await;
        room
    }

    /// A room created as a direct chat (`is_direct: true`, the flag clients
    /// set for one-to-one chats) that invites everyone in `invite`.
    pub async fn create_direct_room(&mut self, invite: &[&str]) -> Room {
        let mut req = CreateRoom::new();
        req.invite = invite.iter().map(|u| u.parse().expect("user id")).collect();
        req.is_direct = true;
        let room = self.client.create_room(req).await.expect("create room");
        self.sync(Duration::ZERO).await;
        room
    }

    /// Joins a room this person was invited to; the room as they see it.
    pub async fn join_invited(&mut self, room: &Room) -> Room {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.sync(Duration::from_millis(200)).await;
            if let Some(r) = self.client.get_room(room.room_id()) {
                r.join().await.expect("join");
                return r;
            }
            assert!(Instant::now() < deadline, "no invite to {}", room.room_id());
        }
    }

    /// A group room: this person creates it, invites the bot and `other`,
    /// and both join. Returns the room as seen by each person.
    pub async fn group_with(&mut self, other: &mut Person, bot: &str) -> (Room, Room) {
        let room = self
            .create_room(&[bot, other.user_id.as_str()], false)
            .await;
        self.wait_joined(&room, bot, 30).await;
        other.sync(Duration::ZERO).await;
        let theirs = other
            .client
            .get_room(room.room_id())
            .expect("the other person is invited");
        theirs.join().await.expect("the other person joins");
        self.wait_joined(&room, other.user_id.as_str(), 30).await;
        (room, theirs)
    }

    /// Waits until `user` has joined `room` (at most `secs`).
    pub async fn wait_joined(&mut self, room: &Room, user: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let uid: OwnedUserId = user.parse().expect("user id");
        loop {
            if let Ok(Some(m)) = room.get_member_no_sync(&uid).await {
                if *m.membership() == matrix_sdk::ruma::events::room::member::MembershipState::Join
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{user} did not join within {secs} s"
            );
            self.sync(Duration::from_millis(500)).await;
        }
    }

    /// The membership of `user` in `room`, as last synced.
    pub async fn membership(&self, room: &Room, user: &str) -> Option<String> {
        let uid: OwnedUserId = user.parse().ok()?;
        room.get_member_no_sync(&uid)
            .await
            .ok()
            .flatten()
            .map(|m| m.membership().to_string())
    }

    /// Waits (at most `secs`) until `user`'s membership in `room` is `state`
    /// (`join`, `leave`, `invite`).
    pub async fn wait_membership(&mut self, room: &Room, user: &str, state: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            self.sync(Duration::from_millis(200)).await;
            let now = self.membership(room, user).await;
            if now.as_deref() == Some(state) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{user} is {now:?}, not {state}, after {secs} s"
            );
        }
    }

    pub async fn say(&mut self, room: &Room, text: &str) -> OwnedEventId {
        self.send(room, RoomMessageEventContent::text_plain(text))
            .await
    }

    pub async fn send(&mut self, room: &Room, content: RoomMessageEventContent) -> OwnedEventId {
        room.send(content).await.expect("send").response.event_id
    }

    /// The bot's reply to `question` (a notice replying to it), waiting at
    /// most `secs`.
    pub async fn reply_to(&mut self, question: &OwnedEventId, secs: u64) -> Seen {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(s) = self.replies_to(question).into_iter().next() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "no reply to {question} within {secs} s; seen: {:#?}",
                self.seen
            );
            self.sync(Duration::from_millis(500)).await;
        }
    }

    /// Waits (at most `secs`) until a message from `sender` whose body
    /// contains `needle` has been seen; returns it.
    pub async fn wait_for(&mut self, sender: &str, needle: &str, secs: u64) -> Seen {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some((_, s)) = self
                .seen
                .iter()
                .find(|(_, s)| s.sender == sender && s.body.contains(needle))
            {
                return s.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no message with {needle:?} from {sender} within {secs} s; seen: {:#?}",
                self.seen
            );
            self.sync(Duration::from_millis(500)).await;
        }
    }

    /// How many messages from `sender` containing `needle` were seen.
    pub fn count(&self, sender: &str, needle: &str) -> usize {
        self.seen
            .iter()
            .filter(|(_, s)| s.sender == sender && s.body.contains(needle))
            .count()
    }

    /// Every reply to `question` seen so far.
    pub fn replies_to(&self, question: &OwnedEventId) -> Vec<Seen> {
        self.seen
            .iter()
            .filter(|(_, s)| s.in_reply_to.as_ref() == Some(question))
            .map(|(_, s)| s.clone())
            .collect()
    }
}

fn seen(m: &OriginalSyncRoomMessageEvent) -> Seen {
    let (body, html, notice) = match &m.content.msgtype {
        MessageType::Text(t) => (
            t.body.clone(),
            t.formatted.as_ref().map(|f| f.body.clone()),
            false,
        ),
        MessageType::Notice(n) => (
            n.body.clone(),
            n.formatted.as_ref().map(|f| f.body.clone()),
            true,
        ),
        other => (other.body().to_string(), None, false),
    };
    let in_reply_to = match &m.content.relates_to {
        Some(Relation::Reply(r)) => Some(r.in_reply_to.event_id.clone()),
        _ => None,
    };
    let image = match &m.content.msgtype {
        MessageType::Image(i) => Some(i.clone()),
        _ => None,
    };
    Seen {
        event_id: m.event_id.clone(),
        sender: m.sender.clone(),
        notice,
        body,
        html,
        in_reply_to,
        image,
    }
}

/// A running `factbot run` with a `[matrix]` section; killed on drop, after
/// which its log is checked to hold neither password nor access token.
pub struct MatrixBot {
    pub child: Child,
    pub dir: PathBuf,
    pub log: PathBuf,
    pub user_id: String,
    /// Secrets that must never reach the log.
    secrets: Vec<String>,
    runs: u32,
    config: PathBuf,
    /// Environment for the process (secrets come from here).
    env: Vec<(String, String)>,
    rust_log: String,
    /// Extra arguments of `factbot run` for the next starts.
    pub args: Vec<String>,
}

impl MatrixBot {
    /// Registers bot user `name` and starts the bot with its store in `dir`.
    pub fn start(hs: &Synapse, dir: &Path, name: &str, extra: &str) -> MatrixBot {
        let mut bot = Self::prepare(hs, dir, name, extra, "debug");
        bot.restart();
        bot
    }

    /// Registers bot user `name` and writes its config; `launch` or
    /// `restart` starts it.
    pub fn prepare(hs: &Synapse, dir: &Path, name: &str, extra: &str, rust_log: &str) -> MatrixBot {
        let (user_id, _, _) = hs.register(name, BOT_PASSWORD, false);
        let config = dir.join("bot.toml");
        std::fs::write(
            &config,
            format!(
                "[store]\npath = \"state\"\n[matrix]\nhomeserver_url = \"{}\"\nuser_id = \"{user_id}\"\n{extra}\n",
                hs.url
            ),
        )
        .expect("write config");
        MatrixBot {
            child: Command::new("true").spawn().expect("placeholder"),
            dir: dir.to_path_buf(),
            log: dir.join("bot-0.log"),
            user_id,
            secrets: vec![BOT_PASSWORD.to_string()],
            runs: 0,
            config,
            env: vec![("MATRIX_PASSWORD".into(), BOT_PASSWORD.into())],
            rust_log: rust_log.into(),
            args: Vec::new(),
        }
    }

    /// Starts with a config and environment written by the test (e.g.
    /// access-token login); `secrets` are checked never to be logged.
    pub fn start_with_config(
        dir: &Path,
        user_id: &str,
        config: &str,
        env: Vec<(String, String)>,
        rust_log: &str,
    ) -> MatrixBot {
        let secrets = env.iter().map(|(_, v)| v.clone()).collect();
        let path = dir.join("bot.toml");
        std::fs::write(&path, config).expect("write config");
        let mut bot = MatrixBot {
            child: Command::new("true").spawn().expect("placeholder"),
            dir: dir.to_path_buf(),
            log: dir.join("bot-0.log"),
            user_id: user_id.to_string(),
            secrets,
            runs: 0,
            config: path,
            env,
            rust_log: rust_log.into(),
            args: Vec::new(),
        };
        bot.restart();
        bot
    }

    /// Sets an environment variable for the next start.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// (Re)starts the process (after `kill9` or `terminate`) and waits
    /// until it has synced.
    pub fn restart(&mut self) {
        self.launch();
        self.wait_log("matrix: ready", 1, 60);
    }

    /// Starts the process without waiting for it.
    pub fn launch(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.runs += 1;
        self.log = self.dir.join(format!("bot-{}.log", self.runs));
        self.child = Command::new(super::BIN)
            .args(["run", "--config"])
            .arg(&self.config)
            .args(&self.args)
            .env_remove("MATRIX_PASSWORD")
            .env_remove("MATRIX_ACCESS_TOKEN")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", &self.rust_log)
            .env_remove("FACTBOT_CONFIG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&self.log).expect("log file"))
            .spawn()
            .expect("start factbot");
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (at most `secs`) until `needle` occurs `n` times in this run's log.
    pub fn wait_log(&mut self, needle: &str, n: usize, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while self.log().matches(needle).count() < n {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!(
                    "the bot exited ({st}) before logging {needle:?}:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} not logged {n} times within {secs} s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM; the exit status (at most `secs`).
    pub fn terminate(&mut self, secs: u64) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "the bot did not stop within {secs} s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every log of every run, concatenated.
    pub fn all_logs(&self) -> String {
        (1..=self.runs)
            .map(|i| {
                std::fs::read_to_string(self.dir.join(format!("bot-{i}.log"))).unwrap_or_default()
            })
            .collect()
    }

    /// The access token the bot saved (to check it never reaches a log).
    pub fn saved_access_token(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.dir.join("state/matrix/session.json")).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v["session"]["access_token"].as_str().map(String::from)
    }

    /// The passphrase of the SDK's stores, saved with the session.
    pub fn saved_passphrase(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.dir.join("state/matrix/session.json")).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v["store_passphrase"].as_str().map(String::from)
    }

    /// Waits (at most `secs`) for the process to exit by itself.
    pub fn wait_exit(&mut self, secs: u64) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "the bot did not exit within {secs} s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn saved_device_id(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.dir.join("state/matrix/session.json")).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v["session"]["device_id"].as_str().map(String::from)
    }
}

impl Drop for MatrixBot {
    fn drop(&mut self) {
        self.kill9();
        let logs = self.all_logs();
        let mut secrets = self.secrets.clone();
        secrets.extend(self.saved_access_token());
        secrets.extend(self.saved_passphrase());
        for s in secrets {
            if !std::thread::panicking() {
                assert!(
                    !s.is_empty() && !logs.contains(&s),
                    "a secret reached the bot's log"
                );
            }
        }
    }
}

/// An HTTP proxy between the bot and Synapse that loses answers: every
/// request is forwarded, but the first time an event whose body contains
/// `marker` is sent under a given transaction id (`PUT …/send/…/{txn}`),
/// the connection is cut after Synapse has taken the event — a response
/// lost on the way back, as a flaky network or a timed-out reverse proxy
/// loses it. A client that retries under a new transaction id posts the
/// event again; one that reuses the id gets Synapse's de-duplicated answer.
pub struct LossyProxy {
    pub url: String,
    /// Answers cut so far.
    pub cut: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl LossyProxy {
    pub async fn start(upstream: &str, marker: &str) -> LossyProxy {
        use axum::body::{Body, Bytes};
        use axum::http::{HeaderMap, Method, StatusCode, Uri};
        use std::collections::HashSet;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::{Arc, Mutex};

        #[derive(Clone)]
        struct St {
            upstream: String,
            marker: Vec<u8>,
            seen: Arc<Mutex<HashSet<String>>>,
            cut: Arc<AtomicUsize>,
            agent: ureq::Agent,
        }
        async fn forward(
            axum::extract::State(st): axum::extract::State<St>,
            method: Method,
            uri: Uri,
            headers: HeaderMap,
            body: Bytes,
        ) -> axum::response::Response {
            let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            let lose = method == Method::PUT
                && uri.path().contains("/send/")
                && body
                    .windows(st.marker.len())
                    .any(|w| w == st.marker.as_slice())
                && st
                    .seen
                    .lock()
                    .unwrap()
                    .insert(uri.path().rsplit('/').next().unwrap_or("").to_string());
            let url = format!("{}{path}", st.upstream);
            let agent = st.agent.clone();
            let answer = tokio::task::spawn_blocking(move || {
                let mut req = agent.request(method.as_str(), &url);
                for name in ["authorization", "content-type"] {
                    if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
                        req = req.set(name, v);
                    }
                }
                let r = match req.send_bytes(&body) {
                    Ok(r) => r,
                    Err(ureq::Error::Status(_, r)) => r,
                    Err(e) => return Err(e.to_string()),
                };
                let status = r.status();
                let ctype = r
                    .header("content-type")
                    .unwrap_or("application/json")
                    .to_string();
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut r.into_reader(), &mut bytes)
                    .map_err(|e| e.to_string())?;
                Ok((status, ctype, bytes))
            })
            .await;
            let Ok(Ok((status, ctype, bytes))) = answer else {
                return axum::response::IntoResponse::into_response((
                    StatusCode::BAD_GATEWAY,
                    "upstream failed",
                ));
            };
            // Synapse's login answer names its own address (`well_known`),
            // which matrix-sdk would switch to, bypassing the proxy.
            let bytes = if path.contains("/login") {
                match serde_json::from_slice::<serde_json::Value>(&bytes) {
                    Ok(mut v) => {
                        if let Some(o) = v.as_object_mut() {
                            o.remove("well_known");
                        }
                        serde_json::to_vec(&v).unwrap_or(bytes)
                    }
                    Err(_) => bytes,
                }
            } else {
                bytes
            };
            if lose {
                st.cut.fetch_add(1, Ordering::SeqCst);
                // Headers go out, then the body breaks: the client sees the
                // connection fail, after Synapse has done the work.
                let broken = futures::stream::once(async {
                    Err::<Bytes, std::io::Error>(std::io::Error::other("answer lost"))
                });
                return axum::response::Response::builder()
                    .status(status)
                    .body(Body::from_stream(broken))
                    .unwrap();
            }
            axum::response::Response::builder()
                .status(status)
                .header("content-type", ctype)
                .body(Body::from(bytes))
                .unwrap()
        }
        let cut = Arc::new(AtomicUsize::new(0));
        let st = St {
            upstream: upstream.trim_end_matches('/').to_string(),
            marker: marker.as_bytes().to_vec(),
            seen: Arc::default(),
            cut: Arc::clone(&cut),
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(90))
                .build(),
        };
        let app = axum::Router::new().fallback(forward).with_state(st);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        LossyProxy { url, cut }
    }
}
