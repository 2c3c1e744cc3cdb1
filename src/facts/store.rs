//! The sled-backed fact store: the bot's durable memory.
//!
//! Trees and why each exists:
//! - `facts`: fact id → JSON [`Fact`]; the source of truth for answers.
//! - `meta`: schema version, the digest and origin of the imported dataset,
//!   the synonym groups and the article — enough to rebuild the search index from the store
//!   alone, and to tell whether the dataset changed since the last import.
//! - `changes`: sequence number → JSON [`Change`]; an append-only log of every
//!   fact an import added, changed or removed, for notifications to read.
//! - `chats`: chat key → JSON [`ChatSettings`]; per-chat preferences (`/lang`).
//!   Mirrored in memory ([`ChatsMirror`]) so that reading them never
//!   touches sled.
//!
//! An import is one sled transaction over `facts`, `meta` and `changes`, so a
//! crash leaves the old dataset or the new one, never a mix; it is flushed
//! before the import reports success.
//!
//! Every import passes one guard ([`shrink_problem`]): a dataset with no
//! facts, or one that would remove more than a quarter of the stored facts
//! — a truncated `facts.toml` that still parses, a wrong directory — is
//! refused unless the operator allows removals (`--allow-removals`), so a
//! broken file cannot wipe the bot and flood its subscribers.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::chat::ChatKey;
use super::dataset::{Dataset, Origin};
use super::model::{Fact, Lang};
use super::trees::Tree;

/// Bumped when the stored layout changes; older stores are migrated on open,
/// newer ones refused.
pub const SCHEMA_VERSION: u32 = 1;

const META_SCHEMA: &str = "schema_version";
const META_DIGEST: &str = "dataset_digest";
const META_ORIGIN: &str = "dataset_origin";
const META_SYNONYMS: &str = "synonyms";
const META_IMPORTED_AT: &str = "imported_at";
const META_ARTICLE: &str = "article";
const PID_FILE: &str = "factbot.pid";
const DB_DIR: &str = "db";

/// One entry of the change log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Position in the log; increases with every change.
    pub seq: u64,
    pub fact_id: String,
    /// The fact before the import (`None`: it was added).
    pub old: Option<Fact>,
    /// The fact after the import (`None`: it was removed).
    pub new: Option<Fact>,
    /// Unix seconds of the import.
    pub at: u64,
}

/// Per-chat preferences, keyed by a transport-qualified chat key
/// (`console`, `tg:-100123`, `mx:!room:server`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatSettings {
    /// Language fixed with `/lang`; `None` follows each question.
    #[serde(default)]
    pub lang: Option<Lang>,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    pub added: usize,
    pub updated: usize,
    pub removed: usize,
    pub unchanged: usize,
    /// False when the dataset's digest matched the store: nothing was written.
    pub written: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the fact store at {} is in use by another process{}; stop it or use --db to open another store",
        path.display(),
        pid.map(|p| format!(" (factbot, pid {p})")).unwrap_or_default()
    )]
    Locked { path: PathBuf, pid: Option<u32> },
    #[error("the fact store at {} was written by a newer factbot (schema {found}, this one knows {SCHEMA_VERSION})", path.display())]
    TooNew { path: PathBuf, found: u32 },
    #[error("cannot create the store directory {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("fact store error: {0}")]
    Sled(#[from] sled::Error),
    #[error("corrupt record in tree {tree}: {message}")]
    Corrupt { tree: &'static str, message: String },
    #[error("import refused: {what}; nothing was changed. If that is intended, import again with --allow-removals")]
    Shrink { what: String },
}

/// The share of the stored facts one import may remove without the
/// operator's `--allow-removals`: a quarter. Editing a dataset removes a
/// fact or a few; losing more at once is what a cut-off `facts.toml` (or
/// the wrong directory) looks like.
pub const MAX_REMOVED_SHARE: (usize, usize) = (1, 4);

/// Why an import of `incoming` facts removing `removed` of `stored` must be
/// refused unless removals are allowed; `None` when it may go ahead.
pub fn shrink_problem(stored: usize, removed: usize, incoming: usize) -> Option<String> {
    let (num, den) = MAX_REMOVED_SHARE;
    if incoming == 0 {
        return Some("the dataset holds no facts (an empty or cut-off facts.toml?)".to_string());
    }
    (removed * den > stored * num).then(|| {
        format!(
            "the dataset would remove {removed} of the {stored} stored facts ({}%), more than a quarter (a cut-off facts.toml, or the wrong directory?)",
            removed * 100 / stored.max(1)
        )
    })
}

/// The store. Cheap to clone (sled trees are handles).
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    facts: sled::Tree,
    meta: sled::Tree,
    changes: sled::Tree,
    /// The `chats` tree, with its copy in memory that answers read.
    chats: Arc<ChatsMirror>,
    /// The store directory (empty for a temporary store).
    dir: PathBuf,
    /// One flush at a time, store-wide: sled 0.34's flushes can deadlock
    /// when they overlap (spacejam/sled#1308, fixed only after the last
    /// release). Every flush goes through [`Store::flush`] or
    /// [`Store::flush_async`].
    flushing: Arc<std::sync::Mutex<()>>,
    /// One import at a time: two that overlap would both diff against the
    /// same old facts (logging a change twice) and could commit their
    /// change-log entries out of sequence order (the notification
    /// watermark would then skip one).
    importing: Arc<std::sync::Mutex<()>>,
    /// Shared by clones; the last one dropped removes the pid file.
    _pid: Option<Arc<PidFile>>,
}

