//! PostgreSQL's `log_line_prefix`: every escape the documentation lists (`%a %u %d %r %h %L %b
//! %p %P %t %m %n %i %e %c %l %s %v %x %Q %q %%`, with optional padding such as `%-10u`), the
//! presets servers ship with, and detection of the prefix a log was written with.
//!
//! `%q` ends the prefix for processes without a session (checkpointer, autovacuum, startup):
//! their lines carry only the part before it, so everything after `%q` is optional as a block.

use std::fmt;

/// A value the prefix gave a line, by escape letter.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PrefixFields {
    pub values: Vec<(char, String)>,
    /// Byte offset where the severity word starts.
    pub severity_at: usize,
}

impl PrefixFields {
    pub fn get(&self, c: char) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| *k == c)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Literal(String),
    Escape(char),
    /// `%q`: the rest is absent on lines of processes without a session.
    Stop,
}

/// A compiled `log_line_prefix`.
#[derive(Debug, Clone)]
pub struct LinePrefix {
    text: String,
    tokens: Vec<Token>,
}

impl fmt::Display for LinePrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}'", self.text)
    }
}

/// Severity words a PostgreSQL log line carries after its prefix (message kinds and the
/// secondary lines of a report).
const SEVERITIES: [&str; 17] = [
    "LOG",
    "ERROR",
    "FATAL",
    "PANIC",
    "WARNING",
    "NOTICE",
    "INFO",
    "DEBUG",
    "DEBUG1",
    "DEBUG2",
    "DEBUG3",
    "DEBUG4",
    "DEBUG5",
    "DETAIL",
    "HINT",
    "STATEMENT",
    "CONTEXT",
];
const MORE_SEVERITIES: [&str; 2] = ["QUERY", "LOCATION"];

/// Where the upper-case word ending at byte `end` of `l` starts (a severity such as `LOG`):
/// after the last character before `end` that cannot be in it, whatever its width.
pub(crate) fn word_before(l: &str, end: usize) -> usize {
    l[..end]
        .char_indices()
        .rev()
        .find(|(_, c)| !(c.is_ascii_uppercase() || c.is_ascii_digit()))
        .map_or(0, |(i, c)| i + c.len_utf8())
}

/// The severity word at the start of `s` followed by `:  `, and its length.
pub fn severity_len(s: &str) -> Option<usize> {
    let word_len = s
        .bytes()
        .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        .count();
    let word = &s[..word_len];
    (word_len > 0
        && s[word_len..].starts_with(":  ")
        && (SEVERITIES.contains(&word) || MORE_SEVERITIES.contains(&word)))
    .then_some(word_len)
}

/// Known escapes; a letter outside this list is refused.
const ESCAPES: &str = "audrhLbpPtmnieclsvxQ";

/// Prefixes servers are configured with out of the box or by common practice.
pub const PRESETS: [(&str, &str); 11] = [
    ("postgresql (10+ default)", "%m [%p] "),
    ("debian/ubuntu", "%m [%p] %q%u@%d "),
    ("debian/ubuntu (before 10)", "%t [%p-%l] %q%u@%d "),
    ("rhel (9.x)", "< %m > "),
    ("amazon rds", "%t:%r:%u@%d:[%p]:"),
    ("azure", "%t-%c-"),
    ("pgbadger", "%t [%p]: user=%u,db=%d,app=%a,client=%h "),
    (
        "pgbadger (line numbers)",
        "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
    ),
    ("pgaudit readme", "%m %u %d [%p]: "),
    ("towerwatch", "%m [%p] user=%u,db=%d,app=%a,client=%h "),
    ("none (before 10)", ""),
];

