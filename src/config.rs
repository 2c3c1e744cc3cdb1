//! The operator's configuration file (`config.example.toml` documents it).
//!
//! Every key has a default, so an empty file — or none at all — is valid and
//! gives the console bot. Secrets may come from the environment instead of
//! the file and are wrapped in [`Secret`], whose `Debug` and `Display` never
//! show the value, so a config can be logged whole without leaking them.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A secret string (token, password). Prints as `<redacted>`; its memory
/// is zeroed when dropped (`secrecy`), so a core dump or a reused heap
/// page holds no stale copy.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(secrecy::SecretString);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(secrecy::SecretString::from(s.into()))
    }

    /// The value, for handing to the API client; never log it.
    pub fn expose(&self) -> &str {
        secrecy::ExposeSecret::expose_secret(&self.0)
    }
}

/// Equal values (tests and config comparisons), compared in constant time.
impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        subtle::ConstantTimeEq::ct_eq(self.expose().as_bytes(), other.expose().as_bytes()).into()
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The whole configuration.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub store: StoreConfig,
    /// Present: serve Telegram.
    pub telegram: Option<TelegramConfig>,
    /// Present: serve Matrix.
    pub matrix: Option<MatrixConfig>,
    /// Notifications: the admin endpoint, delivery and the daily digest.
    pub notify: NotifyConfig,
    /// Present: serve `/metrics` (Prometheus) and `/healthz`.
    pub metrics: Option<MetricsConfig>,
}

/// `[metrics]`: the operations endpoint (src/ops/).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address:port of `/metrics` and `/healthz`. May be non-loopback
    /// (Prometheus usually scrapes from another host): the endpoint serves
    /// read-only figures and the health verdict — no chat ids, no user
    /// text, no secrets, no actions. `factbot status` asks it too.
    pub listen: String,
}

impl MetricsConfig {
    /// What is malformed in `[metrics]`; `taken` are the other listening
    /// addresses of the config (the webhook, the admin endpoint), which it
    /// must not share.
    pub fn problems(&self, taken: &[(&str, &str)]) -> Vec<String> {
        let mut p = Vec::new();
        match self.listen.parse::<std::net::SocketAddr>() {
            Err(_) => p.push(format!(
                "[metrics] listen {:?} is not an address:port such as \"127.0.0.1:9464\" (or \"0.0.0.0:9464\" for a Prometheus on another host)",
                self.listen
            )),
            Ok(a) if a.port() == 0 => p.push(
                "[metrics] listen needs a fixed port (0 picks a random one, which `factbot status` and Prometheus cannot find)".to_string(),
            ),
            Ok(a) => {
                for (key, other) in taken {
                    if other.parse::<std::net::SocketAddr>().is_ok_and(|o| o == a) {
                        p.push(format!(
                            "[metrics] listen {:?} is also {key}: give each endpoint its own port",
                            self.listen
                        ));
                    }
                }
            }
        }
        p
    }
}

/// `[notify]`: subscriptions' deliveries, the admin endpoint, the digest.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// Loopback address of the admin endpoint (`factbot announce`,
    /// `factbot notifications`); unset: no endpoint.
    pub admin_listen: Option<String>,
    /// Bearer token of the admin endpoint; or `FACTBOT_ADMIN_TOKEN`.
    pub admin_token: Option<Secret>,
    /// Sends in flight at once per platform (Telegram caps its own at 2);
    /// also the most messages a crash can repeat on Telegram.
    pub max_in_flight: usize,
    /// Present: send a daily digest.
    pub digest: Option<DigestConfig>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            admin_listen: None,
            admin_token: None,
            max_in_flight: 16,
            digest: None,
        }
    }
}

/// `[notify.digest]`: the daily digest.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DigestConfig {
    /// Local time of day, `HH:MM`.
    pub time: String,
    /// IANA time zone name (`Europe/Minsk`).
    pub time_zone: String,
    /// A digest due while the bot was down is sent on start if it is at
    /// most this many minutes late; older ones are skipped (and logged).
    pub catch_up_minutes: u64,
    /// Operator countdowns shown until their date.
    pub countdowns: Vec<Countdown>,
}

