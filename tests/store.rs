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

/// A large store (over `RESIDENT_FACTS` facts) saves its search index at
/// import; the next start loads it; a damaged index file is rebuilt and
/// answers stay the same; a changed dataset makes it stale.
#[test]
fn a_large_store_keeps_its_index_across_starts_and_rebuilds_a_damaged_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store");
    let ds = dir.path().join("dataset");
    let n = factbot::answer::RESIDENT_FACTS + 500;
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
    let index = db.join(factbot::answer::CATALOG_FILE);
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