impl LinePrefix {
    /// Compiles a prefix. Unknown escapes are an error naming them.
    pub fn new(prefix: &str) -> Result<LinePrefix, crate::LayoutError> {
        let mut tokens: Vec<Token> = Vec::new();
        let mut chars = prefix.chars().peekable();
        let literal = |tokens: &mut Vec<Token>, c: char| match tokens.last_mut() {
            Some(Token::Literal(l)) => l.push(c),
            _ => tokens.push(Token::Literal(c.to_string())),
        };
        while let Some(c) = chars.next() {
            if c != '%' {
                literal(&mut tokens, c);
                continue;
            }
            // Padding: `%-10u`, `%5p`.
            if chars.peek() == Some(&'-') {
                chars.next();
            }
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
            match chars.next() {
                None => return Err(crate::LayoutError::LoneEscape("%")),
                Some('%') => literal(&mut tokens, '%'),
                Some('q') => tokens.push(Token::Stop),
                Some(e) if ESCAPES.contains(e) => tokens.push(Token::Escape(e)),
                Some(other) => return Err(crate::LayoutError::UnknownEscape(format!("%{other}"))),
            }
        }
        Ok(LinePrefix {
            text: prefix.to_string(),
            tokens,
        })
    }

    /// The prefix as configured.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Splits a line into the values of its prefix; `None` when it does not match.
    pub fn parse(&self, line: &str) -> Option<PrefixFields> {
        self.parse_counted(line).0
    }

    /// As [`parse`](Self::parse), with how many states the search visited.
    fn parse_counted(&self, line: &str) -> (Option<PrefixFields>, usize) {
        let mut values = Vec::new();
        let mut failed = std::collections::HashSet::new();
        let mut visits = 0;
        let at = self.matches(0, line, 0, &mut values, &mut (&mut failed, &mut visits));
        let fields = at.map(|at| PrefixFields {
            values,
            severity_at: at,
        });
        (fields, visits)
    }

    /// Matches tokens from `i` at byte `pos`; returns where the severity starts. Each escape
    /// tries several ends, so the states `(i, pos)` that failed are remembered: without that,
    /// a crafted line makes the search exponential in the escapes (a fuzzed 7 KB log took
    /// 20 s); with it, it is at most tokens × positions.
    fn matches(
        &self,
        i: usize,
        line: &str,
        pos: usize,
        values: &mut Vec<(char, String)>,
        search: &mut Search<'_>,
    ) -> Option<usize> {
        *search.1 += 1;
        if search.0.contains(&(i, pos)) {
            return None;
        }
        let found = self.match_from(i, line, pos, values, search);
        if found.is_none() {
            search.0.insert((i, pos));
        }
        found
    }

    fn match_from(
        &self,
        i: usize,
        line: &str,
        pos: usize,
        values: &mut Vec<(char, String)>,
        search: &mut Search<'_>,
    ) -> Option<usize> {
        let Some(token) = self.tokens.get(i) else {
            return severity_len(&line[pos..]).map(|_| pos);
        };
        match token {
            Token::Literal(l) => {
                if line[pos..].starts_with(l.as_str()) {
                    self.matches(i + 1, line, pos + l.len(), values, search)
                } else {
                    None
                }
            }
            Token::Stop => {
                let mark = values.len();
                if let Some(at) = self.matches(i + 1, line, pos, values, search) {
                    return Some(at);
                }
                values.truncate(mark);
                severity_len(&line[pos..]).map(|_| pos)
            }
            Token::Escape(c) => {
                for end in candidate_ends(*c, line, pos, self.tokens.get(i + 1)) {
                    let v = &line[pos..end];
                    if !valid(*c, v) {
                        continue;
                    }
                    let mark = values.len();
                    values.push((*c, v.trim().to_string()));
                    if let Some(at) = self.matches(i + 1, line, end, values, search) {
                        return Some(at);
                    }
                    values.truncate(mark);
                }
                None
            }
        }
    }
}

/// The states `(token, position)` a prefix search found failing, and the states it visited.
type Search<'a> = (
    &'a mut std::collections::HashSet<(usize, usize)>,
    &'a mut usize,
);

