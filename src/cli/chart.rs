//! `factbot chart`: one chart rendered from the store's facts and written
//! as a PNG, to a file (written beside it and renamed, so a reader never
//! sees half a PNG) or to standard output.

use std::path::{Path, PathBuf};

use super::{usage, Context, Failure};
use crate::app::{open_app, Removals};
use crate::chart::{ChartKind, Png};

// No `///` here: the `chart` variant's doc comment in main.rs is the help.
#[derive(clap::Args)]
pub struct Args {
    /// Which chart: trade, milestones or investment (Russian names too).
    pub name: String,
    /// Where to write the PNG (`-` for standard output); default
    /// NAME-LANG.png in the current directory.
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Label language: en or ru.
    #[arg(long, default_value = "en")]
    pub lang: String,
}

/// `factbot chart NAME [--out FILE] [--lang ru]`.
pub fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let kind = ChartKind::parse(&args.name).ok_or_else(|| {
        usage(format!(
            "unknown chart {:?}; the charts are {}",
            args.name,
            chart_names()
        ))
    })?;
    let lang = super::ask::parse_lang(&args.lang)?;
    let (app, _) = open_app(&ctx.cfg, &ctx.db, Removals::KeepStored)?;
    let png = app.engine().chart_png(kind, lang)?;
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(png.key.file_name()));
    if out.as_os_str() == "-" {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(&png.bytes)?;
        stdout.flush()?;
        return Ok(());
    }
    write_file(&out, &png)?;
    outln!(
        "{}: {}×{} PNG, {} KB, chart {}",
        out.display(),
        png.width,
        png.height,
        png.bytes.len().div_ceil(1024),
        png.key
    )?;
    Ok(())
}

/// "trade, milestones, investment".
fn chart_names() -> String {
    ChartKind::ALL
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Written beside the target and renamed: a reader never sees half a PNG.
fn write_file(out: &Path, png: &Png) -> Result<(), Failure> {
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file = out
        .file_name()
        .ok_or_else(|| usage(format!("{} is not a file name", out.display())))?;
    let tmp = dir.join(format!(".{}.tmp", file.to_string_lossy()));
    std::fs::write(&tmp, &png.bytes)
        .and_then(|()| std::fs::rename(&tmp, out))
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
    Ok(())
}
