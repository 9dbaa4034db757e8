//! [`Secret`]: a password, token or control secret that cannot be printed by accident.
//!
//! `Debug` shows `***` and there is no `Display`, so a secret reaches a log line, an error
//! message or a served body only through [`Secret::expose`], which is greppable. Every
//! password, token and secret the configuration holds is one of these; so is every copy a
//! transport keeps. `config::mask` is how `/stats` shows one (a fixed mask).

use std::fmt;

/// A secret string. Compare with [`Secret::matches`]; read with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself, for the one place that sends it (a login, an auth header).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of characters (not bytes).
    pub fn chars(&self) -> usize {
        self.0.chars().count()
    }

    /// True when `candidate` is this secret; the time taken does not depend on where they differ.
    pub fn matches(&self, candidate: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), candidate.as_bytes());
        let mut diff = u8::from(a.len() != b.len());
        for i in 0..a.len().max(b.len()) {
            diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
        }
        diff == 0
    }

    /// The last `n` characters (all of them when shorter), like Python's `s[-n:]`.
    pub fn last_chars(&self, n: usize) -> Secret {
        if n == 0 {
            return Secret::default();
        }
        let s = self.0.as_str();
        let start = s.char_indices().rev().nth(n - 1).map_or(0, |(i, _)| i);
        Secret(s[start..].to_string())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret(s.to_string())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_and_chars_counts_characters() {
        let s = Secret::new("ABCDEFGHIJ");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(***)");
        assert_eq!(s.chars(), 10);
        assert_eq!(Secret::new("ÄÖ").chars(), 2);
    }

    #[test]
    fn last_chars_is_pythons_negative_slice() {
        let t = |s: &str, n| Secret::new(s).last_chars(n).expose().to_string();
        assert_eq!(t("ABCDEFGHIJ", 5), "FGHIJ");
        assert_eq!(t("ABCDE", 5), "ABCDE");
        assert_eq!(t("ÄBC", 5), "ÄBC");
        assert_eq!(t("xxÄbcde", 5), "Äbcde");
        assert_eq!(t("", 5), "");
    }

    #[test]
    fn matches_compares_whole_strings() {
        let s = Secret::new("token-1");
        assert!(s.matches("token-1"));
        assert!(!s.matches("token-"));
        assert!(!s.matches("token-12"));
        assert!(!s.matches(""));
        assert!(Secret::new("").matches(""));
    }
}