impl Default for DigestConfig {
    fn default() -> Self {
        DigestConfig {
            time: "09:00".into(),
            time_zone: "UTC".into(),
            catch_up_minutes: 360,
            countdowns: Vec::new(),
        }
    }
}

/// One countdown of the digest: "N days until {en}".
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Countdown {
    /// `YYYY-MM-DD`.
    pub date: String,
    pub en: String,
    pub ru: String,
}

/// A Telegram channel (or group) subscribed from the config.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// Numeric chat id (`-1001234567890`) or `@username`.
    pub chat: ChannelId,
    /// Topics (`trade`, `milestones`, …, or `all`); default: all.
    #[serde(default)]
    pub topics: Vec<String>,
}

/// A channel's id as the config gives it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum ChannelId {
    Id(i64),
    Username(String),
}

/// `[store]`: where the bot keeps its state and finds its dataset.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Directory of the sled database (and, later, transport sessions).
    pub path: PathBuf,
    /// A dataset directory (`facts.toml`, `article.txt`, `synonyms.toml`)
    /// re-imported at start when it changed; unset: the dataset built into
    /// the binary, or the directory last given to `factbot import`.
    pub dataset: Option<PathBuf>,
}

/// The default store directory, relative to the working directory (and
/// ignored by git in this repository).
pub const DEFAULT_STORE: &str = "factbot-state";

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: PathBuf::from(DEFAULT_STORE),
            dataset: None,
        }
    }
}

/// How the Telegram transport receives updates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TelegramMode {
    #[default]
    Polling,
    Webhook,
}

/// `[telegram]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelegramConfig {
    /// Bot token from @BotFather; or the `TELOXIDE_TOKEN` environment variable.
    pub token: Option<Secret>,
    /// Bot API base URL; unset: Telegram's own.
    pub api_url: Option<String>,
    pub mode: TelegramMode,
    /// Webhook: local address to listen on.
    pub listen: Option<String>,
    /// Webhook: the public HTTPS URL Telegram calls.
    pub public_url: Option<String>,
    /// Webhook: URL path behind a reverse proxy.
    pub path: Option<String>,
    /// Webhook: the secret Telegram sends back in a header.
    pub secret_token: Option<Secret>,
    /// Numeric user ids allowed to administer the bot (`/announce`).
    pub admins: Vec<i64>,
    /// Channels that receive notifications (the bot must be an admin there).
    pub channels: Vec<ChannelConfig>,
    /// Numeric id of a chat (a private channel or group of the operator's
    /// where the bot may post) that inline mode uploads a chart to when it
    /// has no file id for it yet; unset: inline mode offers as pictures only
    /// the charts some chat already asked for, the others as text.
    pub chart_cache_chat: Option<i64>,
}

/// `[matrix]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MatrixConfig {
    pub homeserver_url: String,
    pub user_id: String,
    /// Or `MATRIX_PASSWORD`.
    pub password: Option<Secret>,
    /// Or `MATRIX_ACCESS_TOKEN`.
    pub access_token: Option<Secret>,
    pub device_name: Option<String>,
    /// User ids or `*:server` patterns whose invites are accepted; empty: anyone.
    pub allowed_inviters: Vec<String>,
    pub admins: Vec<String>,
    /// `factbot run --reset-matrix-device`: move the saved session and the
    /// device's encryption store aside and log in as a new device. Never
    /// from the file: it throws the bot's identity away.
    #[serde(skip)]
    pub reset_device: bool,
}

impl MatrixConfig {
    /// What is missing or malformed, in the operator's words; checked at
    /// start so a bad section fails before anything connects.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !is_http_url(&self.homeserver_url) {
            p.push("[matrix] homeserver_url must be an http(s) URL, e.g. \"https://matrix.example.org\"".to_string());
        }
        if !is_matrix_user_id(&self.user_id) {
            p.push(
                "[matrix] user_id must be a full Matrix id, e.g. \"@factbot:example.org\""
                    .to_string(),
            );
        }
        if self.password.is_none() && self.access_token.is_none() {
            p.push("[matrix] needs password (or MATRIX_PASSWORD) or access_token (or MATRIX_ACCESS_TOKEN)".to_string());
        }
        if self
            .device_name
            .as_deref()
            .is_some_and(|d| d.trim().is_empty())
        {
            p.push("[matrix] device_name is empty; leave it out for \"factbot\"".to_string());
        }
        for a in &self.allowed_inviters {
            let server_pattern = a
                .strip_prefix("*:")
                .is_some_and(|s| !s.is_empty() && !s.contains(char::is_whitespace));
            if !(server_pattern || is_matrix_user_id(a)) {
                p.push(format!(
                    "[matrix] allowed_inviters: {a:?} is neither a user id (\"@alice:example.org\") nor a server pattern (\"*:example.org\")"
                ));
            }
        }
        for a in &self.admins {
            if !is_matrix_user_id(a) {
                p.push(format!(
                    "[matrix] admins: {a:?} is not a full Matrix user id (\"@alice:example.org\")"
                ));
            }
        }
        p
    }
}

