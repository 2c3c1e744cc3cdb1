//! Uploaded charts, remembered: a platform's handle for a picture it
//! already holds (Telegram `file_id`, Matrix content URI or encrypted-file
//! descriptor), keyed by the chart's [`ChartKey`](crate::chart::ChartKey).
//!
//! The failure this prevents: every `/chart trade` uploading the same
//! 100 KB again — slow for the asker, wasteful for the platform, and on
//! Telegram an upload costs the chat's send pacing like any message. The
//! key carries the digest of the facts drawn (and the render version), so
//! a changed dataset is a new key and uploads afresh, while unrelated
//! edits keep the stored handle. A handle the platform no longer accepts
//! is replaced by the transport after one fresh upload.
//!
//! Each platform has a tree of its own (`telegram_media`, `matrix_media`),
//! opened through [`Store`] like the other trees. Writes are flushed with
//! [`Store::flush_async`], so the runtime's threads never wait for the disk;
//! a handle lost to a crash before the flush only costs one more upload.
//! The few stale handles of old dataset versions are a few hundred bytes
//! each and are never read again.

use crate::facts::{Store, StoreError, Tree};

/// Stored platform handles for uploaded charts.
#[derive(Clone)]
pub struct MediaIds {
    /// For [`Store::flush_async`], the one serialised way to flush.
    store: Store,
    /// Chart key (`trade/en/1f0c…`, possibly with a transport's prefix) →
    /// the platform's handle, UTF-8.
    tree: sled::Tree,
}

impl MediaIds {
    /// The handles in tree `tree` of `store` (`telegram_media`,
    /// `matrix_media`).
    pub fn open(store: &Store, tree: Tree) -> Result<MediaIds, StoreError> {
        Ok(MediaIds {
            store: store.clone(),
            tree: store.tree(tree)?,
        })
    }

    /// The stored handle for `key`; `None` when there is none or the tree
    /// cannot be read (then the chart is uploaded again, and a log line says
    /// why).
    pub fn get(&self, key: &str) -> Option<String> {
        match self.tree.get(key) {
            Ok(v) => v.and_then(|v| String::from_utf8(v.to_vec()).ok()),
            Err(e) => {
                tracing::warn!(key, error = %e, "cannot read a stored media id; uploading again");
                None
            }
        }
    }

    /// Stores `handle` under `key` and makes it durable off the runtime's
    /// threads. Failure is logged, not returned: the picture was sent, and
    /// the next send uploads again.
    pub async fn put(&self, key: &str, handle: &str) {
        if let Err(e) = self.tree.insert(key, handle.as_bytes()) {
            tracing::warn!(key, error = %e, "cannot store a media id");
            return;
        }
        if let Err(e) = self.store.flush_async().await {
            tracing::warn!(key, error = %e, "cannot flush a stored media id");
        }
    }

    /// Forgets `key`'s handle if it is still `handle` (one the platform
    /// refused), so a concurrent replacement is kept.
    pub async fn forget(&self, key: &str, handle: &str) {
        match self
            .tree
            .compare_and_swap(key, Some(handle.as_bytes()), None as Option<&[u8]>)
        {
            Ok(_) => {}
            Err(e) => tracing::warn!(key, error = %e, "cannot forget a stale media id"),
        }
        if let Err(e) = self.store.flush_async().await {
            tracing::warn!(key, error = %e, "cannot flush a forgotten media id");
        }
    }
}

/// One upload of a chart at a time per key, so two chats asking for a new
/// chart at the same moment upload it once: the second waits for the first
/// and then finds its handle.
#[derive(Default)]
pub struct Uploads {
    locks:
        std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
}

impl Uploads {
    /// Holds `key`'s lock until the guard drops.
    pub async fn lock(&self, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            // Keys of old dataset versions are dropped once nobody holds
            // them; the map stays as small as the charts in use.
            map.retain(|_, l| std::sync::Arc::strong_count(l) > 1);
            std::sync::Arc::clone(map.entry(key.to_string()).or_default())
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn handles_are_stored_replaced_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ids = MediaIds::open(&store, Tree::TelegramMedia).unwrap();
        assert_eq!(ids.get("trade/en/0123"), None);
        ids.put("trade/en/0123", "AgAC-first").await;
        assert_eq!(ids.get("trade/en/0123").as_deref(), Some("AgAC-first"));
        // A stale handle is forgotten only if it is still the stored one.
        ids.forget("trade/en/0123", "AgAC-other").await;
        assert_eq!(ids.get("trade/en/0123").as_deref(), Some("AgAC-first"));
        ids.forget("trade/en/0123", "AgAC-first").await;
        assert_eq!(ids.get("trade/en/0123"), None);
        ids.put("trade/en/0123", "AgAC-second").await;
        // Another tree does not see it.
        let mx = MediaIds::open(&store, Tree::MatrixMedia).unwrap();
        assert_eq!(mx.get("trade/en/0123"), None);
        drop((ids, mx, store));
        let store = Store::reopen(dir.path());
        let ids = MediaIds::open(&store, Tree::TelegramMedia).unwrap();
        assert_eq!(ids.get("trade/en/0123").as_deref(), Some("AgAC-second"));
    }

    #[tokio::test]
    async fn one_upload_per_key_at_a_time() {
        let u = std::sync::Arc::new(Uploads::default());
        let g = u.lock("a").await;
        // Another key is not held up.
        let _b = u.lock("b").await;
        let u2 = std::sync::Arc::clone(&u);
        let waiter = tokio::spawn(async move {
            let _g = u2.lock("a").await;
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(g);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("the second upload proceeds once the first is done")
            .unwrap();
    }
}
