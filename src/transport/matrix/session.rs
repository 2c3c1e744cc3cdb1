//! Logging in once and staying the same device.
//!
//! A Matrix bot that logs in afresh at every start leaves a trail of dead
//! devices and, worse, loses its end-to-end keys: messages encrypted for the
//! old device can never be read. So the first start logs in (password or
//! access token) and saves the session — user id, device id, access token —
//! in `<store>/matrix/session.json` (mode 600, it holds secrets); every
//! later start restores it. The SDK's sqlite state and crypto stores live
//! beside it in `<store>/matrix/sdk/`: deleting that folder means a new
//! device that cannot decrypt earlier messages.
//!
//! So nothing here ever deletes them. A saved session for another account
//! or homeserver (compared after normalising the URL: a trailing slash or a
//! capital letter is the same server), or a `session.json` that cannot be
//! read, stops the start with an error naming `factbot run
//! --reset-matrix-device`, which moves both aside to `matrix/old-<time>/`
//! ([`reset`]). A device store left without a session (a first login cut
//! off before it was saved) is moved aside too, never deleted.
//!
//! The sqlite stores are encrypted with a passphrase generated at the first
//! login (32 random bytes) and kept in `session.json`, so a copy of `sdk/`
//! alone (a backup, a stray file) reveals no keys. Stores created before
//! factbot encrypted them stay unencrypted: matrix-sdk cannot encrypt an
//! existing store in place, and a passphrase given to one would make its
//! data unreadable; `--reset-matrix-device` gives an encrypted one.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use matrix_sdk::authentication::matrix::MatrixSession;
use matrix_sdk::store::RoomLoadSettings;
use matrix_sdk::{Client, SessionMeta, SessionTokens};
use serde::{Deserialize, Serialize};

use crate::config::MatrixConfig;

/// What is saved between runs.
#[derive(Serialize, Deserialize)]
struct Saved {
    /// The homeserver the session belongs to: a config pointing elsewhere
    /// must not reuse it.
    homeserver: String,
    session: MatrixSession,
    /// The passphrase of the SDK's sqlite stores; `None` for stores made
    /// before factbot encrypted them (they stay unencrypted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    store_passphrase: Option<String>,
}

/// What `session.json` holds.
enum SavedState {
    Missing,
    /// Present but unusable: why (never its content).
    Unreadable(String),
    Found(Box<Saved>),
}

/// Where the Matrix state lives under the store directory.
pub struct Paths {
    /// `<store>/matrix`.
    pub base: PathBuf,
    pub session: PathBuf,
    pub sdk: PathBuf,
}

impl Paths {
    pub fn under(store_dir: &Path) -> Paths {
        let base = store_dir.join("matrix");
        Paths {
            session: base.join("session.json"),
            sdk: base.join("sdk"),
            base,
        }
    }
}

/// A homeserver URL as compared with the saved one: scheme and host lower
/// case, no default port, no trailing slash.
pub fn normalise_url(url: &str) -> String {
    match url::Url::parse(url.trim()) {
        Ok(u) => u.as_str().trim_end_matches('/').to_string(),
        Err(_) => url.trim().trim_end_matches('/').to_string(),
    }
}

/// How to start over, for the error messages.
const RESET_HINT: &str = "to log in as a new device instead, run `factbot run --reset-matrix-device` (it moves the old session and keys aside to matrix/old-<time>/; messages encrypted for the old device stay unreadable to the new one)";

