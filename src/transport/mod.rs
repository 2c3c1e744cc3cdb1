//! Transports: adapters between a chat platform and the answering app.
//!
//! Each turns a platform event into an [`answer::Request`](crate::answer::Request)
//! and the app's [`Reply`](crate::reply::Reply) into the platform's format.
//! Platform crates (teloxide, matrix-sdk) may appear only below this module.

//! Each chat platform is a Cargo feature (`telegram`, `matrix`, both on by
//! default); the console is always there.

pub mod console;
pub mod inbox;
#[cfg(feature = "matrix")]
pub mod matrix;
pub mod media;
#[cfg(feature = "telegram")]
pub mod telegram;

/// The transports a config section may ask for, with whether this build
/// has each compiled in.
pub const COMPILED: &[(&str, bool)] = &[
    ("telegram", cfg!(feature = "telegram")),
    ("matrix", cfg!(feature = "matrix")),
];

/// The error for config sections whose transport this build lacks: the
/// section names that are set (`telegram`, `matrix`) and not compiled in.
/// `None` when every configured transport is available.
pub fn missing(configured: &[&str]) -> Option<String> {
    let missing: Vec<&str> = configured
        .iter()
        .copied()
        .filter(|name| COMPILED.iter().any(|&(n, on)| n == *name && !on))
        .collect();
    if missing.is_empty() {
        return None;
    }
    let sections: Vec<String> = missing.iter().map(|n| format!("[{n}]")).collect();
    let features = missing.join(",");
    Some(format!(
        "the config has a {} section, but this factbot was built without the {} feature{}; rebuild with `cargo build --release --features {features}` or remove the section",
        sections.join(" and a "),
        missing.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(" and "),
        if missing.len() > 1 { "s" } else { "" },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_transport_that_is_not_compiled_in_is_named_with_its_feature() {
        assert_eq!(missing(&[]), None);
        for &(name, on) in COMPILED {
            let err = missing(&[name]);
            assert_eq!(err.is_none(), on, "{name}: {err:?}");
            if let Some(e) = err {
                assert!(e.contains(&format!("[{name}] section")), "{e}");
                assert!(e.contains(&format!("`{name}` feature")), "{e}");
                assert!(e.contains(&format!("--features {name}")), "{e}");
            }
        }
    }
}