/// Where the value of escape `c` starting at `pos` may end: typed escapes have a shape; the
/// others run to an occurrence of the next literal (or to a severity word).
fn candidate_ends(c: char, line: &str, pos: usize, next: Option<&Token>) -> Vec<usize> {
    let rest = &line[pos..];
    if let Some(len) = typed_len(c, rest) {
        return vec![pos + len];
    }
    let mut out = Vec::new();
    match next {
        Some(Token::Literal(l)) => {
            let mut from = 0;
            while let Some(k) = rest[from..].find(l.as_str()) {
                out.push(pos + from + k);
                from += k + l.len().max(1);
                if out.len() == 8 || from > rest.len() {
                    break;
                }
            }
        }
        None | Some(Token::Stop) => {
            // Runs up to a severity word (the value may be empty).
            for (k, _) in rest.match_indices(":  ") {
                let word_start = word_before(rest, k);
                if severity_len(&rest[word_start..]).is_some() {
                    out.push(pos + word_start);
                }
                if out.len() == 8 {
                    break;
                }
            }
        }
        Some(Token::Escape(_)) => {
            // Two escapes touch: every split up to a bound.
            out.extend(
                (0..=rest.len().min(200))
                    .filter(|&k| rest.is_char_boundary(k))
                    .map(|k| pos + k),
            );
        }
    }
    out
}

/// The length of a typed escape's value at the start of `s`, when its shape decides it.
fn typed_len(c: char, s: &str) -> Option<usize> {
    let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
    match c {
        'p' | 'P' | 'l' | 'x' | 'Q' => {
            let n = digits(s.trim_start());
            (n > 0).then(|| s.len() - s.trim_start().len() + n)
        }
        'm' | 't' | 's' => timestamp_len(s, c == 'm'),
        'n' => {
            let n = digits(s);
            if n == 0 {
                return None;
            }
            let frac = s[n..].strip_prefix('.').map_or(0, |r| 1 + digits(r));
            Some(n + frac)
        }
        _ => None,
    }
}

/// `2019-03-06 18:55:00[.300] ZONE`: the zone is a word of letters, digits, `+`, `-` or `:`.
fn timestamp_len(s: &str, millis: bool) -> Option<usize> {
    let b = s.as_bytes();
    let shape = b"dddd-dd-dd dd:dd:dd";
    if b.len() < shape.len() {
        return None;
    }
    for (x, y) in b.iter().zip(shape) {
        let ok = if *y == b'd' {
            x.is_ascii_digit()
        } else {
            x == y
        };
        if !ok {
            return None;
        }
    }
    let mut n = shape.len();
    if b.get(n) == Some(&b'.') {
        let k = b[n + 1..].iter().take_while(|x| x.is_ascii_digit()).count();
        n += 1 + k;
    } else if millis {
        return None;
    }
    // The zone: an abbreviation (`UTC`, `CEST`) or an offset (`+03`, `-05:30`).
    if b.get(n) == Some(&b' ') {
        let zone = &b[n + 1..];
        let k = if matches!(zone.first(), Some(b'+' | b'-')) {
            let d = zone[1..].iter().take_while(|x| x.is_ascii_digit()).count();
            let more = if zone.get(1 + d) == Some(&b':') {
                1 + zone[2 + d..]
                    .iter()
                    .take_while(|x| x.is_ascii_digit())
                    .count()
            } else {
                0
            };
            if d > 0 {
                1 + d + more
            } else {
                0
            }
        } else {
            zone.iter().take_while(|x| x.is_ascii_alphabetic()).count()
        };
        if k > 0 {
            n += 1 + k;
        }
    }
    Some(n)
}

fn valid(c: char, v: &str) -> bool {
    let v = v.trim();
    match c {
        'c' => v.split_once('.').is_some_and(|(a, b)| {
            a.bytes().all(|x| x.is_ascii_hexdigit()) && b.bytes().all(|x| x.is_ascii_hexdigit())
        }),
        'v' => v.is_empty() || v.split_once('/').is_some(),
        'e' => v.is_empty() || v.len() == 5,
        // Names do not hold the spaces or brackets that separate fields in real prefixes.
        'u' | 'd' | 'h' => !v.contains(' ') || v == "[unknown]",
        'r' => !v.contains(' '),
        _ => true,
    }
}

/// How a log's prefix was chosen, for the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrefixChoice {
    /// A known preset that matched the sampled lines.
    Preset(&'static str),
    /// Read off the first lines, none of the presets fitting.
    Inferred,
}

impl fmt::Display for PrefixChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrefixChoice::Preset(name) => write!(f, "detected: {name}"),
            PrefixChoice::Inferred => f.write_str("inferred from the first lines"),
        }
    }
}

