//! String patterns: Sigma wildcards, case folding, and the value modifiers that turn one
//! YAML value into the literal alternatives a rule really tests (`windash`, `base64`,
//! `base64offset`, `utf16*`).

use std::borrow::Cow;

use base64::Engine as _;

/// A string test after modifiers, already case-folded unless the test is cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum StrPattern {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    /// Wildcards inside the value: `*` any run, `?` one character.
    Glob(Vec<GlobToken>),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum GlobToken {
    Lit(String),
    Star,
    One,
}

/// Sigma's case-insensitive comparison folds both sides with this: lowercase, and the long
/// s (`ſ`, whose lowercase is itself) as `s`, as Unicode case folding has it — so that every
/// non-ASCII character that a case-insensitive regex takes for an ASCII letter folds to that
/// letter (the Kelvin sign lowercases to `k` already).
pub fn fold(s: &str) -> Cow<'_, str> {
    if s.is_ascii() {
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(s.to_ascii_lowercase())
        } else {
            Cow::Borrowed(s)
        }
    } else {
        Cow::Owned(fold_unicode(s))
    }
}

fn fold_unicode(s: &str) -> String {
    s.to_lowercase().replace('\u{17F}', "s")
}

/// [`fold`] appended to a buffer.
pub fn fold_append(s: &str, buf: &mut String) {
    if s.is_ascii() {
        let start = buf.len();
        buf.push_str(s);
        buf[start..].make_ascii_lowercase();
    } else {
        buf.push_str(&fold_unicode(s));
    }
}

/// Parses a Sigma string value: `*` and `?` are wildcards, `\*`, `\?` and `\\` escape them;
/// any other backslash is a literal backslash (Windows paths).
pub fn parse_wildcards(raw: &str) -> Vec<GlobToken> {
    let mut tokens = Vec::new();
    let mut lit = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&n @ ('*' | '?' | '\\')) => {
                    lit.push(n);
                    chars.next();
                }
                _ => lit.push('\\'),
            },
            '*' | '?' => {
                if !lit.is_empty() {
                    tokens.push(GlobToken::Lit(std::mem::take(&mut lit)));
                }
                tokens.push(if c == '*' {
                    GlobToken::Star
                } else {
                    GlobToken::One
                });
            }
            _ => lit.push(c),
        }
    }
    if !lit.is_empty() {
        tokens.push(GlobToken::Lit(lit));
    }
    tokens
}

/// Whether a raw value has unescaped wildcards.
pub fn has_wildcards(raw: &str) -> bool {
    parse_wildcards(raw)
        .iter()
        .any(|t| !matches!(t, GlobToken::Lit(_)))
}

/// The literal text of a raw value with no wildcards (escapes resolved).
pub fn unescape(raw: &str) -> String {
    parse_wildcards(raw)
        .into_iter()
        .map(|t| match t {
            GlobToken::Lit(s) => s,
            GlobToken::Star => "*".into(),
            GlobToken::One => "?".into(),
        })
        .collect()
}

/// Where the value must sit in the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Anchor {
    Whole,
    Start,
    End,
    Anywhere,
}

/// Builds the pattern for tokens anchored as the modifiers say, folded unless `cased`.
pub fn build(mut tokens: Vec<GlobToken>, anchor: Anchor, cased: bool) -> StrPattern {
    if matches!(anchor, Anchor::End | Anchor::Anywhere) {
        tokens.insert(0, GlobToken::Star);
    }
    if matches!(anchor, Anchor::Start | Anchor::Anywhere) {
        tokens.push(GlobToken::Star);
    }
    // Fold, merge adjacent literals, collapse star runs.
    let mut norm: Vec<GlobToken> = Vec::with_capacity(tokens.len());
    for t in tokens {
        let t = match t {
            GlobToken::Lit(s) if !cased => GlobToken::Lit(fold(&s).into_owned()),
            other => other,
        };
        match (norm.last_mut(), t) {
            (Some(GlobToken::Star), GlobToken::Star) => {}
            (Some(GlobToken::Lit(prev)), GlobToken::Lit(s)) => prev.push_str(&s),
            (_, t) => norm.push(t),
        }
    }
    use GlobToken::*;
    match norm.as_slice() {
        [] => StrPattern::Exact(String::new()),
        [Lit(s)] => StrPattern::Exact(s.clone()),
        [Lit(s), Star] => StrPattern::Prefix(s.clone()),
        [Star, Lit(s)] => StrPattern::Suffix(s.clone()),
        [Star, Lit(s), Star] => StrPattern::Contains(s.clone()),
        [Star] => StrPattern::Contains(String::new()),
        _ => StrPattern::Glob(norm),
    }
}

