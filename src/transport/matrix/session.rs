//! Logging in once and staying the same device.
//!
//! A Matrix bot that logs in afresh at every start leaves a trail of dead
//! devices and, worse, loses its end-to-end keys: messages encrypted for the
//! old device can never be read. So the first start logs in (password or
//! access token) and saves the session — user id, device id, access token —
//! in `<store>/matrix/session.json` (mode 600, it holds a secret); every
//! later start restores it. The SDK's sqlite state and crypto stores live
//! beside it in `<store>/matrix/sdk/`: deleting that folder means a new
//! device that cannot decrypt earlier messages.

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
}

/// Where the Matrix state lives under the store directory.
pub struct Paths {
    pub session: PathBuf,
    pub sdk: PathBuf,
}

impl Paths {
    pub fn under(store_dir: &Path) -> Paths {
        let base = store_dir.join("matrix");
        Paths {
            session: base.join("session.json"),
            sdk: base.join("sdk"),
        }
    }
}

/// A logged-in client with the persisted stores; the device is reused when
/// a saved session matches the config.
pub async fn connect(cfg: &MatrixConfig, paths: &Paths) -> anyhow::Result<Client> {
    let saved = read_saved(&paths.session)
        .filter(|s| s.homeserver == cfg.homeserver_url && s.session.meta.user_id == cfg.user_id);
    if let Some(saved) = saved {
        let device = saved.session.meta.device_id.to_string();
        let client = build(cfg, paths).await?;
        client
            .matrix_auth()
            .restore_session(saved.session, RoomLoadSettings::default())
            .await
            .context("cannot restore the saved Matrix session")?;
        match client.whoami().await {
            Ok(_) => {
                tracing::info!(user = %cfg.user_id, device, "matrix: session restored");
                return Ok(client);
            }
            Err(e) if is_unknown_token(&e) => {
                tracing::warn!(
                    device,
                    "matrix: the saved access token was revoked; logging in again"
                );
                drop(client);
                return login(cfg, paths, Some(&device)).await;
            }
            // The homeserver may simply be down: keep the session, the
            // sync loop will wait for it.
            Err(e) => {
                tracing::warn!(error = %e, "matrix: cannot check the session yet");
                return Ok(client);
            }
        }
    }
    // A store left by another account or device cannot be reused.
    if paths.sdk.exists() {
        tracing::warn!(dir = %paths.sdk.display(), "matrix: no matching saved session; starting a new device store");
        std::fs::remove_dir_all(&paths.sdk)
            .with_context(|| format!("cannot clear {}", paths.sdk.display()))?;
    }
    login(cfg, paths, None).await
}

async fn build(cfg: &MatrixConfig, paths: &Paths) -> anyhow::Result<Client> {
    std::fs::create_dir_all(&paths.sdk)
        .with_context(|| format!("cannot create {}", paths.sdk.display()))?;
    Client::builder()
        .homeserver_url(&cfg.homeserver_url)
        .sqlite_store(&paths.sdk, None)
        .build()
        .await
        .with_context(|| format!("cannot set up a Matrix client for {}", cfg.homeserver_url))
}

async fn login(cfg: &MatrixConfig, paths: &Paths, device: Option<&str>) -> anyhow::Result<Client> {
    let name = cfg.device_name.as_deref().unwrap_or("factbot");
    let client = build(cfg, paths).await?;
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
        },
    )?;
    Ok(client)
}

/// Waits (1 s doubling to 30 s, logging each failure) until the homeserver
/// answers `/versions`: a first start while it is down waits for it, like
/// the sync loop does, instead of exiting. A wrong password or token still
/// fails at once, with the homeserver's own error.
async fn wait_for_homeserver(client: &Client, url: &str) {
    let mut pause = std::time::Duration::from_secs(1);
    while let Err(e) = client.fetch_server_versions(None).await {
        tracing::warn!(homeserver = url, error = %e, retry_in = ?pause, "matrix: homeserver not reachable yet");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_secs(30));
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

fn read_saved(path: &Path) -> Option<Saved> {
    let text = std::fs::read_to_string(path).ok()?;
    match serde_json::from_str(&text) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "matrix: unreadable saved session, ignored");
            None
        }
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