/// A logged-in client, and whether its device store is new (the bot's own
/// sync position must then start over, so that the new store learns every
/// room).
pub async fn connect(cfg: &MatrixConfig, paths: &Paths) -> anyhow::Result<(Client, bool)> {
    let saved = match read_saved(&paths.session) {
        SavedState::Found(s) => Some(s),
        SavedState::Unreadable(why) => bail!(
            "the saved Matrix session {} cannot be read ({why}); factbot will not replace the bot's device (and its encryption keys) on its own: restore the file from a backup, or {RESET_HINT}",
            paths.session.display()
        ),
        SavedState::Missing => None,
    };
    if let Some(saved) = saved {
        let same_server = normalise_url(&saved.homeserver) == normalise_url(&cfg.homeserver_url);
        if !same_server || saved.session.meta.user_id != cfg.user_id {
            bail!(
                "the saved Matrix session in {} is {} on {}, but the config says {} on {}; if the config is right, {RESET_HINT}",
                paths.session.display(),
                saved.session.meta.user_id,
                saved.homeserver,
                cfg.user_id,
                cfg.homeserver_url
            );
        }
        return restore(cfg, paths, *saved).await.map(|c| (c, false));
    }
    // A device store without a session (a first login cut off before the
    // session was saved): unusable, but not ours to delete.
    if paths.sdk.exists() {
        let to = paths.base.join(format!("orphaned-{}", unix_secs()));
        crate::facts::private::create_dir(&to)?;
        std::fs::rename(&paths.sdk, to.join("sdk"))
            .with_context(|| format!("cannot move {} aside", paths.sdk.display()))?;
        tracing::warn!(
            moved_to = %to.display(),
            "matrix: found a device store without a saved session; moved it aside and logging in as a new device"
        );
    }
    let passphrase = new_passphrase()?;
    login(cfg, paths, None, Some(passphrase))
        .await
        .map(|c| (c, true))
}

async fn restore(cfg: &MatrixConfig, paths: &Paths, saved: Saved) -> anyhow::Result<Client> {
    let device = saved.session.meta.device_id.to_string();
    let passphrase = saved.store_passphrase.clone();
    let client = build(cfg, paths, passphrase.as_deref()).await?;
    client
        .matrix_auth()
        .restore_session(saved.session, RoomLoadSettings::default())
        .await
        .context("cannot restore the saved Matrix session")?;
    match client.whoami().await {
        Ok(_) => {
            tracing::info!(user = %cfg.user_id, device, "matrix: session restored");
            Ok(client)
        }
        Err(e) if is_unknown_token(&e) => {
            tracing::warn!(
                device,
                "matrix: the saved access token was revoked; logging in again"
            );
            drop(client);
            login(cfg, paths, Some(&device), passphrase).await
        }
        // The homeserver may simply be down: keep the session, the
        // sync loop will wait for it.
        Err(e) => {
            tracing::warn!(error = %e, "matrix: cannot check the session yet");
            Ok(client)
        }
    }
}