/// Characters Telegram accepts in a webhook `secret_token`.
fn telegram_secret_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// The shortest webhook secret and admin token accepted: Telegram takes
/// 1–256 characters, but a short secret can be guessed by anyone who can
/// reach the webhook.
pub const MIN_SECRET_LEN: usize = 16;

fn is_http_url(s: &str) -> bool {
    let Some(rest) = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
    else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    !host.is_empty() && !s.contains(char::is_whitespace)
}

fn is_matrix_user_id(s: &str) -> bool {
    s.strip_prefix('@')
        .and_then(|r| r.split_once(':'))
        .is_some_and(|(local, server)| {
            !local.is_empty() && !server.is_empty() && !s.contains(char::is_whitespace)
        })
}

impl TelegramConfig {
    /// What is missing or malformed in `[telegram]`; never shows a secret.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        self.token_problems(&mut p);
        if let Some(url) = &self.api_url {
            if !is_http_url(url) {
                p.push(format!("[telegram] api_url {url:?} is not an http(s) URL"));
            }
        }
        for a in &self.admins {
            if *a <= 0 {
                p.push(format!(
                    "[telegram] admins: {a} is not a user id (user ids are positive; negative ids are groups)"
                ));
            }
        }
        if self.chart_cache_chat == Some(0) {
            p.push(
                "[telegram] chart_cache_chat must be a numeric chat id such as -1001234567890"
                    .to_string(),
            );
        }
        for c in &self.channels {
            channel_problems(c, &mut p);
        }
        if self.mode == TelegramMode::Webhook {
            self.webhook_address_problems(&mut p);
            self.secret_token_problems(&mut p);
        }
        p
    }

    /// `token`: present and shaped like `123456:ABC…`; never shown.
    fn token_problems(&self, p: &mut Vec<String>) {
        match &self.token {
            None => p.push("[telegram] needs token (or TELOXIDE_TOKEN)".to_string()),
            Some(t) => {
                let well_formed = t.expose().split_once(':').is_some_and(|(id, rest)| {
                    !id.is_empty()
                        && id.bytes().all(|b| b.is_ascii_digit())
                        && !rest.is_empty()
                        && !rest.contains(char::is_whitespace)
                });
                if !well_formed {
                    p.push("[telegram] token (or TELOXIDE_TOKEN) is not a bot token of the form 123456:ABC… (the value is not shown)".to_string());
                }
            }
        }
    }

    /// Webhook mode: `listen`, `public_url` and `path`.
    fn webhook_address_problems(&self, p: &mut Vec<String>) {
        match self.listen.as_deref() {
            None => p.push(
                "[telegram] webhook mode needs listen, the local address:port the reverse proxy forwards to (e.g. \"127.0.0.1:8443\")".to_string(),
            ),
            Some(l) if l.parse::<std::net::SocketAddr>().is_err() => p.push(format!(
                "[telegram] listen {l:?} is not an address:port such as \"127.0.0.1:8443\""
            )),
            Some(_) => {}
        }
        match self.public_url.as_deref() {
            None => p.push(
                "[telegram] webhook mode needs public_url, the HTTPS URL Telegram calls (e.g. \"https://bot.example.org\")".to_string(),
            ),
            Some(u) if !is_http_url(u) || u.contains(['?', '#']) => p.push(format!(
                "[telegram] public_url {u:?} is not an http(s) URL without query or fragment"
            )),
            Some(_) => {}
        }
        if let Some(path) = &self.path {
            let valid = path.starts_with('/')
                && path.len() > 1
                && !path.contains(['?', '#', '{', '}', '*'])
                && !path.contains(char::is_whitespace);
            if !valid {
                p.push(format!(
                    "[telegram] path {path:?} must start with '/' and hold no spaces, '?', '#', '{{', '}}' or '*' (e.g. \"/telegram\")"
                ));
            }
        }
    }

    /// Webhook mode: `secret_token`, required and in Telegram's alphabet;
    /// never shown.
    fn secret_token_problems(&self, p: &mut Vec<String>) {
        match &self.secret_token {
            None => p.push(format!(
                "[telegram] webhook mode needs secret_token: without it anyone who can reach the webhook can forge updates (use {MIN_SECRET_LEN}–256 of A-Z a-z 0-9 _ -)"
            )),
            Some(s) => {
                let s = s.expose();
                let n = s.chars().count();
                if !(MIN_SECRET_LEN..=256).contains(&n) || !s.chars().all(telegram_secret_char) {
                    p.push(format!(
                        "[telegram] secret_token must be {MIN_SECRET_LEN}–256 characters of A-Z a-z 0-9 _ - (Telegram accepts no others; the value is not shown)"
                    ));
                }
            }
        }
    }
}

