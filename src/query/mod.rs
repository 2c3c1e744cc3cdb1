//! Query understanding: commands, language, and ranked search.

mod command;
mod compact;
mod fuzzy;
mod index;
mod lang;
mod text;

pub(crate) use command::russian_topic;
pub use command::{parse, Command, Input, NotifyCommand};
pub use compact::{CodecError, Decoder, Encoder, StrTable};
pub use index::{Hit, Index, IndexStats, SearchResult};
pub use lang::detect as detect_lang;
pub use text::{words, Analyzer};
