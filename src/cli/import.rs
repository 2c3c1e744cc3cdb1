//! `factbot import`: a dataset directory (or the configured one, or the
//! built-in dataset) written into the store, only changed facts, then
//! indexed so the next start loads the index instead of building it. While
//! the bot runs it holds the store, so the import is handed to its admin
//! endpoint and the changes go out as notifications at once.
//! `--synthetic N` first writes the benchmark dataset.

use std::path::{Path, PathBuf};

use super::{usage, Context, Failure};
use crate::app::open_indexed;
use crate::config::Config;
use crate::facts::{Dataset, Store, StoreError};
use crate::notify::admin::{Client, ClientError};
use crate::progress;

// No `///` here: the `import` variant's doc comment in main.rs is the help.
#[derive(clap::Args)]
pub struct Args {
    /// Directory with facts.toml, article.txt and synonyms.toml.
    pub dir: Option<PathBuf>,
    /// Import even if the dataset is empty or removes more than a
    /// quarter of the stored facts (refused otherwise: a cut-off
    /// facts.toml must not wipe the bot).
    #[arg(long)]
    pub allow_removals: bool,
    /// Benchmarks: first write a synthetic dataset of N facts (the
    /// built-in facts' words reshuffled) into DIR, which must not exist
    /// or be empty.
    #[arg(long, hide = true, value_name = "N", requires = "dir")]
    pub synthetic: Option<usize>,
}

/// `factbot import [DIR] [--allow-removals] [--synthetic N]`.
pub fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    if let (Some(n), Some(d)) = (args.synthetic, &args.dir) {
        write_synthetic(n, d)?;
    }
    let dir = args.dir.or_else(|| ctx.cfg.store.dataset.clone());
    let ds = progress::spin("reading the dataset", || match &dir {
        Some(d) => Dataset::from_dir(d).map_err(|e| usage(e.to_string())),
        None => Dataset::embedded().map_err(Failure::from),
    })?;
    match Store::open(&ctx.db) {
        Ok(store) => into_store(store, ds, &ctx.db, args.allow_removals),
        // The running bot holds the store: hand the import to it (its
        // admin endpoint), so the changes go out as notifications now.
        Err(e @ StoreError::Locked { .. }) => {
            into_running_bot(&ctx.cfg, e, dir.as_deref(), args.allow_removals)
        }
        Err(e) => Err(e.into()),
    }
}

/// `factbot import --synthetic N DIR`: writes the benchmark dataset.
fn write_synthetic(n: usize, dir: &Path) -> Result<(), Failure> {
    if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(usage(format!(
            "{} is not empty; --synthetic writes a new dataset directory",
            dir.display()
        )));
    }
    let ds = progress::spin(&format!("generating {n} synthetic facts"), || {
        crate::facts::synthetic::generate(n, 1)
    });
    crate::facts::synthetic::write_dir(&ds, dir)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", dir.display()))?;
    Ok(())
}

/// The store is locked by the running bot: its admin endpoint imports,
/// if the config names one (else the lock is the error).
fn into_running_bot(
    cfg: &Config,
    locked: StoreError,
    dir: Option<&Path>,
    allow_removals: bool,
) -> Result<(), Failure> {
    let Some(client) = Client::from_config(&cfg.notify) else {
        return Err(locked.into());
    };
    let abs = dir.map(|d| std::fs::canonicalize(d).unwrap_or_else(|_| d.to_path_buf()));
    let r = match client.import(abs.as_deref().and_then(Path::to_str), allow_removals) {
        Ok(r) => r,
        // Refused by the bot (the shrink guard, a bad dataset).
        Err(ClientError::Status(400 | 409, msg)) => return Err(usage(msg)),
        Err(e) => return Err(e.into()),
    };
    outln!(
        "imported into the running bot: {} added, {} updated, {} removed, {} unchanged",
        r.added,
        r.updated,
        r.removed,
        r.unchanged
    )?;
    Ok(())
}

/// Writes the changed facts, indexes the store and says what changed.
fn into_store(store: Store, ds: Dataset, db: &Path, allow_removals: bool) -> Result<(), Failure> {
    let r = progress::spin(
        &format!("importing {} facts into {}", ds.facts.len(), db.display()),
        || store.import_with(&ds, allow_removals),
    )
    .map_err(store_failure)?;
    let n = ds.facts.len();
    drop(ds);
    // Index now, so the next start loads the saved index (a large store)
    // instead of building it.
    open_indexed(store)?;
    if r.written {
        outln!(
            "imported {} facts into {}: {} added, {} updated, {} removed, {} unchanged",
            n,
            db.display(),
            r.added,
            r.updated,
            r.removed,
            r.unchanged
        )?;
    } else {
        outln!(
            "nothing to import: {} already holds this dataset ({} facts)",
            db.display(),
            r.unchanged
        )?;
    }
    Ok(())
}

/// A failure of the store: a refused import is the operator's input (2).
fn store_failure(e: StoreError) -> Failure {
    match e {
        e @ StoreError::Shrink { .. } => usage(e.to_string()),
        e => e.into(),
    }
}