/// The `chats` tree mirrored in memory: read whole at open, written
/// through by [`Store::set_chat_settings`] (its only writer).
///
/// The failure this prevents: every answer reads its chat's settings (the
/// `/lang` choice). Read from sled, that is a B-tree walk on a cache hit but
/// a disk read on a miss, so answers had to run on a blocking thread —
/// that hop alone cost a Telegram reply 2 of its 12 context switches and
/// the bot 1.7 MiB of peak memory (scripts/bench-telegram.sh). From memory, a
/// transport can answer a read-only question on its runtime thread
/// ([`crate::answer::Engine::answer_in_memory`]). The tree holds one small
/// entry per chat that ever set a language, so the mirror costs what the
/// tree does on disk, a few dozen bytes a chat.
struct ChatsMirror {
    /// The tree itself: the durable copy, written to, read only at open.
    tree: sled::Tree,
    /// Chat key bytes → the settings, or why the stored entry cannot be
    /// read (reported on every read, as sled's own read would be).
    map: RwLock<HashMap<Vec<u8>, Result<ChatSettings, String>>>,
}

impl ChatsMirror {
    /// Reads the whole tree; an unreadable entry is kept as its error, and
    /// a tree that cannot be read (an I/O error) loads what it can, logged.
    fn load(tree: sled::Tree) -> ChatsMirror {
        let mut map = HashMap::new();
        for kv in tree.iter() {
            match kv {
                Ok((k, v)) => {
                    let s = decode::<ChatSettings>("chats", &v).map_err(|e| e.to_string());
                    map.insert(k.to_vec(), s);
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the chat settings; the rest use defaults");
                    break;
                }
            }
        }
        ChatsMirror {
            tree,
            map: RwLock::new(map),
        }
    }

    fn get(&self, key: &[u8]) -> Result<ChatSettings, StoreError> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        match map.get(key) {
            None => Ok(ChatSettings::default()),
            Some(Ok(s)) => Ok(s.clone()),
            Some(Err(message)) => Err(StoreError::Corrupt {
                tree: "chats",
                message: message.clone(),
            }),
        }
    }

    /// Writes `s` under `key` to the tree (not flushed) and, if that
    /// succeeds, here; one writer at a time, so the two never disagree.
    fn write(&self, key: Vec<u8>, s: &ChatSettings) -> Result<(), StoreError> {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        self.tree.insert(key.as_slice(), encode(s))?;
        map.insert(key, Ok(s.clone()));
        Ok(())
    }
}

