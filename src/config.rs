//! The operator's configuration file (`config.example.toml` documents it).
//!
//! Every key has a default, so an empty file — or none at all — is valid and
//! gives the console bot. Secrets may come from the environment instead of
//! the file and are wrapped in [`Secret`], whose `Debug` and `Display` never
//! show the value, so a config can be logged whole without leaking them.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A secret string (token, password). Prints as `<redacted>`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The value, for handing to the API client; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

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
}

impl MatrixConfig {
    /// What is missing or malformed, in the operator's words; checked at
    /// start so a bad section fails before anything connects.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !(self.homeserver_url.starts_with("http://")
            || self.homeserver_url.starts_with("https://"))
        {
            p.push("[matrix] homeserver_url must be an http(s) URL, e.g. \"https://matrix.example.org\"".to_string());
        }
        let valid_user = self.user_id.starts_with('@') && self.user_id.contains(':');
        if !valid_user {
            p.push(
                "[matrix] user_id must be a full Matrix id, e.g. \"@factbot:example.org\""
                    .to_string(),
            );
        }
        if self.password.is_none() && self.access_token.is_none() {
            p.push("[matrix] needs password (or MATRIX_PASSWORD) or access_token (or MATRIX_ACCESS_TOKEN)".to_string());
        }
        p
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {} is not valid: {message}", path.display())]
    Parse { path: PathBuf, message: String },
}

impl Config {
    /// Loads a config file; relative paths in it are relative to the file.
    /// Secrets missing from the file are taken from the environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut cfg = Config::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        cfg.store.path = base.join(&cfg.store.path);
        if let Some(d) = &cfg.store.dataset {
            cfg.store.dataset = Some(base.join(d));
        }
        Ok(cfg)
    }

    /// Parses config text (no path resolution), filling secrets from the
    /// environment.
    pub fn parse(text: &str) -> Result<Config, String> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        cfg.fill_from_env(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
        Ok(cfg)
    }

    fn fill_from_env(&mut self, env: impl Fn(&str) -> Option<String>) {
        if let Some(t) = &mut self.telegram {
            if t.token.is_none() {
                t.token = env("TELOXIDE_TOKEN").map(Secret);
            }
        }
        if self.notify.admin_token.is_none() {
            self.notify.admin_token = env("FACTBOT_ADMIN_TOKEN").map(Secret);
        }
        if let Some(m) = &mut self.matrix {
            if m.password.is_none() {
                m.password = env("MATRIX_PASSWORD").map(Secret);
            }
            if m.access_token.is_none() {
                m.access_token = env("MATRIX_ACCESS_TOKEN").map(Secret);
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
    fn unknown_keys_are_rejected() {
        assert!(Config::parse("[store]\npth = \"x\"")
            .unwrap_err()
            .contains("pth"));
    }
}
