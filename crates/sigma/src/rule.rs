//! Sigma rule YAML into the rule model: searches of field tests with their matchers.

use serde::{Deserialize, Serialize};
use serde_yaml::Value as Yaml;

use crate::condition::{self, Cond};
use crate::correlation::{self, Correlation};
use crate::logsource::{self, LogSource, Route};
use crate::pattern::{self, Anchor, Encoding, StrPattern};
use crate::LazyRegex;

pub use towerwatch_event::Level;

/// How one value tests a field's value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Matcher {
    /// A string pattern; folded (case-insensitive) unless `cased`.
    Str {
        pattern: StrPattern,
        cased: bool,
    },
    Regex(#[serde(with = "regex_text")] LazyRegex),
    Cidr(ipnet::IpNet),
    Compare(Compare, f64),
    /// `|exists: true/false`: the field is present (null or not).
    Exists(bool),
    /// `null`: the field is absent or null.
    Null,
    /// `|fieldref`: equal (anchored as the modifiers say) to another field's value.
    FieldRef {
        field: String,
        anchor: Anchor,
        cased: bool,
    },
    /// `|neq`: none of the field's values matches.
    Not(Box<Matcher>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Compare {
    Lt,
    Lte,
    Gt,
    Gte,
}

/// One `Field|modifiers: values` entry (or a keyword list when `field` is `None`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FieldTest {
    pub field: Option<String>,
    /// `|all`: every value must match; otherwise any.
    pub all: bool,
    /// One entry per YAML value; each value may expand to alternatives (any of them).
    pub values: Vec<Vec<Matcher>>,
}

/// A named search: any of the alternatives, each an AND of field tests.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Search {
    pub name: String,
    pub alternatives: Vec<Vec<FieldTest>>,
}

/// A parsed, validated Sigma detection rule.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rule {
    pub id: String,
    /// The optional `name` correlation rules may refer to it by.
    pub name: Option<String>,
    pub title: String,
    pub status: Option<String>,
    pub level: Level,
    pub description: Option<String>,
    pub author: Option<String>,
    pub tags: Vec<String>,
    pub logsource: LogSource,
    pub routes: Vec<Route>,
    pub searches: Vec<Search>,
    pub condition: Cond,
    /// The file it came from.
    pub path: String,
}

/// Why a rule was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefusalKind {
    /// The file is not a valid Sigma rule.
    Invalid,
    /// Valid Sigma that towerwatch does not run.
    Unsupported,
}

/// A rule that cannot run: where (file, and the line and column of the YAML error or of the
/// refused document's first line), which rule, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuleError {
    pub path: String,
    /// 1-based line of the problem in the file (the document's first line when the problem
    /// is in its meaning rather than its syntax).
    pub line: Option<u64>,
    pub column: Option<u64>,
    pub title: Option<String>,
    pub kind: RefusalKind,
    pub reason: String,
}

impl RuleError {
    /// A refusal of a whole file (no line to point at).
    pub fn file(path: &str, kind: RefusalKind, reason: impl Into<String>) -> Self {
        RuleError {
            path: path.to_string(),
            line: None,
            column: None,
            title: None,
            kind,
            reason: reason.into(),
        }
    }

    /// `path:line:column`, as editors and compilers write it.
    pub fn at(&self) -> String {
        match (self.line, self.column) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}", self.path),
            (Some(l), None) => format!("{}:{l}", self.path),
            _ => self.path.clone(),
        }
    }
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {:?}: {}", self.at(), self.kind, self.reason)
    }
}

impl std::error::Error for RuleError {}

fn invalid(msg: impl Into<String>) -> (RefusalKind, String) {
    (RefusalKind::Invalid, msg.into())
}

fn unsupported(msg: impl Into<String>) -> (RefusalKind, String) {
    (RefusalKind::Unsupported, msg.into())
}

type Refusal = (RefusalKind, String);

/// Values of `%name%` placeholders, for the `expand` modifier.
pub type Placeholders = std::collections::HashMap<String, Vec<String>>;

