//! Query understanding: commands, language, and ranked search.

mod command;
mod fuzzy;
mod index;
mod lang;
mod text;

pub(crate) use command::russian_topic;
pub use command::{parse, Command, Input, COMMANDS};
pub use index::{Hit, Index, SearchResult};
pub use lang::detect as detect_lang;
pub use text::{words, Analyzer};