/// Whether `u` is `@` and a public username as Telegram allows them: 5–32
/// characters of a-z, A-Z, 0-9 and `_`, starting with a letter and not
/// ending with `_`. Anything else is refused when the config is read rather
/// than by Telegram at the first notification.
fn telegram_username(u: &str) -> bool {
    let Some(name) = u.strip_prefix('@') else {
        return false;
    };
    (5..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && !name.ends_with('_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One `[[telegram.channels]]` entry: an id or `@username`, known topics.
fn channel_problems(c: &ChannelConfig, p: &mut Vec<String>) {
    if let ChannelId::Username(u) = &c.chat {
        if !telegram_username(u) {
            p.push(format!(
                "[telegram] channels: {u:?} is neither a numeric chat id nor an \"@username\" (5–32 characters of a-z, 0-9 and _, starting with a letter, not ending with _)"
            ));
        }
    }
    for t in &c.topics {
        let known = t == "all" || crate::facts::Topic::parse(t).is_some();
        if !known {
            p.push(format!(
                "[telegram] channels: unknown topic {t:?} (visit, people, relations, milestones, trade, exports, investment, meetings, agreements or all)"
            ));
        }
    }
}

impl NotifyConfig {
    /// What is malformed in `[notify]` and `[notify.digest]`.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if let Some(l) = &self.admin_listen {
            self.admin_problems(l, &mut p);
        }
        if !(1..=1024).contains(&self.max_in_flight) {
            p.push(format!(
                "[notify] max_in_flight is {}; use 1–1024",
                self.max_in_flight
            ));
        }
        if let Some(d) = &self.digest {
            d.problems(&mut p);
        }
        p
    }

    /// `admin_listen` (set): a loopback address:port, and a token beside it.
    fn admin_problems(&self, l: &str, p: &mut Vec<String>) {
        match l.parse::<std::net::SocketAddr>() {
            Err(_) => p.push(format!(
                "[notify] admin_listen {l:?} is not an address:port such as \"127.0.0.1:8790\""
            )),
            Ok(a) if !a.ip().is_loopback() => p.push(format!(
                "[notify] admin_listen {l:?} must be a loopback address (127.0.0.1 or [::1]): the admin endpoint is not for the network"
            )),
            Ok(_) => {}
        }
        match &self.admin_token {
            None => p.push(
                "[notify] admin_listen is set but no admin token: set [notify] admin_token or FACTBOT_ADMIN_TOKEN".to_string(),
            ),
            Some(t) if t.expose().chars().count() < MIN_SECRET_LEN
                || t.expose().chars().any(char::is_control) =>
            {
                p.push(format!(
                    "[notify] admin_token (or FACTBOT_ADMIN_TOKEN) must be at least {MIN_SECRET_LEN} printable characters (the value is not shown)"
                ))
            }
            Some(_) => {}
        }
    }
}

impl DigestConfig {
    /// What is malformed in `[notify.digest]`.
    fn problems(&self, p: &mut Vec<String>) {
        if self.time.parse::<jiff::civil::Time>().is_err() || self.time.len() != 5 {
            p.push(format!(
                "[notify.digest] time {:?} is not HH:MM (e.g. \"09:00\")",
                self.time
            ));
        }
        if jiff::tz::TimeZone::get(&self.time_zone).is_err() {
            p.push(format!(
                "[notify.digest] time_zone {:?} is not an IANA time zone (e.g. \"Europe/Minsk\")",
                self.time_zone
            ));
        }
        if self.catch_up_minutes > 7 * 24 * 60 {
            p.push(format!(
                "[notify.digest] catch_up_minutes is {}; use at most 10080 (a week)",
                self.catch_up_minutes
            ));
        }
        for c in &self.countdowns {
            if c.date.parse::<jiff::civil::Date>().is_err() {
                p.push(format!(
                    "[notify.digest] countdown date {:?} is not YYYY-MM-DD",
                    c.date
                ));
            }
            if c.en.trim().is_empty() || c.ru.trim().is_empty() {
                p.push(format!(
                    "[notify.digest] countdown of {} needs both en and ru text",
                    c.date
                ));
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {}:{}", path.display(), problem)]
    Parse {
        path: PathBuf,
        problem: ParseProblem,
    },
}

/// Where and why the config text is not valid: line, column, the key, and
/// the parser's complaint with every secret's value cut out. The toml
/// crate's own message quotes the offending source line, which may hold a
/// token or a password, so it is never shown as is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseProblem {
    /// 1-based; 0 when the parser gave no position.
    pub line: usize,
    pub column: usize,
    /// `[telegram] token`, when the position names a key.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ParseProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: ", self.line, self.column)?;
        } else {
            f.write_str(" ")?;
        }
        if let Some(k) = &self.key {
            write!(f, "{k}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Keys whose values are secrets: never quoted in an error.
pub const SECRET_KEYS: &[&str] = &[
    "token",
    "secret_token",
    "password",
    "access_token",
    "admin_token",
];

/// The raw text of every value given to a secret key in `text`
/// (`key = value` lines and inline tables), quotes removed.
fn secret_values(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut rest = line;
        while let Some(eq) = rest.find('=') {
            let before = rest[..eq].trim_end();
            let key_start = before
                .rfind(|c: char| {
                    !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '"' || c == '\'')
                })
                .map_or(0, |i| i + 1);
            let key = before[key_start..].trim_matches(['"', '\'']);
            let after = &rest[eq + 1..];
            if SECRET_KEYS.contains(&key) {
                let v = after.trim_start();
                let value = match v.chars().next() {
                    Some(q @ ('"' | '\'')) => {
                        let body = v[1..].trim_start_matches(q);
                        body.split(q).next().unwrap_or(body)
                    }
                    _ => v.split([',', '}', '#']).next().unwrap_or(v).trim(),
                };
                if !value.is_empty() {
                    out.push(value.to_string());
                }
            }
            rest = after;
        }
    }
    // Longest first, so a value containing another is cut out whole.
    out.sort_by_key(|v| std::cmp::Reverse(v.len()));
    out
}

/// Replaces every backtick- or double-quoted part of `msg` (where parsers
/// quote values) with `<redacted>`.
fn without_quoted(msg: &str) -> String {
    let mut out = String::new();
    let mut rest = msg;
    loop {
        let Some(i) = rest.find(['`', '"']) else {
            out.push_str(rest);
            return out;
        };
        let q = rest[i..].chars().next().unwrap_or('`');
        out.push_str(&rest[..i]);
        match rest[i + 1..].find(q) {
            Some(j) => {
                out.push_str("<redacted>");
                rest = &rest[i + 1 + j + 1..];
            }
            None => {
                out.push_str("<redacted>");
                return out;
            }
        }
    }
}

/// The key at 0-based `line` of `text`: the last `[table]` header above it
/// and the key left of `=` on it.
fn key_at(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let here = lines.get(line)?.trim();
    let table = lines[..line.min(lines.len())]
        .iter()
        .rev()
        .chain(std::iter::once(&here))
        .map(|l| l.trim())
        .find(|l| l.starts_with('['))
        .map(|h| h.trim_matches(['[', ']']).trim().to_string());
    let header_here = here.starts_with('[');
    let key = if header_here {
        None
    } else {
        here.split_once('=')
            .map(|(k, _)| k.trim().trim_matches(['"', '\'']).to_string())
            .filter(|k| !k.is_empty())
    };
    match (table, key) {
        (Some(t), Some(k)) => Some(format!("[{t}] {k}")),
        (None, Some(k)) => Some(k),
        (Some(t), None) => Some(format!("[{t}]")),
        (None, None) => None,
    }
}

/// Re-renders a toml error without quoting the source or any secret.
fn parse_problem(text: &str, e: &toml::de::Error) -> ParseProblem {
    let (line, column) = match e.span() {
        Some(span) => {
            let start = span.start.min(text.len());
            let before = text.get(..start).unwrap_or("");
            let line = before.matches('\n').count();
            let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count());
            (line + 1, col + 1)
        }
        None => (0, 0),
    };
    let key = (line > 0).then(|| key_at(text, line - 1)).flatten();
    let on_secret = key.as_deref().is_some_and(|k| {
        let last = k.rsplit([' ', '.']).next().unwrap_or(k);
        SECRET_KEYS.contains(&last.trim_matches(['[', ']']))
    });
    let mut message = e.message().trim().to_string();
    for v in secret_values(text) {
        message = message.replace(&v, "<redacted>");
    }
    if on_secret {
        message = without_quoted(&message);
        message.push_str(" (the value is not shown: it is a secret; write it as a quoted string)");
    }
    ParseProblem {
        line,
        column,
        key,
        message,
    }
}

impl Config {
    /// Loads a config file; relative paths in it are relative to the file.
    /// Secrets missing from the file are taken from the environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut cfg = Config::parse(&text).map_err(|problem| ConfigError::Parse {
            path: path.to_path_buf(),
            problem,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        cfg.store.path = base.join(&cfg.store.path);
        if let Some(d) = &cfg.store.dataset {
            cfg.store.dataset = Some(base.join(d));
        }
        Ok(cfg)
    }

    /// Parses config text (no path resolution), filling secrets from the
    /// environment. The error never quotes a secret.
    pub fn parse(text: &str) -> Result<Config, ParseProblem> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| parse_problem(text, &e))?;
        cfg.fill_from_env(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
        Ok(cfg)
    }

    /// Every problem of a config `factbot run` is to use, each naming the
    /// key and what is wrong (never a secret's value); empty when it is
    /// fine. Checked before anything connects.
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.telegram.is_none() && self.matrix.is_none() {
            p.push("the config enables no transport: add a [telegram] or [matrix] section (see config.example.toml)".to_string());
        }
        if let Some(t) = &self.telegram {
            p.extend(t.problems());
        }
        if let Some(m) = &self.matrix {
            p.extend(m.problems());
        }
        p.extend(self.notify.problems());
        if let Some(m) = &self.metrics {
            let mut taken = Vec::new();
            if let Some(l) = self.telegram.as_ref().and_then(|t| t.listen.as_deref()) {
                taken.push(("[telegram] listen", l));
            }
            if let Some(l) = self.notify.admin_listen.as_deref() {
                taken.push(("[notify] admin_listen", l));
            }
            p.extend(m.problems(&taken));
        }
        if self.store.path.as_os_str().is_empty() {
            p.push("[store] path is empty".to_string());
        }
        p
    }

    fn fill_from_env(&mut self, env: impl Fn(&str) -> Option<String>) {
        if let Some(t) = &mut self.telegram {
            if t.token.is_none() {
                t.token = env("TELOXIDE_TOKEN").map(Secret::new);
            }
        }
        if self.notify.admin_token.is_none() {
            self.notify.admin_token = env("FACTBOT_ADMIN_TOKEN").map(Secret::new);
        }
        if let Some(m) = &mut self.matrix {
            if m.password.is_none() {
                m.password = env("MATRIX_PASSWORD").map(Secret::new);
            }
            if m.access_token.is_none() {
                m.access_token = env("MATRIX_ACCESS_TOKEN").map(Secret::new);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_the_console_default() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.store.path, PathBuf::from(DEFAULT_STORE));
        assert!(c.telegram.is_none() && c.matrix.is_none());
    }

    #[test]
    fn channel_usernames_follow_telegrams_rule() {
        for ok in [
            "@factbot",
            "@Trade_News_2012",
            "@abcde",
            &format!("@a{}", "b".repeat(31)),
        ] {
            assert!(telegram_username(ok), "{ok}");
        }
        for bad in [
            "factbot",
            "@",
            "@abcd",
            &format!("@a{}", "b".repeat(32)),
            "@1trade",
            "@_trade",
            "@trade_",
            "@trade-news",
            "@торговля",
            "@trade news",
        ] {
            assert!(!telegram_username(bad), "{bad}");
        }
        let c = Config::parse("[telegram]\nchannels = [{ chat = \"@tr\" }]").unwrap();
        let problems = c.telegram.unwrap().problems();
        assert!(
            problems.iter().any(|p| p.contains("\"@tr\" is neither")),
            "{problems:?}"
        );
    }

    #[test]
    fn the_example_config_parses() {
        let text = include_str!("../config.example.toml");
        let c = Config::parse(text).expect("config.example.toml must parse");
        assert!(c.telegram.is_some() && c.matrix.is_some());
    }

    #[test]
    fn secrets_never_print() {
        let mut c =
            Config::parse("[telegram]\ntoken = \"123:SECRET\"\n[matrix]\nuser_id = \"@b:x\"")
                .unwrap();
        c.fill_from_env(|k| (k == "MATRIX_PASSWORD").then(|| "hunter2".to_string()));
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("SECRET") && !shown.contains("hunter2"),
            "{shown}"
        );
        assert_eq!(c.matrix.unwrap().password.unwrap().expose(), "hunter2");
    }

    #[test]
    fn unknown_keys_are_rejected_with_line_and_key() {
        let e = Config::parse("[store]\npth = \"x\"").unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (2, Some("[store] pth")), "{e}");
        assert!(e.message.contains("pth"), "{e}");
    }

    /// Each secret key, written so that the toml crate's own message
    /// would show its value: the error names the line and the key, and
    /// holds no part of the value.
    #[test]
    fn a_config_error_never_shows_a_secret() {
        let cases = [
            // Unquoted: a syntax error on the secret's own line.
            (
                "[telegram]\ntoken = 123456:ABCsecretVALUE\n",
                2,
                "[telegram] token",
                "ABCsecretVALUE",
            ),
            (
                "[telegram]\nmode = \"webhook\"\nsecret_token = hooksecretVALUE\n",
                3,
                "[telegram] secret_token",
                "hooksecretVALUE",
            ),
            (
                "[matrix]\npassword = hunter2secretVALUE\n",
                2,
                "[matrix] password",
                "hunter2secretVALUE",
            ),
            // A type error, whose message quotes the value.
            (
                "[matrix]\naccess_token = 987654321987\n",
                2,
                "[matrix] access_token",
                "987654321987",
            ),
            (
                "[notify]\nadmin_token = 55555555555555\n",
                2,
                "[notify] admin_token",
                "55555555555555",
            ),
            // A misspelled key on the secret's line (an inline table).
            (
                "telegram = { token = \"123:inlineSECRET\", mode = \"hook\" }\n",
                1,
                "telegram",
                "inlineSECRET",
            ),
            // A misspelled key next to a secret.
            (
                "[telegram]\ntoken = \"123:nextSECRET\"\ntokn = \"123:otherSECRET\"\n",
                3,
                "[telegram] tokn",
                "SECRET",
            ),
        ];
        for (text, line, key, secret) in cases {
            let e = Config::parse(text).unwrap_err();
            let shown = e.to_string();
            assert!(!shown.contains(secret), "{text:?} → {shown}");
            assert_eq!(e.line, line, "{text:?} → {shown}");
            assert_eq!(e.key.as_deref(), Some(key), "{text:?} → {shown}");
            assert!(!e.message.is_empty(), "{text:?}");
        }
    }

    #[test]
    fn webhook_mode_needs_a_well_formed_secret_and_path() {
        let problems = |extra: &str| {
            Config::parse(&format!(
                "[telegram]\ntoken = \"1:x\"\nmode = \"webhook\"\nlisten = \"127.0.0.1:8443\"\npublic_url = \"https://bot.example.org\"\n{extra}"
            ))
            .unwrap()
            .validate()
        };
        let none = problems("");
        assert!(
            none.iter().any(|p| p.contains("needs secret_token")),
            "{none:?}"
        );
        let bad = problems("secret_token = \"has spaces and is long\"");
        assert!(bad.iter().any(|p| p.contains("A-Z a-z 0-9 _ -")), "{bad:?}");
        assert!(
            !bad.iter().any(|p| p.contains("has spaces")),
            "the secret is not shown: {bad:?}"
        );
        let short = problems("secret_token = \"abc\"");
        assert!(
            short.iter().any(|p| p.contains("secret_token")),
            "{short:?}"
        );
        let path = problems("secret_token = \"abcdefghijklmnop-_\"\npath = \"telegram\"");
        assert_eq!(path.len(), 1, "{path:?}");
        assert!(path[0].contains("must start with '/'"), "{path:?}");
        assert!(problems("secret_token = \"abcdefghijklmnop-_\"").is_empty());
    }

    #[test]
    fn metrics_listen_must_parse_have_a_port_and_not_share_one() {
        let problems = |metrics: &str| {
            Config::parse(&format!(
                "[telegram]\ntoken = \"1:x\"\nmode = \"webhook\"\nlisten = \"127.0.0.1:8443\"\npublic_url = \"https://bot.example.org\"\nsecret_token = \"abcdefghijklmnop-_\"\n\
                 [notify]\nadmin_listen = \"127.0.0.1:8790\"\nadmin_token = \"0123456789abcdef\"\n[metrics]\n{metrics}"
            ))
            .unwrap()
            .validate()
        };
        // Non-loopback is allowed: Prometheus scrapes from another host.
        assert_eq!(problems("listen = \"0.0.0.0:9464\""), Vec::<String>::new());
        assert_eq!(
            problems("listen = \"127.0.0.1:9464\""),
            Vec::<String>::new()
        );
        for (listen, needle) in [
            ("", "is not an address:port"),
            ("localhost", "is not an address:port"),
            ("127.0.0.1:0", "fixed port"),
            ("127.0.0.1:8443", "is also [telegram] listen"),
            ("127.0.0.1:8790", "is also [notify] admin_listen"),
        ] {
            let p = problems(&format!("listen = \"{listen}\""));
            assert!(p.len() == 1 && p[0].contains(needle), "{listen:?}: {p:?}");
        }
        // A misspelled key is refused at parse time.
        assert!(Config::parse("[metrics]\nlisten = \"127.0.0.1:9464\"\nlisen = 1\n").is_err());
    }

    #[test]
    fn validate_reports_every_problem_at_once() {
        let c = Config::parse(
            "[telegram]\ntoken = \"not a token\"\napi_url = \"ftp://x\"\nadmins = [-5]\nmode = \"webhook\"\nlisten = \"nowhere\"\n\
             [matrix]\nhomeserver_url = \"https://m.example.org\"\nuser_id = \"@b:x\"\npassword = \"p\"\nadmins = [\"alice\"]\nallowed_inviters = [\"example.org\"]\n\
             [notify]\nadmin_listen = \"0.0.0.0:80\"\nadmin_token = \"short\"\nmax_in_flight = 0\n\
             [notify.digest]\ntime = \"9am\"\ntime_zone = \"Mars/Base\"\n",
        )
        .unwrap();
        let p = c.validate().join("\n");
        for needle in [
            "token (or TELOXIDE_TOKEN) is not a bot token",
            "api_url",
            "admins: -5",
            "listen \"nowhere\"",
            "needs public_url",
            "needs secret_token",
            "admins: \"alice\"",
            "allowed_inviters",
            "loopback",
            "admin_token",
            "max_in_flight",
            "time \"9am\"",
            "Mars/Base",
        ] {
            assert!(p.contains(needle), "missing {needle:?} in:\n{p}");
        }
        assert!(!p.contains("not a token\""), "the token is not shown:\n{p}");
        assert!(
            !p.contains("\"short\""),
            "the admin token is not shown:\n{p}"
        );
    }

    #[test]
    fn the_example_config_is_valid_once_secrets_are_given() {
        let mut c = Config::parse(include_str!("../config.example.toml")).unwrap();
        if let Some(t) = &mut c.telegram {
            t.token = Some(Secret::new("123:ABC"));
        }
        if let Some(m) = &mut c.matrix {
            m.password = Some(Secret::new("pw"));
        }
        assert_eq!(c.validate(), Vec::<String>::new());
    }
}