/// Parses every rule in a YAML text (one or more documents).
pub fn parse_rules(text: &str, path: &str) -> Vec<Result<Rule, RuleError>> {
    parse_rules_with(text, path, &Placeholders::new())
}

/// As [`parse_rules`], with the values `expand` substitutes for `%name%` placeholders; a rule
/// whose placeholder has no values is refused. Correlation rules are refused here: they are
/// loaded with the rules they refer to, through [`crate::LoadReport`].
pub fn parse_rules_with(
    text: &str,
    path: &str,
    placeholders: &Placeholders,
) -> Vec<Result<Rule, RuleError>> {
    parse_documents(text, path, placeholders)
        .into_iter()
        .map(|d| match d {
            Ok(Document::Rule(r)) => Ok(*r),
            Ok(Document::Correlation(c)) => Err(RuleError {
                path: c.path,
                line: Some(c.line),
                column: Some(1),
                title: Some(c.title),
                kind: RefusalKind::Unsupported,
                reason: "correlation rule outside a rule set".into(),
            }),
            Err(e) => Err(e),
        })
        .collect()
}

/// One document of a Sigma YAML file.
#[derive(Debug, Clone)]
pub enum Document {
    Rule(Box<Rule>),
    Correlation(Box<Correlation>),
}

/// Parses every document in a YAML text: detection rules and correlation rules.
pub fn parse_documents(
    text: &str,
    path: &str,
    placeholders: &Placeholders,
) -> Vec<Result<Document, RuleError>> {
    let mut out = Vec::new();
    let starts = document_lines(text);
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let label = if i == 0 {
            path.to_string()
        } else {
            format!("{path}#{i}")
        };
        let first_line = starts.get(i).copied().unwrap_or(1);
        let parsed = Yaml::deserialize_any(doc);
        out.push(match parsed {
            Ok(yaml) => {
                let title = yaml.get("title").and_then(Yaml::as_str).map(String::from);
                let doc = if yaml.get("correlation").is_some() {
                    correlation::parse(&yaml, &label).map(|mut c| {
                        c.line = first_line;
                        Document::Correlation(Box::new(c))
                    })
                } else {
                    parse_rule(&yaml, &label, placeholders).map(|r| Document::Rule(Box::new(r)))
                };
                doc.map_err(|(kind, reason)| {
                    let end = starts.get(i + 1).copied().unwrap_or(u64::MAX);
                    let (line, column) = locate(text, first_line, end, &reason);
                    RuleError {
                        path: label.clone(),
                        line: Some(line),
                        column: Some(column),
                        title,
                        kind,
                        reason,
                    }
                })
            }
            Err(e) => {
                // serde_yaml places syntax errors in the whole text.
                let at = e.location();
                out.push(Err(RuleError {
                    path: label,
                    line: at.as_ref().map(|l| l.line() as u64),
                    column: at.as_ref().map(|l| l.column() as u64),
                    title: None,
                    kind: RefusalKind::Invalid,
                    reason: format!("YAML: {e}"),
                }));
                break; // the rest of the stream is not readable
            }
        });
    }
    out
}

/// Where in its document (lines `first..end`) a refusal points: where the most specific
/// (last) of the names the reason quotes is written (`search 'sel': unknown modifier
/// 'nonsense'` points at `nonsense`), else the document's first line.
fn locate(text: &str, first: u64, end: u64, reason: &str) -> (u64, u64) {
    let parts: Vec<&str> = reason.split('\'').collect();
    let quoted = parts
        .iter()
        .enumerate()
        .filter(|(i, q)| i % 2 == 1 && *i + 1 < parts.len() && !q.trim().is_empty())
        .map(|(_, q)| *q)
        .rev();
    for q in quoted {
        for (n, line) in text.lines().enumerate() {
            let n = n as u64 + 1;
            if n < first || n >= end {
                continue;
            }
            if let Some(col) = line.find(q) {
                return (n, line[..col].chars().count() as u64 + 1);
            }
        }
    }
    (first, 1)
}

