//! The fact store through the real binary: idempotent import, change log,
//! restart persistence, and crash safety of an import killed mid-way.

mod common;

use std::process::{Command, Stdio};
use std::time::Instant;

use common::{copy_dataset, factbot, stderr, stdout, BIN};
use factbot::facts::{synthetic, Dataset, Store};

#[test]
fn import_is_idempotent_and_logs_only_real_changes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let ds = copy_dataset(dir.path());
    let ds_arg = ds.to_str().unwrap();

    let o = factbot(&db, &["import", ds_arg]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("49 added"), "{}", stdout(&o));
    let o = factbot(&db, &["import", ds_arg]);
    assert!(stdout(&o).contains("nothing to import"), "{}", stdout(&o));

    // Change one fact's text, remove another.
    let facts = std::fs::read_to_string(ds.join("facts.toml")).unwrap();
    let edited = facts.replacen(
        "amounted to USD 769 million in 2011.\"",
        "amounted to USD 770 million in 2011.\"",
        1,
    );
    assert_ne!(edited, facts, "the edit must apply");
    let start = edited.find("[[fact]]\nid = \"visit.delegation\"").unwrap();
    let end = start + 1 + edited[start + 1..].find("[[fact]]").unwrap();
    let edited = format!("{}{}", &edited[..start], &edited[end..]);
    std::fs::write(ds.join("facts.toml"), edited).unwrap();

    let o = factbot(&db, &["import", ds_arg]);
    assert!(
        stdout(&o).contains("0 added, 1 updated, 1 removed, 47 unchanged"),
        "{}",
        stdout(&o)
    );

    // The change log holds exactly those two changes (the seed is not news).
    let store = Store::open(&db).unwrap();
    let changes = store.changes_since(0).unwrap();
    assert_eq!(changes.len(), 2, "{changes:?}");
    let upd = changes.iter().find(|c| c.fact_id == "trade.2011").unwrap();
    assert!(upd.old.as_ref().unwrap().text.en.contains("769"));
    assert!(upd.new.as_ref().unwrap().text.en.contains("770"));
    let del = changes
        .iter()
        .find(|c| c.fact_id == "visit.delegation")
        .unwrap();
    assert!(del.old.is_some() && del.new.is_none());
    assert!(changes[0].seq < changes[1].seq);
    drop(store);

    // A restart answers from the stored, edited dataset…
    let o = factbot(&db, &["ask", "trade turnover in 2011"]);
    assert!(stdout(&o).contains("USD 770 million"), "{}", stdout(&o));
    // …and re-imports the same directory when it changes again.
    let facts = std::fs::read_to_string(ds.join("facts.toml")).unwrap();
    std::fs::write(
        ds.join("facts.toml"),
        facts.replace("USD 770 million in 2011.\"", "USD 771 million in 2011.\""),
    )
    .unwrap();
    let o = factbot(&db, &["ask", "trade turnover in 2011"]);
    assert!(stdout(&o).contains("USD 771 million"), "{}", stdout(&o));
    let o = factbot(&db, &["check"]);
    assert!(stdout(&o).starts_with("ok: 48 facts"), "{}", stdout(&o));
}

#[test]
fn an_invalid_dataset_is_refused_and_the_store_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let ds = copy_dataset(dir.path());
    assert!(factbot(&db, &["import", ds.to_str().unwrap()])
        .status
        .success());
    let facts = std::fs::read_to_string(ds.join("facts.toml")).unwrap();
    std::fs::write(
        ds.join("facts.toml"),
        facts.replace("USD 769 million in 2011", "USD 1 billion in 2011"),
    )
    .unwrap();
    let o = factbot(&db, &["import", ds.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("does not occur verbatim"),
        "{}",
        stderr(&o)
    );
    let o = factbot(&db, &["check"]);
    assert!(stdout(&o).starts_with("ok: 49 facts"), "{}", stdout(&o));
}

/// Writes a synthetic dataset of `n` facts to `dir`.
fn write_synthetic(dir: &std::path::Path, n: usize, salt: u64) -> Dataset {
    std::fs::create_dir_all(dir).unwrap();
    let ds = synthetic::generate(n, salt);
    std::fs::write(dir.join("facts.toml"), synthetic::to_toml(&ds)).unwrap();
    std::fs::write(dir.join("article.txt"), &ds.article).unwrap();
    std::fs::write(dir.join("synonyms.toml"), "").unwrap();
    Dataset::from_dir(dir).unwrap()
}

