//! `factbot run` (the configured transports, until SIGTERM or Ctrl-C) and
//! `factbot console` (a chat in the terminal). `run` refuses a config it
//! cannot serve before anything connects or is imported: a section whose
//! transport this build lacks, then every other problem at once.

use std::path::Path;
use std::sync::Arc;

use super::{usage, Context, Failure};
use crate::app::{open_app, Removals};
use crate::config::Config;
use crate::facts::StoreError;
use crate::transport::console;

// No `///` here: the `run` variant's doc comment in main.rs is the help.
#[derive(clap::Args)]
pub struct Args {
    /// Import the configured dataset at start even if it is empty or
    /// removes more than a quarter of the stored facts.
    #[arg(long)]
    pub allow_removals: bool,
    /// Start the Matrix bot as a new device: the saved session and the
    /// end-to-end encryption store are moved aside (never deleted) to
    /// `<store>/matrix/old-<time>/`. Messages encrypted for the old
    /// device cannot be read by the new one.
    #[arg(long)]
    pub reset_matrix_device: bool,
}

/// `factbot console` (also `factbot` alone).
pub fn console(ctx: &Context) -> Result<(), Failure> {
    let (app, _) = open_app(&ctx.cfg, &ctx.db, Removals::KeepStored)?;
    console::run(
        &app,
        Some(ctx.db.join("console_history.txt")),
        Some(ctx.db.join("charts")),
    )?;
    Ok(())
}

/// `factbot run [--allow-removals] [--reset-matrix-device]`.
pub fn run(ctx: Context, args: Args) -> Result<(), Failure> {
    let mut cfg = ctx.cfg;
    match (&mut cfg.matrix, args.reset_matrix_device) {
        (Some(m), true) => m.reset_device = true,
        (None, true) => {
            return Err(usage(
                "--reset-matrix-device: the config has no [matrix] section",
            ))
        }
        _ => {}
    }
    let removals = if args.allow_removals {
        Removals::Allow
    } else {
        Removals::Refuse
    };
    check_config(&cfg, ctx.file.as_deref())?;
    serve(&cfg, &ctx.db, removals)
}

/// Every reason the config cannot be served, as one usage failure.
fn check_config(cfg: &Config, file: Option<&Path>) -> Result<(), Failure> {
    // A section whose transport this build lacks, before its keys.
    let configured: Vec<&str> = [
        cfg.telegram.as_ref().map(|_| "telegram"),
        cfg.matrix.as_ref().map(|_| "matrix"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if let Some(e) = crate::transport::missing(&configured) {
        return Err(usage(e));
    }
    // Every mistake at once, before anything connects or is imported.
    let problems = cfg.validate();
    if !problems.is_empty() {
        let what = match file {
            Some(p) => format!("config {} is not usable:", p.display()),
            None => "the config is not usable (no --config given):".to_string(),
        };
        return Err(usage(format!("{what}\n  - {}", problems.join("\n  - "))));
    }
    if let Some(f) = file.filter(|f| crate::facts::private::is_loose(f)) {
        tracing::warn!(
            config = %f.display(),
            "the config file is readable by other users and may hold secrets; chmod 600 it"
        );
    }
    Ok(())
}

/// Opens the store (importing the configured dataset) and runs the bot
/// on a multi-threaded runtime until it stops.
fn serve(cfg: &Config, db: &Path, removals: Removals) -> Result<(), Failure> {
    let (app, _) =
        open_app(cfg, db, removals).map_err(|e| match e.downcast_ref::<StoreError>() {
            Some(StoreError::Shrink { .. }) => Failure { code: 2, error: e },
            _ => Failure { code: 1, error: e },
        })?;
    let app = Arc::new(app);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(crate::app::serve(cfg, app))?;
    Ok(())
}