impl Store {
    /// Opens (creating if needed) the store in directory `dir`, private to
    /// this user (see [`super::private`]): a looser existing store is
    /// tightened and reported.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        super::private::create_dir(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        super::private::report(dir, &super::private::tighten(dir));
        let db = match sled::Config::new()
            .path(dir.join(DB_DIR))
            .cache_capacity(16 * 1024 * 1024)
            .open()
        {
            Ok(db) => db,
            Err(e) if is_lock_error(&e) => {
                return Err(StoreError::Locked {
                    path: dir.to_path_buf(),
                    pid: read_pid(dir),
                })
            }
            Err(e) => return Err(e.into()),
        };
        // We hold sled's lock now: record who we are for the next opener.
        let pid = PidFile::write(dir);
        // What sled just created, should the process umask be loose (the
        // library used by another program): private too, silently.
        super::private::tighten(dir);
        let chats = ChatsMirror::load(db.open_tree(Tree::Chats.name())?);
        let store = Store {
            facts: db.open_tree(Tree::Facts.name())?,
            meta: db.open_tree(Tree::Meta.name())?,
            changes: db.open_tree(Tree::Changes.name())?,
            chats: Arc::new(chats),
            db,
            dir: dir.to_path_buf(),
            flushing: Arc::default(),
            importing: Arc::default(),
            _pid: Some(Arc::new(pid)),
        };
        store.check_schema()?;
        Ok(store)
    }

    /// Opens a store this process has just closed (unit tests): sled's
    /// flusher thread releases the file lock a moment after the last handle
    /// is dropped, so an immediate reopen may briefly find it locked.
    #[cfg(test)]
    pub(crate) fn reopen(dir: &Path) -> Store {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match Store::open(dir) {
                Ok(s) => return s,
                Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => panic!("cannot reopen the store: {e}"),
            }
        }
    }

    /// A throw-away store in memory (tests, benchmarks).
    pub fn temporary() -> Result<Store, StoreError> {
        let db = sled::Config::new().temporary(true).open()?;
        let chats = ChatsMirror::load(db.open_tree(Tree::Chats.name())?);
        let store = Store {
            facts: db.open_tree(Tree::Facts.name())?,
            meta: db.open_tree(Tree::Meta.name())?,
            changes: db.open_tree(Tree::Changes.name())?,
            chats: Arc::new(chats),
            db,
            dir: PathBuf::new(),
            flushing: Arc::default(),
            importing: Arc::default(),
            _pid: None,
        };
        store.check_schema()?;
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes every write so far durable, in every tree (one sled flush
    /// covers the whole database). Blocks on disk I/O: from async code use
    /// [`Store::flush_async`]. Serialised store-wide (see `flushing`).
    pub fn flush(&self) -> Result<(), StoreError> {
        let _one = self
            .flushing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.db.flush()?;
        Ok(())
    }

    /// [`Store::flush`] on a blocking thread, so the async runtime's worker
    /// threads never wait for the disk.
    pub async fn flush_async(&self) -> Result<(), StoreError> {
        let store = self.clone();
        match tokio::task::spawn_blocking(move || store.flush()).await {
            Ok(r) => r,
            Err(e) => Err(StoreError::Corrupt {
                tree: "(flush)",
                message: format!("flush task failed: {e}"),
            }),
        }
    }

    fn check_schema(&self) -> Result<(), StoreError> {
        match self.meta.get(META_SCHEMA)? {
            None => {
                self.meta
                    .insert(META_SCHEMA, &SCHEMA_VERSION.to_be_bytes())?;
                Ok(())
            }
            Some(v) => {
                let found = <[u8; 4]>::try_from(v.as_ref())
                    .map(u32::from_be_bytes)
                    .map_err(|_| StoreError::Corrupt {
                        tree: "meta",
                        message: "schema_version is not a u32".into(),
                    })?;
                if found > SCHEMA_VERSION {
                    Err(StoreError::TooNew {
                        path: self.dir.clone(),
                        found,
                    })
                } else {
                    Ok(())
                }
            }
        }
    }

    fn meta_str(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .meta
            .get(key)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// The digest of the dataset last imported, if any.
    pub fn dataset_digest(&self) -> Result<Option<String>, StoreError> {
        self.meta_str(META_DIGEST)
    }

    /// Where the dataset last imported came from.
    pub fn dataset_origin(&self) -> Result<Option<Origin>, StoreError> {
        Ok(self
            .meta_str(META_ORIGIN)?
            .and_then(|s| Origin::from_meta(&s)))
    }

    /// Unix seconds of the last import that wrote anything.
    pub fn imported_at(&self) -> Result<Option<u64>, StoreError> {
        Ok(self
            .meta_str(META_IMPORTED_AT)?
            .and_then(|s| s.parse().ok()))
    }

    /// The synonym groups of the imported dataset.
    pub fn synonyms(&self) -> Result<Vec<Vec<String>>, StoreError> {
        match self.meta.get(META_SYNONYMS)? {
            None => Ok(Vec::new()),
            Some(v) => serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                tree: "meta",
                message: e.to_string(),
            }),
        }
    }

    /// The source article of the imported dataset.
    pub fn article(&self) -> Result<String, StoreError> {
        Ok(self.meta_str(META_ARTICLE)?.unwrap_or_default())
    }

    /// All facts, in dataset order.
    pub fn facts(&self) -> Result<Vec<Fact>, StoreError> {
        let mut out = Vec::with_capacity(self.facts.len());
        for kv in self.facts.iter() {
            let (_, v) = kv?;
            out.push(decode::<Fact>("facts", &v)?);
        }
        out.sort_by_key(|f| f.order);
        Ok(out)
    }

    pub fn fact(&self, id: &str) -> Result<Option<Fact>, StoreError> {
        self.facts.get(id)?.map(|v| decode("facts", &v)).transpose()
    }

    pub fn fact_count(&self) -> usize {
        self.facts.len()
    }

    /// Imports a dataset: writes only what differs, logs each difference,
    /// all in one transaction. A dataset whose digest the store already has
    /// writes nothing. The very first import (empty store) seeds the store
    /// without logging: a seed is not news. Imports through one store (and
    /// its clones) run one at a time. A dataset that is empty or
    /// would remove more than a quarter of the facts is refused
    /// ([`StoreError::Shrink`]); see [`Store::import_with`].
    pub fn import(&self, ds: &Dataset) -> Result<ImportReport, StoreError> {
        self.import_with(ds, false)
    }

    /// [`Store::import`], with `allow_removals` lifting the guard against
    /// empty and drastically smaller datasets (the operator's
    /// `--allow-removals`).
    pub fn import_with(
        &self,
        ds: &Dataset,
        allow_removals: bool,
    ) -> Result<ImportReport, StoreError> {
        let _one = self
            .importing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let stored = self.dataset_digest()?;
        if stored.as_deref() == Some(ds.digest.as_str())
            && self.dataset_origin()?.as_ref() == Some(&ds.origin)
        {
            return Ok(ImportReport {
                unchanged: ds.facts.len(),
                ..ImportReport::default()
            });
        }
        let first = stored.is_none() && self.facts.is_empty();
        let mut old: BTreeMap<String, Fact> = self
            .facts()?
            .into_iter()
            .map(|f| (f.id.clone(), f))
            .collect();
        let mut report = ImportReport {
            written: true,
            ..ImportReport::default()
        };
        // (id, old, new) for every fact that differs.
        let mut diffs: Vec<(String, Option<Fact>, Option<Fact>)> = Vec::new();
        // Facts that only moved in the file: rewritten, but not news.
        let mut moved: Vec<&Fact> = Vec::new();
        for f in &ds.facts {
            match old.remove(&f.id) {
                Some(o) if &o == f => report.unchanged += 1,
                Some(o) if o.order != f.order && same_content(&o, f) => {
                    report.unchanged += 1;
                    moved.push(f);
                }
                Some(o) => {
                    report.updated += 1;
                    diffs.push((f.id.clone(), Some(o), Some(f.clone())));
                }
                None => {
                    report.added += 1;
                    diffs.push((f.id.clone(), None, Some(f.clone())));
                }
            }
        }
        let stored = report.unchanged + report.updated + old.len();
        for (id, o) in old {
            report.removed += 1;
            diffs.push((id, Some(o), None));
        }
        if !allow_removals {
            if let Some(what) = shrink_problem(stored, report.removed, ds.facts.len()) {
                return Err(StoreError::Shrink { what });
            }
        }
        let now = unix_now();
        let synonyms = encode(&ds.synonyms);
        let encoded: Vec<(String, Option<Vec<u8>>)> = diffs
            .iter()
            .map(|(id, _, new)| (id.clone(), new.as_ref().map(encode)))
            .chain(moved.iter().map(|f| (f.id.clone(), Some(encode(f)))))
            .collect();
        let result: Result<(), TransactionError<StoreError>> =
            (&self.facts, &self.meta, &self.changes).transaction(|(facts, meta, changes)| {
                for (id, value) in &encoded {
                    match value {
                        Some(v) => facts.insert(id.as_bytes(), v.as_slice())?,
                        None => facts.remove(id.as_bytes())?,
                    };
                }
                if !first {
                    for (id, o, n) in &diffs {
                        let seq = changes.generate_id()?;
                        let change = Change {
                            seq,
                            fact_id: id.clone(),
                            old: o.clone(),
                            new: n.clone(),
                            at: now,
                        };
                        changes.insert(&seq.to_be_bytes(), encode(&change))?;
                    }
                }
                meta.insert(META_DIGEST, ds.digest.as_bytes())?;
                meta.insert(META_ORIGIN, ds.origin.to_meta().as_bytes())?;
                meta.insert(META_SYNONYMS, synonyms.as_slice())?;
                meta.insert(META_ARTICLE, ds.article.as_bytes())?;
                meta.insert(META_IMPORTED_AT, now.to_string().as_bytes())?;
                Ok::<(), ConflictableTransactionError<StoreError>>(())
            });
        match result {
            Ok(()) => {}
            Err(TransactionError::Abort(e)) => return Err(e),
            Err(TransactionError::Storage(e)) => return Err(e.into()),
        }
        self.flush()?;
        Ok(report)
    }

    /// Change-log entries with `seq >= from`, oldest first.
    pub fn changes_since(&self, from: u64) -> Result<Vec<Change>, StoreError> {
        self.changes
            .range(from.to_be_bytes()..)
            .map(|kv| {
                let (_, v) = kv?;
                decode("changes", &v)
            })
            .collect()
    }

    /// A chat's settings (the defaults when it has none), from memory: no
    /// disk, no sled (see [`ChatsMirror`]), so safe on an async runtime's
    /// threads. An entry that could not be read at open stays an error.
    pub fn chat_settings(&self, chat: &ChatKey) -> Result<ChatSettings, StoreError> {
        self.chats.get(&chat.to_bytes())
    }

    /// Stores a chat's settings, durably (a flush: blocks on the disk).
    pub fn set_chat_settings(&self, chat: &ChatKey, s: &ChatSettings) -> Result<(), StoreError> {
        self.chats.write(chat.to_bytes(), s)?;
        self.flush()?;
        Ok(())
    }

    /// Checks the store's internal consistency: every fact decodes and sits
    /// under its own id, and the stored digest is present when facts are.
    /// Returns the number of facts.
    pub fn verify(&self) -> Result<usize, StoreError> {
        let mut n = 0;
        for kv in self.facts.iter() {
            let (k, v) = kv?;
            let f: Fact = decode("facts", &v)?;
            if f.id.as_bytes() != k.as_ref() {
                return Err(StoreError::Corrupt {
                    tree: "facts",
                    message: format!(
                        "fact {:?} stored under key {:?}",
                        f.id,
                        String::from_utf8_lossy(&k)
                    ),
                });
            }
            n += 1;
        }
        if n > 0 && self.dataset_digest()?.is_none() {
            return Err(StoreError::Corrupt {
                tree: "meta",
                message: "facts present but no dataset digest".into(),
            });
        }
        for kv in self.changes.iter() {
            let (_, v) = kv?;
            decode::<Change>("changes", &v)?;
        }
        Ok(n)
    }

    /// A tree for a transport's own durable state (sessions, handled
    /// updates); named per transport so they never collide.
    pub fn tree(&self, tree: Tree) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(tree.name())?)
    }
}