#[test]
fn an_import_killed_at_any_moment_leaves_the_old_or_the_new_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let old = write_synthetic(&dir.path().join("old"), 2_000, 1);
    let new = write_synthetic(&dir.path().join("new"), 2_000, 2);
    let db = dir.path().join("db");
    let o = factbot(&db, &["import", dir.path().join("old").to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));

    // How long importing the new dataset over the old one takes, to aim the kills.
    let probe = dir.path().join("probe");
    assert!(factbot(
        &probe,
        &["import", dir.path().join("old").to_str().unwrap()]
    )
    .status
    .success());
    let t = Instant::now();
    assert!(factbot(
        &probe,
        &["import", dir.path().join("new").to_str().unwrap()]
    )
    .status
    .success());
    let full = t.elapsed();

    let (mut saw_old, mut saw_new) = (0, 0);
    for i in 0..=10u32 {
        let mut child = Command::new(BIN)
            .args(["import", dir.path().join("new").to_str().unwrap(), "--db"])
            .arg(&db)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Spread the kills from start-up to just past the commit.
        std::thread::sleep(full.mul_f64(f64::from(i) / 9.0));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();

        let store = Store::open(&db).unwrap();
        store.verify().expect("consistent after kill");
        let digest = store.dataset_digest().unwrap();
        let facts = store.facts().unwrap();
        let landed = digest.as_deref() == Some(new.digest.as_str());
        let expected = if landed {
            saw_new += 1;
            &new
        } else {
            assert_eq!(
                digest.as_deref(),
                Some(old.digest.as_str()),
                "digest is old or new"
            );
            saw_old += 1;
            &old
        };
        assert_eq!(
            facts.len(),
            expected.facts.len(),
            "kill {i}: a mix of datasets"
        );
        for (a, b) in facts.iter().zip(&expected.facts) {
            assert_eq!(
                a, b,
                "kill {i}: fact differs from the dataset its digest names"
            );
        }
        drop(store);
        if landed {
            // Put the old dataset back so later kills can interrupt again.
            let o = factbot(&db, &["import", dir.path().join("old").to_str().unwrap()]);
            assert!(o.status.success());
        }
    }
    eprintln!(
        "kills that left the old dataset: {saw_old}, the new one: {saw_new}; full import {full:?}"
    );
    assert!(saw_old > 0, "at least one kill must land before the commit");
}

/// A dataset directory without `synonyms.toml` is refused rather than read
/// as "no synonyms" (which silently changed answers).
#[test]
fn a_dataset_without_synonyms_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let ds = copy_dataset(dir.path());
    assert!(factbot(&db, &["import", ds.to_str().unwrap()])
        .status
        .success());
    std::fs::remove_file(ds.join("synonyms.toml")).unwrap();
    let o = factbot(&db, &["import", ds.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(stderr(&o).contains("no synonyms.toml"), "{}", stderr(&o));
    let store = Store::open(&db).unwrap();
    assert!(!store.synonyms().unwrap().is_empty(), "synonyms kept");
}

/// `facts.toml` cut off after its first `keep` facts (still valid TOML).
fn truncate_facts(ds: &std::path::Path, keep: usize) {
    let text = std::fs::read_to_string(ds.join("facts.toml")).unwrap();
    let cut = text
        .match_indices("[[fact]]")
        .nth(keep)
        .map(|(i, _)| i)
        .unwrap();
    std::fs::write(ds.join("facts.toml"), &text[..cut]).unwrap();
}

/// A truncated or empty `facts.toml` is refused by `factbot import`, by
/// the automatic import at start (`run` stops; one-shot commands keep the
/// stored facts and say why) — the store untouched — unless the operator
/// passes `--allow-removals`.
#[test]
fn a_truncated_dataset_is_refused_unless_removals_are_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let ds = copy_dataset(dir.path());
    let ds_arg = ds.to_str().unwrap();
    assert!(factbot(&db, &["import", ds_arg]).status.success());
    truncate_facts(&ds, 7);

    let o = factbot(&db, &["import", ds_arg]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains("would remove 42 of the 49 stored facts") && err.contains("--allow-removals"),
        "{err}"
    );
    // The store's dataset directory changed: a start imports it — refused.
    let o = factbot(&db, &["ask", "trade turnover in 2011"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("USD 769 million"), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("answering from the facts already stored"),
        "{}",
        stderr(&o)
    );
    let cfg = dir.path().join("bot.toml");
    std::fs::write(
        &cfg,
        format!(
            "[store]\npath = \"db\"\ndataset = \"{ds_arg}\"\n[telegram]\ntoken = \"1:x\"\napi_url = \"http://127.0.0.1:9/\"\n"
        ),
    )
    .unwrap();
    let o = Command::new(BIN)
        .args(["run", "--config", cfg.to_str().unwrap()])
        .env_remove("FACTBOT_CONFIG")
        .env_remove("TELOXIDE_TOKEN")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("import refused"), "{}", stderr(&o));
    // An empty facts.toml too.
    std::fs::write(ds.join("facts.toml"), "").unwrap();
    let o = factbot(&db, &["import", ds_arg]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("holds no facts"), "{}", stderr(&o));

    let store = Store::open(&db).unwrap();
    assert_eq!(store.fact_count(), 49);
    assert!(store.changes_since(0).unwrap().is_empty(), "nothing logged");
    drop(store);

    // The operator means it.
    copy_dataset(dir.path());
    truncate_facts(&ds, 7);
    let o = factbot(&db, &["import", "--allow-removals", ds_arg]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("42 removed"), "{}", stdout(&o));
    let o = factbot(&db, &["check"]);
    assert!(stdout(&o).starts_with("ok: 7 facts"), "{}", stdout(&o));
}

