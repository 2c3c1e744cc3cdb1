//! `factbot facts` (the stored facts, as a table or JSON) and `factbot
//! check` (the store's consistency, its schema and dataset).

use super::{Context, Failure, Format};
use crate::app::{open_app, Removals};
use crate::facts::{Store, SCHEMA_VERSION};

// No `///` here: the `facts` variant's doc comment in main.rs is the help.
#[derive(clap::Args)]
pub struct Args {
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `factbot facts [--format json]`.
pub fn list(ctx: &Context, args: Args) -> Result<(), Failure> {
    // Like every start, bring the store up to date first (a new
    // store is seeded), then list what it holds.
    let (app, _) = open_app(&ctx.cfg, &ctx.db, Removals::KeepStored)?;
    let facts = app.store().facts()?;
    match args.format {
        Format::Text => {
            let w = facts.iter().map(|f| f.id.len()).max().unwrap_or(0);
            for f in &facts {
                let mark = if f.is_derived() { " (derived)" } else { "" };
                outln!("{:w$}  {:10}  {}{mark}", f.id, f.topic.name(), f.title.en)?;
            }
        }
        Format::Json => outln!("{}", serde_json::to_string_pretty(&facts)?)?,
    }
    Ok(())
}

/// `factbot check`: verifies every stored fact, then names the schema and
/// the dataset the store holds.
pub fn check(ctx: &Context) -> Result<(), Failure> {
    let store = Store::open(&ctx.db)?;
    let n = store.verify()?;
    outln!(
        "ok: {n} facts, schema {SCHEMA_VERSION}, dataset {} ({})",
        store.dataset_digest()?.unwrap_or_else(|| "none".into()),
        store
            .dataset_origin()?
            .map(|o| o.to_meta())
            .unwrap_or_else(|| "none".into())
    )?;
    Ok(())
}