/// Removes the pid file when the last handle to an on-disk store goes.
struct PidFile(PathBuf);

impl PidFile {
    fn write(dir: &Path) -> PidFile {
        let path = dir.join(PID_FILE);
        // Informational only (it names the holder in the "locked" error):
        // failing to write it must not stop the bot.
        let _ = std::fs::write(&path, std::process::id().to_string());
        PidFile(path)
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The next value of a persistent counter kept under `key` in `tree`:
/// 1, 2, 3, … atomically, never reused across restarts (ids of
/// notifications, announcement drafts).
pub fn next_in_sequence(tree: &sled::Tree, key: &str) -> Result<u64, sled::Error> {
    let read = |b: &[u8]| <[u8; 8]>::try_from(b).ok().map(u64::from_be_bytes);
    let v = tree.update_and_fetch(key, |old| {
        let n = old.and_then(read).unwrap_or(0) + 1;
        Some(n.to_be_bytes().to_vec())
    })?;
    Ok(v.as_deref().and_then(read).unwrap_or(1))
}

/// Equal but for the position in the file.
fn same_content(a: &Fact, b: &Fact) -> bool {
    Fact {
        order: b.order,
        ..a.clone()
    } == *b
}

fn is_lock_error(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.to_string().contains("lock"))
}

fn read_pid(dir: &Path) -> Option<u32> {
    std::fs::read_to_string(dir.join(PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // Serializing our own plain data types to JSON cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}

fn decode<T: for<'de> Deserialize<'de>>(tree: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        tree,
        message: e.to_string(),
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Settings are read from memory, yet are exactly what sled holds:
    /// written through in every clone, there after a restart, and an entry
    /// sled cannot decode stays an error rather than silently the defaults.
    #[test]
    fn chat_settings_are_mirrored_in_memory_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (ru, tg) = (ChatKey::Telegram(-5), ChatKey::Telegram(7));
        {
            let store = Store::open(dir.path()).unwrap();
            let clone = store.clone();
            assert_eq!(store.chat_settings(&ru).unwrap(), ChatSettings::default());
            let set = ChatSettings {
                lang: Some(Lang::Ru),
            };
            clone.set_chat_settings(&ru, &set).unwrap();
            assert_eq!(
                store.chat_settings(&ru).unwrap(),
                set,
                "another clone sees it"
            );
            assert_eq!(
                store
                    .chats
                    .tree
                    .get(ru.to_bytes())
                    .unwrap()
                    .map(|v| v.to_vec()),
                Some(encode(&set)),
                "sled holds the same"
            );
            // An entry an older or damaged store left: undecodable.
            store
                .chats
                .tree
                .insert(tg.to_bytes(), &b"{not json"[..])
                .unwrap();
            store.flush().unwrap();
        }
        let store = Store::reopen(dir.path());
        assert_eq!(store.chat_settings(&ru).unwrap().lang, Some(Lang::Ru));
        assert!(matches!(
            store.chat_settings(&tg),
            Err(StoreError::Corrupt { tree: "chats", .. })
        ));
        // Setting it again repairs it.
        store
            .set_chat_settings(&tg, &ChatSettings::default())
            .unwrap();
        assert_eq!(store.chat_settings(&tg).unwrap(), ChatSettings::default());
    }

    #[test]
    fn the_shrink_guard_allows_a_quarter() {
        assert_eq!(shrink_problem(49, 0, 49), None);
        assert_eq!(shrink_problem(48, 12, 36), None, "exactly a quarter");
        assert!(shrink_problem(48, 13, 35).unwrap().contains("13 of the 48"));
        assert!(shrink_problem(0, 0, 0).unwrap().contains("no facts"));
        assert!(shrink_problem(49, 49, 0).unwrap().contains("no facts"));
        assert_eq!(shrink_problem(0, 0, 5), None, "a first import");
    }

    #[test]
    fn a_drastically_smaller_dataset_is_refused_unless_allowed() {
        let store = Store::temporary().unwrap();
        let full = Dataset::embedded().unwrap();
        store.import(&full).unwrap();
        let mut half = full.clone();
        half.facts.truncate(full.facts.len() / 2);
        half.digest = "half".into();
        let e = store.import(&half).unwrap_err();
        assert!(matches!(e, StoreError::Shrink { .. }), "{e}");
        assert!(e.to_string().contains("--allow-removals"), "{e}");
        assert_eq!(store.fact_count(), full.facts.len(), "nothing changed");
        assert!(store.changes_since(0).unwrap().is_empty());
        assert_eq!(store.dataset_digest().unwrap(), Some(full.digest.clone()));
        let mut empty = full.clone();
        empty.facts.clear();
        empty.digest = "empty".into();
        assert!(matches!(
            store.import(&empty),
            Err(StoreError::Shrink { .. })
        ));
        let r = store.import_with(&half, true).unwrap();
        assert_eq!(r.removed, full.facts.len() - full.facts.len() / 2);
        assert_eq!(store.fact_count(), full.facts.len() / 2);
    }
}
