//! Every sled tree of the store, by name, in one place.
//!
//! The store is one sled database shared by the core, notifications and the
//! transports; each opens its trees through [`Store::tree`](super::Store::tree)
//! with a [`Tree`], so no two parts can pick the same name by accident and a
//! reader sees here everything the store holds.

/// A tree of the store, and who owns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tree {
    /// `facts`: the facts, by id.
    Facts,
    /// `facts`: schema version, dataset digest and origin, synonyms, article.
    Meta,
    /// `facts`: the append-only change log notifications are made from.
    Changes,
    /// `facts`: per-chat settings (`/lang`).
    Chats,
    /// `notify`: which chat wants which topics.
    Subscriptions,
    /// `notify`: notifications, by id.
    NotifyNotifications,
    /// `notify`: one record per notification and chat.
    NotifyDeliveries,
    /// `notify`: watermarks (change log, digest), blocked-since marks.
    NotifyMeta,
    /// `notify`: id sequences.
    NotifyIds,
    /// `notify`: announcement drafts waiting for their author's *Send*.
    NotifyDrafts,
    /// `transport::telegram`: updates taken in and not yet answered.
    TelegramInbox,
    /// `transport::telegram`: uploaded chart `file_id`s, by chart key.
    TelegramMedia,
    /// `transport::matrix`: the bot's own sync token.
    MatrixState,
    /// `transport::matrix`: messages taken in and not yet answered.
    MatrixInbox,
    /// `transport::matrix`: event ids answered recently.
    MatrixAnswered,
    /// `transport::matrix`: uploaded chart sources, by chart key.
    MatrixMedia,
}

impl Tree {
    /// Every tree.
    pub const ALL: [Tree; 16] = [
        Tree::Facts,
        Tree::Meta,
        Tree::Changes,
        Tree::Chats,
        Tree::Subscriptions,
        Tree::NotifyNotifications,
        Tree::NotifyDeliveries,
        Tree::NotifyMeta,
        Tree::NotifyIds,
        Tree::NotifyDrafts,
        Tree::TelegramInbox,
        Tree::TelegramMedia,
        Tree::MatrixState,
        Tree::MatrixInbox,
        Tree::MatrixAnswered,
        Tree::MatrixMedia,
    ];

    /// The name on disk (never change one: stores written by earlier
    /// versions hold their data under it).
    pub const fn name(self) -> &'static str {
        match self {
            Tree::Facts => "facts",
            Tree::Meta => "meta",
            Tree::Changes => "changes",
            Tree::Chats => "chats",
            Tree::Subscriptions => "subscriptions",
            Tree::NotifyNotifications => "notify_notifications",
            Tree::NotifyDeliveries => "notify_deliveries",
            Tree::NotifyMeta => "notify_meta",
            Tree::NotifyIds => "notify_ids",
            Tree::NotifyDrafts => "notify_drafts",
            Tree::TelegramInbox => "telegram_inbox",
            Tree::TelegramMedia => "telegram_media",
            Tree::MatrixState => "matrix_state",
            Tree::MatrixInbox => "matrix_inbox",
            Tree::MatrixAnswered => "matrix_answered",
            Tree::MatrixMedia => "matrix_media",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tree_has_its_own_name() {
        let names: std::collections::HashSet<&str> = Tree::ALL.iter().map(|t| t.name()).collect();
        assert_eq!(names.len(), Tree::ALL.len());
    }
}
