//! Facts: the model, the dataset they come from, and the store that keeps them.

mod chat;
mod dataset;
mod model;
pub mod private;
mod store;
pub mod synthetic;
mod trees;

pub use chat::{ChatKey, ChatKeyError, Platform};
pub use dataset::{paragraphs, Dataset, DatasetError, Origin, MAX_ID_LEN};

/// The file names of a dataset directory.
pub mod dataset_files {
    pub use super::dataset::{
        ARTICLE_FILE as ARTICLE, FACTS_FILE as FACTS, SYNONYMS_FILE as SYNONYMS,
    };
}
pub use model::{Bilingual, Derivation, Fact, Lang, PartialDate, Topic, Value};
pub use store::{
    next_in_sequence, shrink_problem, Change, ChatSettings, ImportReport, Store, StoreError,
    MAX_REMOVED_SHARE, SCHEMA_VERSION,
};
pub use trees::Tree;