/// `--reset-matrix-device`: moves `session.json` and `sdk/` to
/// `matrix/old-<unix time>/` (never deletes them); where they went, or
/// `None` when there was nothing to move.
pub fn reset(paths: &Paths) -> anyhow::Result<Option<PathBuf>> {
    if !paths.session.exists() && !paths.sdk.exists() {
        return Ok(None);
    }
    let to = paths.base.join(format!("old-{}", unix_secs()));
    crate::facts::private::create_dir(&to)?;
    for p in [&paths.session, &paths.sdk] {
        if let Some(name) = p.file_name().filter(|_| p.exists()) {
            std::fs::rename(p, to.join(name))
                .with_context(|| format!("cannot move {} aside", p.display()))?;
        }
    }
    Ok(Some(to))
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// 32 random bytes from the operating system, hex-encoded.
fn new_passphrase() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("cannot generate the store passphrase: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

async fn build(
    cfg: &MatrixConfig,
    paths: &Paths,
    passphrase: Option<&str>,
) -> anyhow::Result<Client> {
    crate::facts::private::create_dir(&paths.sdk)
        .with_context(|| format!("cannot create {}", paths.sdk.display()))?;
    let client = Client::builder()
        .homeserver_url(&cfg.homeserver_url)
        .sqlite_store(&paths.sdk, passphrase)
        .build()
        .await
        .with_context(|| format!("cannot set up a Matrix client for {}", cfg.homeserver_url))?;
    // The sqlite files just opened or created: for this user only.
    crate::facts::private::report(&paths.base, &crate::facts::private::tighten(&paths.base));
    Ok(client)
}

/// Logs in (a new device, or `device` again after its token was revoked)
/// and saves the session. A device store this call created is removed
/// again if the login fails: it holds no identity yet.
async fn login(
    cfg: &MatrixConfig,
    paths: &Paths,
    device: Option<&str>,
    passphrase: Option<String>,
) -> anyhow::Result<Client> {
    let created = !paths.sdk.exists();
    let r = try_login(cfg, paths, device, passphrase).await;
    if r.is_err() && created && paths.sdk.exists() {
        if let Err(e) = std::fs::remove_dir_all(&paths.sdk) {
            tracing::warn!(error = %e, "matrix: cannot remove the store of a failed first login");
        }
    }
    r
}

async fn try_login(
    cfg: &MatrixConfig,
    paths: &Paths,
    device: Option<&str>,
    passphrase: Option<String>,
) -> anyhow::Result<Client> {
    let name = cfg.device_name.as_deref().unwrap_or("factbot");
    let client = build(cfg, paths, passphrase.as_deref()).await?;
    wait_for_homeserver(&client, &cfg.homeserver_url).await;
    if let Some(pw) = &cfg.password {
        let mut req = client
            .matrix_auth()
            .login_username(&cfg.user_id, pw.expose())
            .initial_device_display_name(name);
        if let Some(d) = device {
            req = req.device_id(d);
        }
        req.send().await.map_err(|e| {
            anyhow::anyhow!("Matrix login as {} failed: {}", cfg.user_id, describe(&e))
        })?;
    } else if let Some(token) = &cfg.access_token {
        let device_id = whoami_device(cfg, token.expose()).await?;
        client
            .matrix_auth()
            .restore_session(
                token_session(cfg, &device_id, token.expose())?,
                RoomLoadSettings::default(),
            )
            .await
            .context("cannot use the configured access token")?;
    } else {
        bail!("[matrix] needs a password (or MATRIX_PASSWORD) or an access_token (or MATRIX_ACCESS_TOKEN)");
    }
    let Some(session) = client.matrix_auth().session() else {
        bail!("Matrix login gave no session");
    };
    tracing::info!(user = %cfg.user_id, device = %session.meta.device_id, "matrix: logged in as a new device");
    save(
        &paths.session,
        &Saved {
            homeserver: cfg.homeserver_url.clone(),
            session,
            store_passphrase: passphrase,
        },
    )?;
    Ok(client)
}

/// Waits ([`crate::retry::MATRIX_HOMESERVER`], logging each failure) until
/// the homeserver answers `/versions`: a first start while it is down
/// waits for it, like the sync loop does, instead of exiting. A wrong
/// password or token still fails at once, with the homeserver's own error.
async fn wait_for_homeserver(client: &Client, url: &str) {
    let mut pauses = crate::retry::MATRIX_HOMESERVER.pauses();
    while let Err(e) = client.fetch_server_versions(None).await {
        let pause = pauses.next_or_last();
        tracing::warn!(homeserver = url, error = %e, retry_in = ?pause, "matrix: homeserver not reachable yet");
        tokio::time::sleep(pause).await;
    }
}

/// The device an access token belongs to (`/account/whoami`), asked with a
/// throw-away in-memory client so no store is tied to a wrong device id.
async fn whoami_device(cfg: &MatrixConfig, token: &str) -> anyhow::Result<String> {
    let probe = Client::builder()
        .homeserver_url(&cfg.homeserver_url)
        .build()
        .await
        .with_context(|| format!("cannot reach {}", cfg.homeserver_url))?;
    wait_for_homeserver(&probe, &cfg.homeserver_url).await;
    probe
        .matrix_auth()
        .restore_session(
            token_session(cfg, "FACTBOT_PROBE", token)?,
            RoomLoadSettings::default(),
        )
        .await?;
    let who = probe
        .whoami()
        .await
        .map_err(|e| anyhow::anyhow!("the Matrix access token was refused: {e}"))?;
    if who.user_id != cfg.user_id {
        bail!(
            "the Matrix access token belongs to {}, not to user_id {}",
            who.user_id,
            cfg.user_id
        );
    }
    who.device_id
        .map(|d| d.to_string())
        .context("the homeserver did not say which device the access token belongs to")
}

/// A session made of an access token and the device it belongs to.
fn token_session(
    cfg: &MatrixConfig,
    device_id: &str,
    token: &str,
) -> anyhow::Result<MatrixSession> {
    Ok(MatrixSession {
        meta: SessionMeta {
            user_id: cfg
                .user_id
                .as_str()
                .try_into()
                .context("user_id is not a Matrix user id")?,
            device_id: device_id.into(),
        },
        tokens: SessionTokens {
            access_token: token.to_string(),
            refresh_token: None,
        },
    })
}

fn is_unknown_token(e: &matrix_sdk::HttpError) -> bool {
    matches!(
        e.client_api_error_kind(),
        Some(matrix_sdk::ruma::api::error::ErrorKind::UnknownToken(_))
    )
}

/// A login error without the request (which holds the password).
fn describe(e: &matrix_sdk::Error) -> String {
    match e.as_client_api_error() {
        Some(api) => format!("{} ({})", api.status_code, e),
        None => e.to_string(),
    }
}

fn read_saved(path: &Path) -> SavedState {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return SavedState::Missing,
        Err(e) => return SavedState::Unreadable(e.to_string()),
    };
    // serde_json's message names a line and column, never the content.
    match serde_json::from_str(&text) {
        Ok(s) => SavedState::Found(Box::new(s)),
        Err(e) => SavedState::Unreadable(format!("not a saved session: {e}")),
    }
}

/// Writes the session atomically, readable by the owner only.
fn save(path: &Path, saved: &Saved) -> anyhow::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("json.tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(&serde_json::to_vec(saved)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_homeserver_written_differently_is_the_same() {
        let n = normalise_url;
        assert_eq!(
            n("https://matrix.example.org"),
            n("https://matrix.example.org/")
        );
        assert_eq!(
            n("https://Matrix.Example.org:443/"),
            n("https://matrix.example.org")
        );
        assert_eq!(n("http://127.0.0.1:8008"), n("http://127.0.0.1:8008/"));
        assert_ne!(n("http://127.0.0.1:8008"), n("http://127.0.0.1:8009"));
        assert_ne!(n("https://a.example.org"), n("https://b.example.org"));
    }

    #[test]
    fn a_session_file_is_missing_unreadable_or_found() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("session.json");
        assert!(matches!(read_saved(&p), SavedState::Missing));
        std::fs::write(&p, "{\"homeserver\": \"x\", \"access_token\": \"SECRETtok").unwrap();
        match read_saved(&p) {
            SavedState::Unreadable(why) => assert!(!why.contains("SECRET"), "{why}"),
            _ => panic!("a cut-off file is unreadable"),
        }
    }

    #[test]
    fn reset_moves_the_device_aside_and_deletes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::under(dir.path());
        assert_eq!(reset(&paths).unwrap(), None);
        std::fs::create_dir_all(&paths.sdk).unwrap();
        std::fs::write(paths.sdk.join("matrix-sdk-crypto.sqlite3"), "keys").unwrap();
        std::fs::write(&paths.session, "{}").unwrap();
        let to = reset(&paths).unwrap().unwrap();
        assert!(!paths.sdk.exists() && !paths.session.exists());
        assert_eq!(
            std::fs::read_to_string(to.join("sdk/matrix-sdk-crypto.sqlite3")).unwrap(),
            "keys"
        );
        assert!(to.join("session.json").exists());
    }

    #[test]
    fn passphrases_are_long_and_differ() {
        let (a, b) = (new_passphrase().unwrap(), new_passphrase().unwrap());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