/// Every file and directory under `dir` that others could read or write.
#[cfg(unix)]
fn loose_paths(dir: &std::path::Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(p) = todo.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        if m.permissions().mode() & 0o077 != 0 {
            out.push(format!("{} {:o}", p.display(), m.permissions().mode()));
        }
        if m.is_dir() {
            todo.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
    out
}

/// The store directory is created 0700 and its files 0600 (sled's, the
/// console history); a store with looser modes (an older version's, a
/// copy) is tightened at the next open, with a warning.
#[cfg(unix)]
#[test]
fn the_store_is_private_to_its_user() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let o = factbot(&db, &["ask", "trade in 2011"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut child = Command::new(BIN)
        .arg("--db")
        .arg(&db)
        .env_remove("FACTBOT_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    assert!(db.join("db").is_dir());
    assert_eq!(loose_paths(&db), Vec::<String>::new());
    assert!(!stderr(&o).contains("readable by others"), "{}", stderr(&o));

    // Loosened as an older version or a careless copy would leave it.
    let mut todo = vec![db.clone()];
    while let Some(p) = todo.pop() {
        let loose = if p.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(loose)).unwrap();
        if p.is_dir() {
            todo.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
    std::fs::write(db.join("console_history.txt"), "/trade\n").unwrap();
    std::fs::set_permissions(
        db.join("console_history.txt"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    assert!(!loose_paths(&db).is_empty());
    let o = factbot(&db, &["ask", "trade in 2011"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("readable by others"), "{}", stderr(&o));
    assert_eq!(loose_paths(&db), Vec::<String>::new());
}

/// A large store (over `RESIDENT_FACTS` facts) saves its search index at
/// import; the next start loads it; a damaged index file is rebuilt and
/// answers stay the same; a changed dataset makes it stale.
#[test]
fn a_large_store_keeps_its_index_across_starts_and_rebuilds_a_damaged_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store");
    let ds = dir.path().join("dataset");
    let n = factbot::catalog::RESIDENT_FACTS + 500;
    let o = factbot(
        &db,
        &[
            "import",
            "--synthetic",
            &n.to_string(),
            ds.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("imported {n} facts")),
        "{}",
        stdout(&o)
    );
    let index = db.join(factbot::catalog::CATALOG_FILE);
    let saved = std::fs::read(&index).expect("the import saved the index");

    let ask = |args: &[&str]| {
        let mut a = vec!["ask", "--format", "json"];
        a.extend_from_slice(args);
        let mut c = Command::new(BIN);
        c.args(&a)
            .arg("--db")
            .arg(&db)
            .env_remove("FACTBOT_CONFIG")
            .env("RUST_LOG", "factbot=info");
        c.output().unwrap()
    };
    let q = "How much was trade between Belarus and Kazakhstan in 2011?";
    let first = ask(&[q]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        !stderr(&first).contains("building the search index"),
        "loaded, not rebuilt: {}",
        stderr(&first)
    );
    assert!(stdout(&first).contains("\"facts\""), "{}", stdout(&first));

    // Damaged: rebuilt, same answer, file rewritten.
    let mut bad = saved.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x55;
    std::fs::write(&index, &bad).unwrap();
    let again = ask(&[q]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stderr(&again).contains("unreadable"), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("building the search index"),
        "{}",
        stderr(&again)
    );
    assert_eq!(stdout(&again), stdout(&first));
    assert_eq!(std::fs::read(&index).unwrap(), saved);

    // Truncated: the same.
    std::fs::write(&index, &saved[..saved.len() / 3]).unwrap();
    let again = ask(&[q]);
    assert_eq!(stdout(&again), stdout(&first));
    assert_eq!(std::fs::read(&index).unwrap(), saved);

    // The dataset changes: the saved index is stale and rebuilt.
    let facts = ds.join("facts.toml");
    let text = std::fs::read_to_string(&facts).unwrap();
    std::fs::write(&facts, text.replacen("syn.0\"", "syn.renamed\"", 1)).unwrap();
    let changed = ask(&[q]);
    assert!(changed.status.success(), "{}", stderr(&changed));
    assert!(
        stderr(&changed).contains("another dataset"),
        "{}",
        stderr(&changed)
    );
    assert_ne!(std::fs::read(&index).unwrap(), saved);
}