impl StrPattern {
    /// Tests text that is already folded when the pattern is case-insensitive.
    pub fn matches(&self, text: &str) -> bool {
        match self {
            StrPattern::Exact(s) => text == s,
            StrPattern::Prefix(s) => text.starts_with(s.as_str()),
            StrPattern::Suffix(s) => text.ends_with(s.as_str()),
            StrPattern::Contains(s) => text.contains(s.as_str()),
            StrPattern::Glob(tokens) => glob_match(tokens, text),
        }
    }

    /// The longest literal every match must contain (a prefilter for globs).
    pub fn required_literal(&self) -> Option<&str> {
        match self {
            StrPattern::Exact(s)
            | StrPattern::Prefix(s)
            | StrPattern::Suffix(s)
            | StrPattern::Contains(s) => Some(s),
            StrPattern::Glob(tokens) => tokens
                .iter()
                .filter_map(|t| match t {
                    GlobToken::Lit(s) => Some(s.as_str()),
                    _ => None,
                })
                .max_by_key(|s| s.len()),
        }
    }
}

/// Wildcard match over characters, linear backtracking on the last star.
pub fn glob_match(tokens: &[GlobToken], text: &str) -> bool {
    fn lit_at(text: &str, pos: usize, lit: &str) -> bool {
        text[pos..].starts_with(lit)
    }
    let (mut ti, mut pos) = (0usize, 0usize);
    let mut backtrack: Option<(usize, usize)> = None; // (token after star, text position)
    loop {
        if ti == tokens.len() {
            if pos == text.len() {
                return true;
            }
        } else {
            match &tokens[ti] {
                GlobToken::Star => {
                    backtrack = Some((ti + 1, pos));
                    ti += 1;
                    continue;
                }
                GlobToken::One => {
                    if let Some(c) = text[pos..].chars().next() {
                        pos += c.len_utf8();
                        ti += 1;
                        continue;
                    }
                }
                GlobToken::Lit(s) => {
                    if lit_at(text, pos, s) {
                        pos += s.len();
                        ti += 1;
                        continue;
                    }
                }
            }
        }
        // Mismatch: let the last star swallow one more character.
        match backtrack {
            Some((bt, bpos)) if bpos < text.len() => {
                let step = text[bpos..].chars().next().map_or(1, char::len_utf8);
                backtrack = Some((bt, bpos + step));
                ti = bt;
                pos = bpos + step;
            }
            _ => return false,
        }
    }
}

const DASHES: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];

/// `windash`: every dash or slash that starts a word (a command-line flag) in every one
/// of its five spellings.
pub fn windash(raw: &str) -> Vec<String> {
    let chars: Vec<char> = raw.chars().collect();
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let flag_positions: Vec<usize> = (0..chars.len())
        .filter(|&i| {
            DASHES.contains(&chars[i])
                && (i == 0 || !is_word(chars[i - 1]))
                && chars.get(i + 1).is_some_and(|&c| is_word(c))
        })
        .collect();
    let mut out = vec![chars.clone()];
    for &i in &flag_positions {
        out = out
            .into_iter()
            .flat_map(|v| {
                DASHES.iter().map(move |&d| {
                    let mut v = v.clone();
                    v[i] = d;
                    v
                })
            })
            .collect();
    }
    out.into_iter().map(|v| v.into_iter().collect()).collect()
}

/// The text encodings a value can be put through before matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf16Le,
    Utf16Be,
    /// UTF-16 little endian with a byte order mark.
    Utf16Bom,
}