/// The 1-based line on which each YAML document of `text` starts: the first line, and the
/// line after each `---` marker (a marker before any content opens the first document).
fn document_lines(text: &str) -> Vec<u64> {
    let mut starts = vec![1];
    let mut content = false;
    for (n, line) in text.lines().enumerate() {
        let marker = line
            .strip_prefix("---")
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace));
        if marker {
            let next = n as u64 + 2;
            if content {
                starts.push(next);
            } else {
                starts[0] = next;
            }
            content = false;
        } else if !line.trim().is_empty() && !line.trim_start().starts_with('#') {
            content = true;
        }
    }
    starts
}

trait DeserializeAny {
    fn deserialize_any(doc: serde_yaml::Deserializer<'_>) -> Result<Yaml, serde_yaml::Error>;
}

impl DeserializeAny for Yaml {
    fn deserialize_any(doc: serde_yaml::Deserializer<'_>) -> Result<Yaml, serde_yaml::Error> {
        serde::Deserialize::deserialize(doc)
    }
}

fn str_of(y: &Yaml, key: &str) -> Option<String> {
    match y.get(key)? {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn parse_rule(y: &Yaml, path: &str, ph: &Placeholders) -> Result<Rule, Refusal> {
    if !y.is_mapping() {
        return Err(invalid("not a YAML mapping"));
    }
    if y.get("filter").is_some() && y.get("detection").is_none() {
        return Err(unsupported("Sigma filter (meta-rule) is not supported"));
    }
    if str_of(y, "action").is_some() {
        return Err(unsupported(
            "rule collections with 'action' are not supported",
        ));
    }
    let title = str_of(y, "title").ok_or_else(|| invalid("missing 'title'"))?;
    let level = match str_of(y, "level") {
        Some(l) => l.parse().map_err(invalid)?,
        None => Level::Medium,
    };
    let tags = match y.get("tags") {
        Some(Yaml::Sequence(s)) => s
            .iter()
            .filter_map(|t| t.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    };
    let ls = y
        .get("logsource")
        .ok_or_else(|| invalid("missing 'logsource'"))?;
    let logsource = LogSource {
        product: str_of(ls, "product"),
        category: str_of(ls, "category"),
        service: str_of(ls, "service"),
    };
    let routes = logsource::resolve(&logsource).map_err(unsupported)?;
    let detection = y
        .get("detection")
        .ok_or_else(|| invalid("missing 'detection'"))?;
    let Yaml::Mapping(det) = detection else {
        return Err(invalid("'detection' is not a mapping"));
    };
    let mut searches = Vec::new();
    let mut condition_texts = Vec::new();
    for (k, v) in det {
        let name = k
            .as_str()
            .ok_or_else(|| invalid("detection key is not a string"))?;
        match name {
            "condition" => match v {
                Yaml::String(s) => condition_texts.push(s.clone()),
                Yaml::Sequence(list) => {
                    for c in list {
                        condition_texts.push(
                            c.as_str()
                                .ok_or_else(|| invalid("condition list item is not a string"))?
                                .to_string(),
                        );
                    }
                }
                _ => return Err(invalid("'condition' is not a string")),
            },
            "timeframe" => {}
            _ => searches.push(Search {
                name: name.to_string(),
                alternatives: parse_search(v, ph)
                    .map_err(|(k, m)| (k, format!("search '{name}': {m}")))?,
            }),
        }
    }
    if condition_texts.is_empty() {
        return Err(invalid("missing 'condition'"));
    }
    let names: Vec<String> = searches.iter().map(|s| s.name.clone()).collect();
    let mut conds = Vec::new();
    for text in &condition_texts {
        let c = condition::parse(text, &names).map_err(|m| {
            if m.contains("aggregation") {
                unsupported(m)
            } else {
                invalid(format!("condition '{text}': {m}"))
            }
        })?;
        conds.push(c);
    }
    let condition = if conds.len() == 1 {
        conds.remove(0)
    } else {
        Cond::Or(conds)
    };
    Ok(Rule {
        id: str_of(y, "id").unwrap_or_default(),
        name: str_of(y, "name"),
        title,
        status: str_of(y, "status"),
        level,
        description: str_of(y, "description"),
        author: str_of(y, "author"),
        tags,
        logsource,
        routes,
        searches,
        condition,
        path: path.to_string(),
    })
}

fn parse_search(v: &Yaml, ph: &Placeholders) -> Result<Vec<Vec<FieldTest>>, Refusal> {
    match v {
        Yaml::Mapping(m) => Ok(vec![parse_map(m, ph)?]),
        Yaml::Sequence(items) if items.iter().all(Yaml::is_mapping) && !items.is_empty() => items
            .iter()
            .map(|i| match i {
                Yaml::Mapping(m) => parse_map(m, ph),
                _ => Err(invalid("mixed list")),
            })
            .collect(),
        Yaml::Sequence(items) => {
            if items.iter().any(|i| i.is_mapping() || i.is_sequence()) {
                return Err(invalid(
                    "a list must hold either maps or keywords, not both",
                ));
            }
            Ok(vec![vec![parse_test(None, &[], v, ph)?]])
        }
        Yaml::String(_) | Yaml::Number(_) => Ok(vec![vec![parse_test(None, &[], v, ph)?]]),
        _ => Err(invalid(
            "a search must be a map, a list of maps, or a list of keywords",
        )),
    }
}

fn parse_map(m: &serde_yaml::Mapping, ph: &Placeholders) -> Result<Vec<FieldTest>, Refusal> {
    let mut tests = Vec::new();
    for (k, v) in m {
        let key = match k {
            Yaml::String(s) => s.clone(),
            Yaml::Number(n) => n.to_string(),
            _ => return Err(invalid("field name is not a string")),
        };
        let mut parts = key.split('|');
        let field = parts.next().unwrap_or_default();
        let mods: Vec<&str> = parts.collect();
        let field = (!field.is_empty()).then(|| field.to_string());
        tests.push(parse_test(field, &mods, v, ph)?);
    }
    Ok(tests)
}

#[derive(Default, Clone)]
struct Modifiers {
    expand: bool,
    anchor: Option<Anchor>,
    all: bool,
    cased: bool,
    windash: bool,
    encodings: Vec<Encoding>,
    base64: bool,
    base64offset: bool,
    re: Option<String>,
    cidr: bool,
    exists: bool,
    fieldref: bool,
    compare: Option<Compare>,
    neq: bool,
}

fn parse_modifiers(mods: &[&str]) -> Result<Modifiers, Refusal> {
    let mut m = Modifiers::default();
    for &name in mods {
        match name {
            "contains" => m.anchor = Some(Anchor::Anywhere),
            "startswith" => m.anchor = Some(Anchor::Start),
            "endswith" => m.anchor = Some(Anchor::End),
            "all" => m.all = true,
            "cased" => m.cased = true,
            "windash" => m.windash = true,
            "utf16le" | "wide" => m.encodings.push(Encoding::Utf16Le),
            "utf16be" => m.encodings.push(Encoding::Utf16Be),
            "utf16" => m.encodings.push(Encoding::Utf16Bom),
            "base64" => m.base64 = true,
            "base64offset" => m.base64offset = true,
            "re" => m.re = Some(String::new()),
            "i" | "m" | "s" => match &mut m.re {
                Some(flags) => flags.push_str(name),
                None => return Err(invalid(format!("modifier '{name}' only follows 're'"))),
            },
            "cidr" => m.cidr = true,
            "exists" => m.exists = true,
            "fieldref" => m.fieldref = true,
            "lt" => m.compare = Some(Compare::Lt),
            "lte" => m.compare = Some(Compare::Lte),
            "gt" => m.compare = Some(Compare::Gt),
            "gte" => m.compare = Some(Compare::Gte),
            "neq" => m.neq = true,
            "expand" => m.expand = true,
            "minute" | "hour" | "day" | "week" | "month" | "year" => {
                return Err(unsupported(format!(
                    "time modifier '{name}' is not supported"
                )))
            }
            other => return Err(invalid(format!("unknown modifier '{other}'"))),
        }
    }
    Ok(m)
}

fn parse_test(
    field: Option<String>,
    mods: &[&str],
    v: &Yaml,
    ph: &Placeholders,
) -> Result<FieldTest, Refusal> {
    let m = parse_modifiers(mods)?;
    let items: Vec<&Yaml> = match v {
        Yaml::Sequence(list) => list.iter().collect(),
        single => vec![single],
    };
    if items.is_empty() {
        return Err(invalid("empty value list"));
    }
    let mut values = Vec::with_capacity(items.len());
    for item in items {
        let mut alts = value_matchers(&m, field.is_none(), item, ph)?;
        if m.neq {
            alts = alts
                .into_iter()
                .map(|a| Matcher::Not(Box::new(a)))
                .collect();
        }
        values.push(alts);
    }
    if m.neq && values.len() > 1 {
        // `neq` with a list: the field differs from every value.
        let all: Vec<Matcher> = values.into_iter().flatten().collect();
        return Ok(FieldTest {
            field,
            all: true,
            values: all.into_iter().map(|a| vec![a]).collect(),
        });
    }
    Ok(FieldTest {
        field,
        all: m.all,
        values,
    })
}

fn scalar_text(item: &Yaml) -> Result<Option<String>, Refusal> {
    Ok(match item {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        Yaml::Null => None,
        _ => return Err(invalid("a value must be a string, number, boolean or null")),
    })
}

fn value_matchers(
    m: &Modifiers,
    keyword: bool,
    item: &Yaml,
    ph: &Placeholders,
) -> Result<Vec<Matcher>, Refusal> {
    if m.exists {
        return match item {
            Yaml::Bool(b) => Ok(vec![Matcher::Exists(*b)]),
            Yaml::String(s) if s == "true" || s == "false" => {
                Ok(vec![Matcher::Exists(s == "true")])
            }
            _ => Err(invalid("'exists' takes true or false")),
        };
    }
    let Some(raw) = scalar_text(item)? else {
        return Ok(vec![Matcher::Null]);
    };
    if m.expand {
        // Each `%name%` becomes each of its values; the rest of the modifiers apply to every
        // expansion.
        let plain = Modifiers {
            expand: false,
            ..m.clone()
        };
        let mut out = Vec::new();
        for text in expand(&raw, ph)? {
            out.extend(value_matchers(&plain, keyword, &Yaml::String(text), ph)?);
        }
        return Ok(out);
    }
    if let Some(flags) = &m.re {
        let mut prefix = String::new();
        if !flags.is_empty() {
            prefix = format!("(?{flags})");
        }
        if m.cased {
            // `cased` has no effect on a regex; keep it as written.
        }
        return LazyRegex::new(&format!("{prefix}{raw}"))
            .map(|r| vec![Matcher::Regex(r)])
            .map_err(|e| {
                unsupported(format!("regex not supported by the Rust regex engine: {e}"))
            });
    }
    if m.cidr {
        let net = raw
            .parse::<ipnet::IpNet>()
            .or_else(|_| raw.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map_err(|e| invalid(format!("bad CIDR '{raw}': {e}")))?;
        return Ok(vec![Matcher::Cidr(net)]);
    }
    if let Some(op) = m.compare {
        let n: f64 = raw
            .parse()
            .map_err(|_| invalid(format!("'{raw}' is not a number")))?;
        return Ok(vec![Matcher::Compare(op, n)]);
    }
    if m.fieldref {
        return Ok(vec![Matcher::FieldRef {
            field: raw,
            anchor: m.anchor.unwrap_or(Anchor::Whole),
            cased: m.cased,
        }]);
    }
    // Keywords match anywhere in the event's values.
    let anchor = m.anchor.unwrap_or(if keyword {
        Anchor::Anywhere
    } else {
        Anchor::Whole
    });
    let mut texts = if m.windash {
        pattern::windash(&raw)
    } else {
        vec![raw]
    };
    let encoded = !m.encodings.is_empty() || m.base64 || m.base64offset;
    if !encoded {
        return Ok(texts
            .into_iter()
            .map(|t| Matcher::Str {
                pattern: pattern::build(pattern::parse_wildcards(&t), anchor, m.cased),
                cased: m.cased,
            })
            .collect());
    }
    if texts.iter().any(|t| pattern::has_wildcards(t)) {
        return Err(invalid(
            "wildcards cannot be combined with encoding modifiers",
        ));
    }
    let mut out = Vec::new();
    for t in texts.drain(..) {
        let mut bytes = pattern::unescape(&t).into_bytes();
        for enc in &m.encodings {
            bytes = pattern::encode(&bytes, *enc);
        }
        let literals: Vec<String> = if m.base64offset {
            pattern::base64_offsets(&bytes)
        } else if m.base64 {
            vec![pattern::base64(&bytes)]
        } else {
            vec![String::from_utf8_lossy(&bytes).into_owned()]
        };
        for lit in literals {
            let tokens = if lit.is_empty() {
                vec![]
            } else {
                vec![pattern::GlobToken::Lit(lit)]
            };
            out.push(Matcher::Str {
                pattern: pattern::build(tokens, anchor, m.cased),
                cased: m.cased,
            });
        }
    }
    Ok(out)
}

/// Regexes travel as their source text (the embedded rule set is serialized at build time,
/// after every regex in it compiled), and are compiled again on first use.
mod regex_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::LazyRegex;

    pub fn serialize<S: Serializer>(re: &LazyRegex, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(re.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<LazyRegex, D::Error> {
        let text = String::deserialize(d)?;
        LazyRegex::deferred(&text).map_err(serde::de::Error::custom)
    }
}

/// Every text `raw` stands for with its `%name%` placeholders replaced by their values.
fn expand(raw: &str, ph: &Placeholders) -> Result<Vec<String>, Refusal> {
    let Some(start) = raw.find('%') else {
        return Ok(vec![raw.to_string()]);
    };
    let Some(len) = raw[start + 1..].find('%') else {
        return Ok(vec![raw.to_string()]);
    };
    let name = &raw[start + 1..start + 1 + len];
    let values = ph.get(name).filter(|v| !v.is_empty()).ok_or_else(|| {
        unsupported(format!(
            "placeholder %{name}% has no values (give them with --placeholders)"
        ))
    })?;
    let rest = expand(&raw[start + len + 2..], ph)?;
    let head = &raw[..start];
    Ok(values
        .iter()
        .flat_map(|v| rest.iter().map(move |r| format!("{head}{v}{r}")))
        .collect())
}

impl Rule {
    /// This rule matching `event`, as a detection (`with_event`: with the event's fields).
    pub fn detection(
        &self,
        event: &towerwatch_event::Event,
        with_event: bool,
    ) -> towerwatch_event::Detection {
        towerwatch_event::Detection::new(
            towerwatch_event::RuleRef {
                id: &self.id,
                title: &self.title,
                level: self.level,
                tags: &self.tags,
            },
            event,
            with_event,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = "title: t\nlogsource: {product: windows, category: process_creation}\ndetection:\n  sel:\n    Image|expand|endswith: '%tools%\\x.exe'\n  condition: sel\n";

    #[test]
    fn expand_substitutes_every_value_or_refuses() {
        let refused = parse_rules(RULE, "t.yml").remove(0).unwrap_err();
        assert_eq!(refused.kind, RefusalKind::Unsupported);
        assert!(refused.reason.contains("%tools%"), "{}", refused.reason);

        let mut ph = Placeholders::new();
        ph.insert("tools".into(), vec!["C:\\a".into(), "D:\\b".into()]);
        let rule = parse_rules_with(RULE, "t.yml", &ph).remove(0).unwrap();
        let alts = &rule.searches[0].alternatives[0][0].values[0];
        let patterns: Vec<String> = alts
            .iter()
            .map(|m| match m {
                Matcher::Str {
                    pattern: StrPattern::Suffix(s),
                    ..
                } => s.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(patterns, ["c:\\a\\x.exe", "d:\\b\\x.exe"]);
    }
}