/// Picks the prefix that reads most of `lines` (record lines of a stderr log, continuation
/// lines excluded): the known presets, best first by lines matched, then by fields learned.
/// `None` when no preset reads half of them.
pub fn detect<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<(LinePrefix, PrefixChoice)> {
    let sample: Vec<&str> = lines
        .into_iter()
        .filter(|l| !l.starts_with('\t') && !l.trim().is_empty())
        .take(400)
        .collect();
    if sample.is_empty() {
        return None;
    }
    let mut best: Option<(usize, usize, usize)> = None;
    for (k, (_, text)) in PRESETS.iter().enumerate() {
        let p = LinePrefix::new(text).expect("presets compile");
        let mut matched = 0;
        let mut fields = 0;
        for l in &sample {
            if let Some(f) = p.parse(l) {
                matched += 1;
                fields += f.values.iter().filter(|(_, v)| !v.is_empty()).count();
            }
        }
        if best.is_none_or(|(m, f, _)| (matched, fields) > (m, f)) {
            best = Some((matched, fields, k));
        }
    }
    let (matched, _, k) = best?;
    (matched * 2 >= sample.len() && matched > 0).then(|| {
        (
            LinePrefix::new(PRESETS[k].1).expect("presets compile"),
            PrefixChoice::Preset(PRESETS[k].0),
        )
    })
}

