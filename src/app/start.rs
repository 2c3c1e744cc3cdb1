//! Start-up shared by every subcommand: open the store, bring its dataset
//! up to date, build the application over it.
//!
//! Which dataset a start imports: the config's `[store] dataset` if set;
//! otherwise wherever the store's current dataset came from (the directory
//! of the last `factbot import DIR`, or the copy built into the binary).
//! So an operator's manual import is never silently replaced by the
//! built-in data, and an edited dataset directory is picked up on restart.

use std::path::Path;

use anyhow::Result;

use super::App;
use crate::config::Config;
use crate::facts::{Dataset, ImportReport, Origin, Store, StoreError};
use crate::progress;

/// What a start does with a dataset that is empty or would remove more
/// than a quarter of the stored facts (the shrink guard of
/// [`Store::import`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removals {
    /// Import it anyway (the operator's `--allow-removals`).
    Allow,
    /// Stop with the error (`factbot run`: a bot must not serve, or
    /// notify, on a dataset its operator has not seen through).
    Refuse,
    /// Log the refusal and go on with the facts already stored (one-shot
    /// commands: `ask`, `facts`, the console).
    KeepStored,
}

/// Opens the store at `dir` and imports the dataset due at start. Long
/// steps (a large import, an index build) show their progress.
pub fn open_app(cfg: &Config, dir: &Path, removals: Removals) -> Result<(App, ImportReport)> {
    let store = Store::open(dir)?;
    let report = match progress::spin("reading the dataset", || start_dataset(cfg, &store))? {
        Some(ds) => {
            let imported = progress::spin(&format!("importing {} facts", ds.facts.len()), || {
                store.import_with(&ds, removals == Removals::Allow)
            });
            match imported {
                Ok(r) => r,
                Err(e @ StoreError::Shrink { .. }) if removals == Removals::KeepStored => {
                    tracing::warn!(
                        dataset = %ds.origin.to_meta(),
                        "{e}; answering from the facts already stored"
                    );
                    ImportReport::default()
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e)
                        .context(format!("importing the dataset into {}", dir.display())))
                }
            }
        }
        None => ImportReport::default(),
    };
    if report.written {
        tracing::info!(
            added = report.added,
            updated = report.updated,
            removed = report.removed,
            "dataset imported"
        );
    }
    Ok((open_indexed(store)?, report))
}

/// The application over `store`, showing the progress of an index build
/// (a large store whose saved index is missing or stale).
pub fn open_indexed(store: Store) -> Result<App> {
    let mut steps = progress::Steps::new("building the search index");
    let app = App::open(store, &mut |done, total| steps.update(done, total))?;
    steps.finish();
    Ok(app)
}

/// The dataset a start should import (`None`: keep what the store has).
/// Digests are compared before anything is parsed, so a start whose store
/// is up to date parses no dataset at all.
pub fn start_dataset(cfg: &Config, store: &Store) -> Result<Option<Dataset>> {
    let stored = store.dataset_digest()?;
    let origin = store.dataset_origin()?;
    let unchanged = |digest: String, o: Origin| {
        stored.as_deref() == Some(digest.as_str()) && origin.as_ref() == Some(&o)
    };
    if let Some(dir) = &cfg.store.dataset {
        let o = Origin::Dir(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone()));
        if unchanged(Dataset::dir_digest(dir)?, o) {
            return Ok(None);
        }
        return Ok(Some(Dataset::from_dir(dir)?));
    }
    match origin.clone() {
        Some(Origin::Dir(dir)) if dir.join(crate::facts::dataset_files::FACTS).exists() => {
            if unchanged(Dataset::dir_digest(&dir)?, Origin::Dir(dir.clone())) {
                return Ok(None);
            }
            Ok(Some(Dataset::from_dir(&dir)?))
        }
        Some(Origin::Dir(dir)) => {
            tracing::warn!(
                dir = %dir.display(),
                "the store's dataset directory is gone; keeping the facts already stored"
            );
            Ok(None)
        }
        _ if unchanged(Dataset::embedded_digest(), Origin::Embedded) => Ok(None),
        _ => Ok(Some(Dataset::embedded()?)),
    }
}
