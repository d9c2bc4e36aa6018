//! Regexes compiled on first use.
//!
//! The embedded rule set holds hundreds of regexes; compiling them all took about a third
//! of start-up, and on most evidence most of them never run (their rule's log source is
//! absent, or their literal triggers never hit).

use std::sync::{Arc, OnceLock};

use regex::Regex;

/// A regex that is checked when it is made and compiled when it first runs. Clones share
/// the compiled form.
#[derive(Clone)]
pub struct LazyRegex(Arc<Inner>);

struct Inner {
    text: Box<str>,
    compiled: OnceLock<Regex>,
}

impl LazyRegex {
    /// Compiles `text` now, so that a rule with a regex the engine cannot run is refused
    /// when it is loaded.
    pub fn new(text: &str) -> Result<LazyRegex, regex::Error> {
        let re = Regex::new(text)?;
        Ok(LazyRegex(Arc::new(Inner {
            text: text.into(),
            compiled: OnceLock::from(re),
        })))
    }

    /// Checks the syntax of `text` only, and defers compiling. For regexes that were
    /// compiled once already by [`LazyRegex::new`] (the embedded rule set, checked at build
    /// time by the same regex crate), so compiling later cannot fail.
    pub fn deferred(text: &str) -> Result<LazyRegex, regex::Error> {
        regex_syntax::Parser::new()
            .parse(text)
            .map_err(|e| regex::Error::Syntax(e.to_string()))?;
        Ok(LazyRegex(Arc::new(Inner {
            text: text.into(),
            compiled: OnceLock::new(),
        })))
    }

    pub fn as_str(&self) -> &str {
        &self.0.text
    }

    pub fn is_match(&self, haystack: &str) -> bool {
        self.compiled().is_some_and(|re| re.is_match(haystack))
    }

    /// The compiled regex; `None` only if a deferred regex failed to compile (a size
    /// limit), which [`LazyRegex::deferred`]'s contract rules out.
    fn compiled(&self) -> Option<&Regex> {
        if let Some(re) = self.0.compiled.get() {
            return Some(re);
        }
        let re = Regex::new(&self.0.text).ok()?;
        Some(self.0.compiled.get_or_init(|| re))
    }
}

impl std::fmt::Debug for LazyRegex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "/{}/", self.0.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deferred_regexes_match_as_compiled_ones_do() {
        let now = LazyRegex::new(r"(?i)\\rundll32\.exe\s+\S+,#\d+").unwrap();
        let later = LazyRegex::deferred(now.as_str()).unwrap();
        for text in [
            r"C:\Windows\RUNDLL32.EXE  x.dll,#12",
            r"C:\rundll32.exe x.dll",
        ] {
            assert_eq!(now.is_match(text), later.is_match(text), "{text}");
        }
        assert!(later.is_match(r"c:\rundll32.exe a,#1"));
        let clone = later.clone();
        assert!(
            Arc::ptr_eq(&clone.0, &later.0),
            "clones share one compiled form"
        );
    }

    #[test]
    fn bad_syntax_is_refused_either_way() {
        assert!(LazyRegex::new("a(b").is_err());
        assert!(LazyRegex::deferred("a(b").is_err());
    }
}
