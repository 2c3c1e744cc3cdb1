//! Files only the bot can read.
//!
//! The store directory holds the bot's secrets (the Matrix session with its
//! access token, the end-to-end encryption keys) and its users' data (chat
//! settings, subscriptions, questions waiting in the inboxes, the console
//! history). So it is made `0700` and everything in it `0600` (`0700` for
//! directories): at creation — `factbot` runs with umask `077`, and the
//! store directory is created `0700` whatever the umask — and at every open,
//! where anything looser (a store made by an older version, copied or
//! restored with default modes) is tightened and reported, so the operator
//! learns that it was exposed. Symbolic links are neither followed nor
//! changed. Other platforms than Unix keep their own access control.

use std::path::{Path, PathBuf};

/// Mode bits of the group and of others: none may be set.
#[cfg(unix)]
const OTHERS: u32 = 0o077;

/// Creates `dir` (and missing parents) readable by the owner only.
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

/// Takes every permission of group and others off `root` and everything
/// under it; returns what was looser (and could be fixed), and logs what
/// could not be fixed.
pub fn tighten(root: &Path) -> Vec<PathBuf> {
    let mut fixed = Vec::new();
    #[cfg(unix)]
    tighten_unix(root, &mut fixed, 0);
    #[cfg(not(unix))]
    let _ = root;
    fixed
}

/// Whether `path` can be read or written by anyone but its owner.
pub fn is_loose(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::symlink_metadata(path)
            .map(|m| !m.file_type().is_symlink() && m.permissions().mode() & OTHERS != 0)
            .unwrap_or(false)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

#[cfg(unix)]
fn tighten_unix(path: &Path, fixed: &mut Vec<PathBuf>, depth: usize) {
    use std::os::unix::fs::PermissionsExt;
    // The store is a few levels deep (matrix/sdk/…); a cycle is impossible
    // without symlinks, which are skipped — the limit is only a guard.
    if depth > 16 {
        return;
    }
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if meta.file_type().is_symlink() {
        return;
    }
    let mode = meta.permissions().mode();
    if mode & OTHERS != 0 {
        let tight = std::fs::Permissions::from_mode(mode & 0o7700 & !OTHERS);
        match std::fs::set_permissions(path, tight) {
            Ok(()) => fixed.push(path.to_path_buf()),
            Err(e) => tracing::error!(
                path = %path.display(),
                error = %e,
                "store: cannot make this private; others may read it"
            ),
        }
    }
    if meta.is_dir() {
        if let Ok(entries) = std::fs::read_dir(path) {
            for e in entries.flatten() {
                tighten_unix(&e.path(), fixed, depth + 1);
            }
        }
    }
}

/// Logs what [`tighten`] fixed, naming the store and a few of the paths.
pub fn report(store: &Path, fixed: &[PathBuf]) {
    if fixed.is_empty() {
        return;
    }
    let shown: Vec<String> = fixed
        .iter()
        .take(5)
        .map(|p| p.display().to_string())
        .collect();
    tracing::warn!(
        store = %store.display(),
        count = fixed.len(),
        examples = %shown.join(", "),
        "store: files and directories were readable by others; made private to this user (0600 files, 0700 directories)"
    );
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_loose_tree_is_tightened_and_links_are_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("store");
        create_dir(&root.join("matrix/sdk")).unwrap();
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&root.join("matrix/sdk")), 0o700);
        let file = root.join("matrix/session.json");
        std::fs::write(&file, "{}").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let outside = tmp.path().join("outside.txt");
        std::fs::write(&outside, "x").unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        assert!(is_loose(&root) && is_loose(&file));

        let fixed = tighten(&root);
        assert_eq!(fixed.len(), 2, "{fixed:?}");
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&outside), 0o644, "a link's target is not touched");
        assert!(tighten(&root).is_empty(), "nothing left to fix");
    }
}
