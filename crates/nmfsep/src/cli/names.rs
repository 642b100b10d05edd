//! Names that become output file names (`--source NAME=...`, `--group NAME=...`): the rule,
//! in one place.
//!
//! A name is accepted when `NAME.wav` is a valid file name on Linux, macOS and Windows alike,
//! so a command line and its outputs move between them. Following Microsoft's "Naming Files,
//! Paths, and Namespaces" (Win32 file naming conventions), the strictest of the three, a
//! name is refused when it
//! - is empty, `.` or `..`;
//! - contains `/`, `\`, `:`, `*`, `?`, `"`, `<`, `>`, `|` or a control character (U+0000 to
//!   U+001F, U+007F to U+009F);
//! - ends in a dot or a space;
//! - is a reserved device name of Windows before its first dot, in any case: `CON`, `PRN`,
//!   `AUX`, `NUL`, `COM0`..`COM9`, `LPT0`..`LPT9` (and the superscript-digit forms);
//! - is longer than 251 bytes of UTF-8 (255 with `.wav`, the limit of ext4, APFS and NTFS).
//!
//! Anything else works: `note2_D#4`, `Bass (DI)`, `voix-é`, `.hidden`. Two names that differ
//! only in letter case are the same file on macOS and Windows: see [`same_file_name`].

use anyhow::{bail, Result};

/// Characters no file name may hold on one of the three systems.
const FORBIDDEN: [char; 9] = ['/', '\\', ':', '*', '?', '"', '<', '>', '|'];

/// Windows device names, reserved with or without an extension.
fn is_reserved_windows(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or("").trim_end_matches(' ');
    let upper = stem.to_uppercase();
    if matches!(upper.as_str(), "CON" | "PRN" | "AUX" | "NUL") {
        return true;
    }
    let mut chars = upper.chars();
    let prefix: String = chars.by_ref().take(3).collect();
    let rest: Vec<char> = chars.collect();
    (prefix == "COM" || prefix == "LPT")
        && rest.len() == 1
        && (rest[0].is_ascii_digit() || matches!(rest[0], '¹' | '²' | '³'))
}

/// Longest name, bytes of UTF-8, leaving room for `.wav` in 255.
pub const MAX_NAME_BYTES: usize = 251;

/// Errors unless `name` is a portable output file name (the rules of the module
/// documentation); `what` names the argument in the message ("source", "group").
///
/// # Errors
/// One line saying which rule the name breaks.
pub fn check_output_name(name: &str, what: &str) -> Result<()> {
    let why = if name.is_empty() {
        Some("is empty".to_string())
    } else if name == "." || name == ".." {
        Some("is a folder name".to_string())
    } else if let Some(c) = name.chars().find(|c| FORBIDDEN.contains(c)) {
        Some(format!("contains {c:?}"))
    } else if let Some(c) = name.chars().find(|c| c.is_control()) {
        Some(format!("contains the control character {c:?}"))
    } else if name.ends_with('.') || name.ends_with(' ') {
        Some("ends in a dot or a space".to_string())
    } else if is_reserved_windows(name) {
        Some("is a reserved device name on Windows".to_string())
    } else if name.len() > MAX_NAME_BYTES {
        Some(format!("is longer than {MAX_NAME_BYTES} bytes"))
    } else {
        None
    };
    if let Some(why) = why {
        bail!(
            "{what} name {name:?} {why}: it must make a file name valid on Linux, macOS and Windows (no / \\ : * ? \" < > |, control characters, trailing dot or space, or names like CON or NUL)"
        );
    }
    Ok(())
}

/// True if `a` and `b` name the same file on a case-insensitive file system (macOS and
/// Windows by default).
pub fn same_file_name(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portable_names() {
        for ok in [
            "note2_D#4",
            "piano",
            "Bass (DI)",
            "voix-é",
            ".hidden",
            "a.b",
            "CONSOLE",
            "COM10",
            "my con",
            "x=y",
        ] {
            assert!(check_output_name(ok, "source").is_ok(), "{ok:?}");
        }
        for bad in [
            "", ".", "..", "a/b", "a\\b", "a:b", "a*", "a?", "a\"b", "<a", "a>", "a|b", "a\tb",
            "a\u{7f}", "a.", "a ", "CON", "con", "Nul.txt", "COM1", "lpt9", "COM¹", "AUX .x",
        ] {
            assert!(check_output_name(bad, "source").is_err(), "{bad:?}");
        }
        assert!(check_output_name(&"a".repeat(251), "source").is_ok());
        assert!(check_output_name(&"a".repeat(252), "source").is_err());
        assert!(same_file_name("Piano", "piano"));
        assert!(!same_file_name("piano", "bass"));
    }
}
