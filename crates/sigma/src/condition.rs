//! The condition grammar: `and`, `or`, `not`, parentheses, `1 of x*`, `all of x*`,
//! `N of x*`, `1 of them`, `all of them`. Precedence: `not` over `and` over `or`.

use crate::pattern::{glob_match, parse_wildcards};

/// A condition over the rule's searches, by index.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Cond {
    Search(usize),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    /// At least n of the conditions.
    AtLeast(usize, Vec<Cond>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Open,
    Close,
    And,
    Or,
    Not,
    Of,
    All,
    Them,
    Num(usize),
    Ident(String),
    Pipe,
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(Tok::Open);
            }
            ')' => {
                chars.next();
                out.push(Tok::Close);
            }
            '|' => {
                chars.next();
                out.push(Tok::Pipe);
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == '(' || c == ')' || c == '|' {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                out.push(match word.to_ascii_lowercase().as_str() {
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    "not" => Tok::Not,
                    "of" => Tok::Of,
                    "all" => Tok::All,
                    "any" => Tok::Num(1),
                    "them" => Tok::Them,
                    w if w.chars().all(|c| c.is_ascii_digit()) => {
                        Tok::Num(w.parse().map_err(|_| format!("number too large: {w}"))?)
                    }
                    _ => Tok::Ident(word),
                });
            }
        }
    }
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    names: &'a [String],
}

/// Parses a condition against the rule's search names.
pub fn parse(text: &str, names: &[String]) -> Result<Cond, String> {
    let toks = lex(text)?;
    if toks.contains(&Tok::Pipe) {
        return Err("aggregation expressions after '|' (Sigma 1.x) are not supported; use correlation rules".into());
    }
    let mut p = Parser {
        toks,
        pos: 0,
        names,
    };
    let cond = p.or()?;
    if p.pos != p.toks.len() {
        return Err(format!("unexpected {:?} in condition", p.toks[p.pos]));
    }
    Ok(cond)
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn or(&mut self) -> Result<Cond, String> {
        let mut items = vec![self.and()?];
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.pop().unwrap_or(Cond::Or(vec![]))
        } else {
            Cond::Or(items)
        })
    }

    fn and(&mut self) -> Result<Cond, String> {
        let mut items = vec![self.not()?];
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            items.push(self.not()?);
        }
        Ok(if items.len() == 1 {
            items.pop().unwrap_or(Cond::And(vec![]))
        } else {
            Cond::And(items)
        })
    }

    fn not(&mut self) -> Result<Cond, String> {
        if self.peek() == Some(&Tok::Not) {
            self.pos += 1;
            return Ok(Cond::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Cond, String> {
        match self.next() {
            Some(Tok::Open) => {
                let c = self.or()?;
                match self.next() {
                    Some(Tok::Close) => Ok(c),
                    _ => Err("missing ')' in condition".into()),
                }
            }
            Some(Tok::All) => self.quantified(None),
            Some(Tok::Num(n)) => self.quantified(Some(n)),
            Some(Tok::Ident(name)) => match self.names.iter().position(|n| *n == name) {
                Some(i) => Ok(Cond::Search(i)),
                None => Err(format!(
                    "condition names '{name}', which is not a search of this rule"
                )),
            },
            Some(t) => Err(format!("unexpected {t:?} in condition")),
            None => Err("condition ends too early".into()),
        }
    }

    fn quantified(&mut self, n: Option<usize>) -> Result<Cond, String> {
        if self.next() != Some(Tok::Of) {
            return Err("expected 'of' after a quantifier".into());
        }
        let members: Vec<Cond> = match self.next() {
            Some(Tok::Them) => (0..self.names.len())
                .filter(|&i| !self.names[i].starts_with('_'))
                .map(Cond::Search)
                .collect(),
            Some(Tok::Ident(pattern)) => {
                let tokens = parse_wildcards(&pattern);
                (0..self.names.len())
                    .filter(|&i| glob_match(&tokens, &self.names[i]))
                    .map(Cond::Search)
                    .collect()
            }
            other => {
                return Err(format!(
                    "expected a search name pattern or 'them' after 'of', found {other:?}"
                ))
            }
        };
        if members.is_empty() {
            return Err("'of' pattern matches no search of this rule".into());
        }
        Ok(match n {
            None => Cond::And(members),
            Some(1) => Cond::Or(members),
            Some(0) => return Err("'0 of' is not a valid quantifier".into()),
            Some(k) => Cond::AtLeast(k, members),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        [
            "selection",
            "selection_a",
            "selection_b",
            "filter_main_x",
            "filter_optional_y",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn precedence_and_quantifiers() {
        let c = parse(
            "selection and not 1 of filter_* or all of selection_*",
            &names(),
        )
        .unwrap();
        assert_eq!(
            c,
            Cond::Or(vec![
                Cond::And(vec![
                    Cond::Search(0),
                    Cond::Not(Box::new(Cond::Or(vec![Cond::Search(3), Cond::Search(4)])))
                ]),
                Cond::And(vec![Cond::Search(1), Cond::Search(2)]),
            ])
        );
        assert_eq!(
            parse("2 of them", &names()).unwrap(),
            Cond::AtLeast(2, (0..5).map(Cond::Search).collect())
        );
        assert_eq!(parse("(selection)", &names()).unwrap(), Cond::Search(0));
    }

    #[test]
    fn errors_are_reported() {
        assert!(parse("selection and", &names()).is_err());
        assert!(parse("missing", &names()).is_err());
        assert!(parse("1 of nomatch*", &names()).is_err());
        assert!(parse("selection | count() > 5", &names()).is_err());
        assert!(parse("(selection", &names()).is_err());
    }
}