pub fn encode(text: &[u8], enc: Encoding) -> Vec<u8> {
    let s = String::from_utf8_lossy(text);
    let mut out = Vec::with_capacity(s.len() * 2 + 2);
    if enc == Encoding::Utf16Bom {
        out.extend_from_slice(&[0xFF, 0xFE]);
    }
    for unit in s.encode_utf16() {
        match enc {
            Encoding::Utf16Be => out.extend_from_slice(&unit.to_be_bytes()),
            _ => out.extend_from_slice(&unit.to_le_bytes()),
        }
    }
    out
}

pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `base64offset`: the three encodings of `bytes` at offsets 0, 1 and 2 inside a larger
/// base64 text, trimmed to the characters that do not depend on the neighbours.
pub fn base64_offsets(bytes: &[u8]) -> Vec<String> {
    const START: [usize; 3] = [0, 2, 3];
    const END_TRIM: [usize; 3] = [0, 3, 2];
    (0..3)
        .map(|i| {
            let mut padded = vec![b' '; i];
            padded.extend_from_slice(bytes);
            let enc = base64(&padded);
            let end = enc.len().saturating_sub(END_TRIM[(bytes.len() + i) % 3]);
            enc.get(START[i]..end).unwrap_or("").to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(raw: &str, anchor: Anchor) -> StrPattern {
        build(parse_wildcards(raw), anchor, false)
    }

    #[test]
    fn wildcards_and_anchors_classify() {
        assert_eq!(
            pat("cmd.exe", Anchor::Whole),
            StrPattern::Exact("cmd.exe".into())
        );
        assert_eq!(
            pat("\\CMD.exe", Anchor::End),
            StrPattern::Suffix("\\cmd.exe".into())
        );
        assert_eq!(pat("*x*", Anchor::Whole), StrPattern::Contains("x".into()));
        assert_eq!(pat("a\\*b", Anchor::Whole), StrPattern::Exact("a*b".into()));
        assert_eq!(
            pat("C:\\Windows\\", Anchor::Start),
            StrPattern::Prefix("c:\\windows\\".into())
        );
        assert!(matches!(pat("a*b", Anchor::Whole), StrPattern::Glob(_)));
    }

    #[test]
    fn glob_semantics() {
        let p = pat("*\\sys?em32\\x*.dll", Anchor::Whole);
        assert!(p.matches("c:\\windows\\system32\\xy.dll"));
        // `\*` is an escaped star, not a wildcard.
        assert!(!pat("a\\*", Anchor::Whole).matches("ab"));
        assert!(!p.matches("c:\\windows\\sys32\\x.dll"));
        let p = pat("a*b*c", Anchor::Whole);
        assert!(p.matches("abc") && p.matches("axxbyybzc") && !p.matches("abcx"));
        assert!(pat("é?", Anchor::Whole).matches("éß"));
    }

    #[test]
    fn fold_maps_what_case_insensitive_regexes_equate_to_ascii() {
        assert_eq!(fold("ſK\u{212A}İ"), "skk\u{69}\u{307}");
        let mut buf = String::from("x");
        fold_append("AB", &mut buf);
        fold_append("ſ", &mut buf);
        assert_eq!(buf, "xabs");
    }

    #[test]
    fn windash_spellings() {
        let v = windash("-enc x -nop");
        assert_eq!(v.len(), 25);
        assert!(v.contains(&"/enc x \u{2013}nop".to_string()));
        assert_eq!(windash("a-b"), vec!["a-b".to_string()]);
    }

    #[test]
    fn base64_offsets_match_pysigma() {
        // Known values for 'Invoke-' (the three shifts appear in encoded PowerShell).
        let v = base64_offsets(b"Invoke-");
        assert_eq!(v, ["SW52b2tlL", "ludm9rZS", "JbnZva2Ut"]);
        let wide = base64_offsets(&encode(b"IEX", Encoding::Utf16Le));
        assert!(
            base64(&encode(b"xIEX", Encoding::Utf16Le)).contains(&wide[2])
                || base64(&encode(b"IEX", Encoding::Utf16Le)).contains(&wide[0])
        );
    }
}
