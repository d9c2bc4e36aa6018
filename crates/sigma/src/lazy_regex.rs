//! Regexes compiled on first use, with PCRE's ASCII classes.
//!
//! The embedded rule set holds hundreds of regexes; compiling them all took about a third
//! of start-up, and on most evidence most of them never run (their rule's log source is
//! absent, or their literal triggers never hit).
//!
//! Sigma's regex flavour is PCRE, where `\d`, `\w` and `\s` are ASCII classes. In Rust's
//! regex crate they are Unicode classes, far larger to compile: SigmaHQ's `-k\s\w{1,64}`
//! alone took 3.5 MB. So they are rewritten to the ASCII classes PCRE means before compiling.

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
        let text = pcre_classes(text)?;
        let re = Regex::new(&text)?;
        Ok(LazyRegex(Arc::new(Inner {
            text: text.into(),
            compiled: OnceLock::from(re),
        })))
    }

    /// Checks the syntax of `text` only, and defers compiling. For regexes that were
    /// compiled once already by [`LazyRegex::new`] (the embedded rule set, checked at build
    /// time by the same regex crate), so compiling later cannot fail.
    pub fn deferred(text: &str) -> Result<LazyRegex, regex::Error> {
        let text = pcre_classes(text)?;
        regex_syntax::Parser::new()
            .parse(&text)
            .map_err(|e| regex::Error::Syntax(e.to_string()))?;
        Ok(LazyRegex(Arc::new(Inner {
            text: text.into(),
            compiled: OnceLock::new(),
        })))
    }

    /// The regex as compiled: as written, with PCRE's ASCII classes spelled out.
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
        // Two threads may both compile it the first time; one result is kept.
        let re = Regex::new(&self.0.text).ok()?;
        Some(self.0.compiled.get_or_init(|| re))
    }
}

/// `text` with every `\d`, `\w`, `\s` (and negation), inside brackets or not, replaced by
/// the ASCII class of the same name (`[[:digit:]]`, `[[:word:]]`, `[[:space:]]`), which is
/// what they mean in PCRE. Everything else is printed back as it was parsed.
fn pcre_classes(text: &str) -> Result<String, regex::Error> {
    use regex_syntax::ast::{self, Ast};
    let syntax = |e: &dyn std::fmt::Display| regex::Error::Syntax(e.to_string());
    let mut tree = ast::parse::Parser::new()
        .parse(text)
        .map_err(|e| syntax(&e))?;
    if !has_perl_class(&tree) {
        return Ok(text.to_string());
    }
    fn ascii(p: &ast::ClassPerl) -> ast::ClassAscii {
        let kind = match p.kind {
            ast::ClassPerlKind::Digit => ast::ClassAsciiKind::Digit,
            ast::ClassPerlKind::Space => ast::ClassAsciiKind::Space,
            ast::ClassPerlKind::Word => ast::ClassAsciiKind::Word,
        };
        ast::ClassAscii {
            span: p.span,
            kind,
            negated: p.negated,
        }
    }
    fn in_set(set: &mut ast::ClassSet) {
        match set {
            ast::ClassSet::Item(item) => in_item(item),
            ast::ClassSet::BinaryOp(op) => {
                in_set(&mut op.lhs);
                in_set(&mut op.rhs);
            }
        }
    }
    fn in_item(item: &mut ast::ClassSetItem) {
        match item {
            ast::ClassSetItem::Perl(p) => *item = ast::ClassSetItem::Ascii(ascii(p)),
            ast::ClassSetItem::Bracketed(b) => in_set(&mut b.kind),
            ast::ClassSetItem::Union(u) => u.items.iter_mut().for_each(in_item),
            _ => {}
        }
    }
    fn walk(node: &mut Ast) {
        match node {
            Ast::ClassPerl(p) => {
                *node = Ast::ClassBracketed(Box::new(ast::ClassBracketed {
                    span: p.span,
                    negated: false,
                    kind: ast::ClassSet::Item(ast::ClassSetItem::Ascii(ascii(p))),
                }))
            }
            Ast::ClassBracketed(b) => in_set(&mut b.kind),
            Ast::Repetition(r) => walk(&mut r.ast),
            Ast::Group(g) => walk(&mut g.ast),
            Ast::Alternation(a) => a.asts.iter_mut().for_each(walk),
            Ast::Concat(c) => c.asts.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut tree);
    let mut out = String::with_capacity(text.len() + 16);
    ast::print::Printer::new()
        .print(&tree, &mut out)
        .map_err(|e| syntax(&e))?;
    Ok(out)
}

fn has_perl_class(node: &regex_syntax::ast::Ast) -> bool {
    let mut found = false;
    // The visitor walks the tree without recursion, classes included.
    struct Find<'a>(&'a mut bool);
    impl regex_syntax::ast::Visitor for Find<'_> {
        type Output = ();
        type Err = ();
        fn finish(self) -> Result<(), ()> {
            Ok(())
        }
        fn visit_pre(&mut self, ast: &regex_syntax::ast::Ast) -> Result<(), ()> {
            *self.0 |= matches!(ast, regex_syntax::ast::Ast::ClassPerl(_));
            Ok(())
        }
        fn visit_class_set_item_pre(
            &mut self,
            item: &regex_syntax::ast::ClassSetItem,
        ) -> Result<(), ()> {
            *self.0 |= matches!(item, regex_syntax::ast::ClassSetItem::Perl(_));
            Ok(())
        }
    }
    let _ = regex_syntax::ast::visit(node, Find(&mut found));
    found
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
    fn perl_classes_mean_what_they_mean_in_pcre() {
        let cases = [
            (r"-k\s\w{1,64}", r"-k[[:space:]][[:word:]]{1,64}"),
            (r"[\w.-]+@\D", r"[[:word:].-]+@[[:^digit:]]"),
            (r"(?i)a\Sb", r"(?i)a[[:^space:]]b"),
            (r"no\.classes$", r"no\.classes$"),
        ];
        for (written, compiled) in cases {
            assert_eq!(LazyRegex::new(written).unwrap().as_str(), compiled);
            assert_eq!(LazyRegex::deferred(written).unwrap().as_str(), compiled);
        }
        // ASCII text matches as before.
        let svc = LazyRegex::new(r"-k\s\w{1,64}(?:\s?(?:-p|-s))?").unwrap();
        assert!(svc.is_match(r"C:\Windows\system32\svchost.exe -k netsvcs -p"));
        assert!(LazyRegex::new(r"^\d{3}\s\w+$")
            .unwrap()
            .is_match("123 abc_9"));
        // Beyond ASCII, as PCRE: no Unicode letters, digits or spaces in the classes.
        assert!(!LazyRegex::new(r"^\w+$").unwrap().is_match("café"));
        assert!(!LazyRegex::new(r"^\d$").unwrap().is_match("\u{663}"));
        assert!(!LazyRegex::new(r"a\sb").unwrap().is_match("a\u{a0}b"));
        assert!(LazyRegex::new(r"caf\W").unwrap().is_match("café"));
        // Translating twice changes nothing (the embedded set stores the translation).
        let once = LazyRegex::new(r"[^\s]\w").unwrap();
        assert_eq!(
            LazyRegex::deferred(once.as_str()).unwrap().as_str(),
            once.as_str()
        );
    }

    #[test]
    fn bad_syntax_is_refused_either_way() {
        assert!(LazyRegex::new("a(b").is_err());
        assert!(LazyRegex::deferred("a(b").is_err());
    }
}