/// Reads a prefix off sample lines when no preset fits: the text before the severity of a
/// session's line, with its recognisable parts turned back into escapes (a leading
/// timestamp, `[pid]`, `[pid-line]`, `user@db`, `user=`, `db=`, `app=`, `client=`/`host=`),
/// and `%q` before the first session-only part when lines of background processes lack it.
/// Kept only if it reads at least half of the lines.
pub fn infer<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<(LinePrefix, PrefixChoice)> {
    use regex::Regex;
    let sample: Vec<&str> = lines
        .into_iter()
        .filter(|l| !l.starts_with('\t') && !l.trim().is_empty())
        .take(400)
        .collect();
    let severity_start = |l: &str| -> Option<usize> {
        l.match_indices(":  ").find_map(|(k, _)| {
            let s = word_before(l, k);
            severity_len(&l[s..]).map(|_| s)
        })
    };
    // The longest prefix text is a session's line (background lines stop at %q).
    let head = sample
        .iter()
        .filter_map(|l| severity_start(l).map(|s| &l[..s]))
        .max_by_key(|h| h.len())?;
    const RULES: [(&str, &str); 9] = [
        (
            r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+(?: [A-Za-z0-9+:-]+)?",
            "%m",
        ),
        (
            r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?: [A-Za-z0-9+:-]+)?",
            "%t",
        ),
        (r"^\d{9,10}\.\d+", "%n"),
        (r"^\[\d+-\d+\]", "[%p-%l]"),
        (r"^\[\d+\]", "[%p]"),
        (r"^(user|usr)=[^, \]]*", "$1=%u"),
        (r"^(db|database|dbname)=[^, \]]*", "$1=%d"),
        (r"^(app|application|appname|application_name)=", "$1=%a"),
        (r"^(client|host|remote|rhost|ip)=[^, \]]*", "$1=%h"),
    ];
    // Compiled once per process: inference runs once per log, but many logs make a run.
    static COMPILED: std::sync::OnceLock<(Vec<(Regex, &'static str)>, Regex)> =
        std::sync::OnceLock::new();
    let (rules, user_at_db) = COMPILED.get_or_init(|| {
        (
            RULES
                .iter()
                .map(|(r, t)| (Regex::new(r).expect("valid regex"), *t))
                .collect(),
            Regex::new(r"^[A-Za-z0-9_.\[\]-]+@[A-Za-z0-9_.\[\]-]+").expect("valid regex"),
        )
    });
    let mut out = String::new();
    let mut rest = head;
    let mut session_part: Option<usize> = None;
    'scan: while !rest.is_empty() {
        for (re, template) in rules {
            if let Some(c) = re.captures(rest) {
                let whole = c.get(0).expect("match").as_str();
                let mut text = String::new();
                c.expand(template, &mut text);
                // An application name may hold spaces: it runs to a `,` or `]`, to the next
                // `key=`, or to the end (less the space before the severity).
                let consumed = if template.ends_with("%a") {
                    let after = &rest[whole.len()..];
                    let mut end = after.find([',', ']']).unwrap_or(after.len());
                    if let Some(k) = after[..end]
                        .match_indices(' ')
                        .map(|(sp, _)| sp)
                        .find(|&sp| {
                            after[sp + 1..end]
                                .split(' ')
                                .next()
                                .is_some_and(|w| w.contains('='))
                        })
                    {
                        end = k;
                    }
                    whole.len() + after[..end].trim_end().len()
                } else {
                    whole.len()
                };
                if ["%u", "%d", "%a", "%h"].iter().any(|e| text.contains(e))
                    && session_part.is_none()
                {
                    session_part = Some(out.len());
                }
                out.push_str(&text);
                rest = &rest[consumed..];
                continue 'scan;
            }
        }
        if let Some(m) = user_at_db.find(rest) {
            if session_part.is_none() {
                session_part = Some(out.len());
            }
            out.push_str("%u@%d");
            rest = &rest[m.end()..];
            continue;
        }
        let ch = rest.chars().next().expect("not empty");
        if ch == '%' {
            out.push_str("%%");
        } else {
            out.push(ch);
        }
        rest = &rest[ch.len_utf8()..];
    }
    let mut candidates = vec![out.clone()];
    if let Some(at) = session_part {
        let mut q = out.clone();
        q.insert_str(at, "%q");
        candidates.push(q);
    }
    let mut best: Option<(usize, LinePrefix)> = None;
    for c in candidates {
        let Ok(p) = LinePrefix::new(&c) else { continue };
        let n = sample.iter().filter(|l| p.parse(l).is_some()).count();
        if best.as_ref().is_none_or(|(m, _)| n > *m) {
            best = Some((n, p));
        }
    }
    let (n, p) = best?;
    (n * 2 >= sample.len() && n > 0).then_some((p, PrefixChoice::Inferred))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(prefix: &str, line: &str) -> Option<PrefixFields> {
        LinePrefix::new(prefix).unwrap().parse(line)
    }

    /// A line crafted so that every escape has eight places to end and none leads to a
    /// severity: without remembering failed states the search visits about 8^9 of them (a
    /// fuzzed 7 KB log took 20 s); remembered, each (token, position) fails once.
    #[test]
    fn a_crafted_line_costs_states_not_combinations() {
        let prefix = LinePrefix::new("%u:%d:%a:%u:%d:%a:%u:%d:%a:").unwrap();
        let line = "a:".repeat(300);
        let (fields, visits) = prefix.parse_counted(&line);
        assert!(fields.is_none());
        let states = (prefix.tokens.len() + 1) * (line.len() + 1);
        assert!(visits <= 9 * states, "{visits} visits for {states} states");
        // The same search still finds a real line's fields.
        let (fields, _) = prefix.parse_counted("u:d:a:u:d:a:u:d:a:LOG:  x");
        assert_eq!(fields.unwrap().values.len(), 9);
    }

    #[test]
    fn every_documented_escape_parses() {
        let line = "app=psql user=cdr_ro db=cdrdw r=10.1.2.3(5555) h=10.1.2.3 L=10.0.0.1 b=client backend p=42 P=41 t=2019-03-06 18:55:00 UTC m=2019-03-06 18:55:00.300 UTC n=1551898500.300 i=SELECT e=00000 c=5c7f1a2b.2a l=7 s=2019-03-06 18:50:00 UTC v=3/12 x=0 Q=-123 % LOG:  x";
        let prefix = "app=%a user=%u db=%d r=%r h=%h L=%L b=%b p=%p P=%P t=%t m=%m n=%n i=%i e=%e c=%c l=%l s=%s v=%v x=%x Q=%Q %% ";
        let f = get(prefix, line).expect("matches");
        for (c, want) in [
            ('a', "psql"),
            ('u', "cdr_ro"),
            ('d', "cdrdw"),
            ('r', "10.1.2.3(5555)"),
            ('h', "10.1.2.3"),
            ('L', "10.0.0.1"),
            ('b', "client backend"),
            ('p', "42"),
            ('P', "41"),
            ('t', "2019-03-06 18:55:00 UTC"),
            ('m', "2019-03-06 18:55:00.300 UTC"),
            ('n', "1551898500.300"),
            ('i', "SELECT"),
            ('e', "00000"),
            ('c', "5c7f1a2b.2a"),
            ('l', "7"),
            ('s', "2019-03-06 18:50:00 UTC"),
            ('v', "3/12"),
            ('x', "0"),
        ] {
            assert_eq!(f.get(c), Some(want), "%{c}");
        }
        assert!(line[f.severity_at..].starts_with("LOG:  "));
        assert!(LinePrefix::new("%Z").is_err());
        assert!(LinePrefix::new("%").is_err());
    }

    #[test]
    fn q_makes_the_rest_optional() {
        let p = "%m [%p] %q%u@%d ";
        let session = get(
            p,
            "2024-05-01 22:10:01.123 +03 [4242] cdr_ro@cdrdw LOG:  AUDIT: x",
        )
        .unwrap();
        assert_eq!(session.get('u'), Some("cdr_ro"));
        assert_eq!(session.get('d'), Some("cdrdw"));
        assert_eq!(session.get('m'), Some("2024-05-01 22:10:01.123 +03"));
        let background = get(
            p,
            "2024-05-01 22:10:01.123 +03 [17] LOG:  checkpoint starting: time",
        )
        .unwrap();
        assert_eq!(background.get('u'), None);
        assert_eq!(background.get('p'), Some("17"));
        assert!(get(p, "garbage line").is_none());
    }

    #[test]
    fn padding_touching_escapes_and_names_with_separators() {
        let f = get("%-5p%m ", "42   2019-03-06 18:55:00.300 UTC LOG:  x").unwrap();
        assert_eq!(f.get('p'), Some("42"));
        let f = get(
            "%t:%r:%u@%d:[%p]:",
            "2019-03-06 18:55:00 UTC:10.1.1.1(5432):a@b:[9]:LOG:  x",
        )
        .unwrap();
        assert_eq!(f.get('r'), Some("10.1.1.1(5432)"));
        assert_eq!(f.get('u'), Some("a"));
        // A user name with '@' still splits at the '@' that lets the rest match.
        let f = get(
            "%m [%p] %u@%d ",
            "2019-03-06 18:55:00.300 UTC [1] a@corp@db LOG:  x",
        )
        .unwrap();
        assert_eq!((f.get('u'), f.get('d')), (Some("a"), Some("corp@db")));
    }

    #[test]
    fn detection_picks_the_preset_that_reads_the_log() {
        let debian = [
            "2024-05-01 22:10:01.123 +03 [1234] LOG:  checkpoint starting: time",
            "2024-05-01 22:10:02.000 +03 [4242] cdr_ro@cdrdw LOG:  connection authorized: user=cdr_ro database=cdrdw",
            "\tcontinuation",
            "2024-05-01 22:10:03.000 +03 [4242] cdr_ro@cdrdw LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,select 1,<none>",
        ];
        let (p, how) = detect(debian).unwrap();
        assert_eq!(p.text(), "%m [%p] %q%u@%d ");
        assert_eq!(how, PrefixChoice::Preset("debian/ubuntu"));
        let rds = ["2019-03-06 18:55:00 UTC:10.1.1.1(5432):app@cdrdw:[99]:LOG:  x"];
        assert_eq!(detect(rds).unwrap().0.text(), "%t:%r:%u@%d:[%p]:");
        assert!(detect(["nothing like a postgres log"]).is_none());
    }

    #[test]
    fn unknown_prefixes_are_inferred_from_the_lines() {
        let lines = [
            "<2024-05-01 22:10:01.123 +03> pid=[17] LOG:  checkpoint starting: time",
            "<2024-05-01 22:10:02.000 +03> pid=[4242] user=cdr_ro db=cdrdw app=psql LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,select 1,<none>",
        ];
        assert!(detect(lines).is_none());
        let (p, how) = infer(lines).unwrap();
        assert_eq!(how, PrefixChoice::Inferred);
        assert_eq!(p.text(), "<%m> pid=[%p] %quser=%u db=%d app=%a ");
        let f = p.parse(lines[1]).unwrap();
        assert_eq!(
            (f.get('u'), f.get('d'), f.get('a')),
            (Some("cdr_ro"), Some("cdrdw"), Some("psql"))
        );
        assert!(p.parse(lines[0]).is_some());
    }
}
