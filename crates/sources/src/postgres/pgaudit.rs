//! The pgaudit payload: `AUDIT_TYPE,STATEMENT_ID,SUBSTATEMENT_ID,CLASS,COMMAND,OBJECT_TYPE,
//! OBJECT_NAME,STATEMENT,PARAMETER[,ROWS]` (some versions omit PARAMETER), CSV-quoted.

use towerwatch_event::{Event, Value};

/// One pgaudit record.
#[derive(Debug, Clone, PartialEq)]
pub struct Audit {
    pub audit_type: String,
    pub statement_id: u64,
    pub substatement_id: u64,
    pub class: String,
    pub command: String,
    pub object_type: String,
    pub object_name: String,
    pub statement: String,
    /// The PARAMETER field as logged (`<none>`, `<not logged>` or quoted CSV of values).
    pub parameter: Option<String>,
    pub rows: Option<u64>,
}

impl Audit {
    /// Adds the record's parts to an event, under the names the readers document.
    pub fn push_fields(self, e: &mut Event) {
        let num = |n: u64| Value::Number(n.to_string().into());
        e.push("audit_type", Value::text(self.audit_type));
        e.push("statement_id", num(self.statement_id));
        e.push("substatement_id", num(self.substatement_id));
        e.push("class", Value::text(self.class));
        e.push("command", Value::text(self.command));
        e.push("object_type", Value::text(self.object_type));
        e.push("object_name", Value::text(self.object_name));
        e.push("statement", Value::text(self.statement));
        if let Some(p) = self.parameter {
            e.push("parameter", Value::text(p));
        }
        if let Some(r) = self.rows {
            e.push("rows", num(r));
        }
    }
}

/// Splits one CSV record with pgaudit's quoting (`"` doubles inside quoted fields).
pub fn split_csv(s: &str) -> Vec<String> {
    let mut fields = Vec::with_capacity(10);
    let b = s.as_bytes();
    let mut i = 0;
    loop {
        if b.get(i) == Some(&b'"') {
            let mut field = String::new();
            let mut start = i + 1;
            let mut j = start;
            loop {
                match b[j..].iter().position(|&c| c == b'"').map(|p| j + p) {
                    Some(q) if b.get(q + 1) == Some(&b'"') => {
                        field.push_str(&s[start..=q]);
                        start = q + 2;
                        j = start;
                    }
                    Some(q) => {
                        field.push_str(&s[start..q]);
                        // Text after the closing quote up to the comma belongs to the field.
                        let end = s[q + 1..].find(',').map_or(s.len(), |k| q + 1 + k);
                        field.push_str(&s[q + 1..end]);
                        i = end;
                        break;
                    }
                    None => {
                        field.push_str(&s[start..]);
                        i = s.len();
                        break;
                    }
                }
            }
            fields.push(field);
        } else {
            let end = s[i..].find(',').map_or(s.len(), |k| i + k);
            fields.push(s[i..end].to_string());
            i = end;
        }
        if i >= s.len() {
            break;
        }
        i += 1; // the comma
        if i == s.len() {
            fields.push(String::new());
            break;
        }
    }
    fields
}

/// Parses the text after `AUDIT: `.
pub fn parse_audit(payload: &str) -> Result<Audit, String> {
    let f = split_csv(payload);
    if !(8..=10).contains(&f.len()) {
        return Err(format!(
            "pgaudit record with {} fields (8 to 10 expected)",
            f.len()
        ));
    }
    let num = |i: usize, what: &str| {
        f[i].parse::<u64>()
            .map_err(|_| format!("{what} {:?} is not a number", f[i]))
    };
    let rows = match f.get(9) {
        Some(r) => Some(
            r.parse::<u64>()
                .map_err(|_| format!("rows {r:?} is not a number"))?,
        ),
        None => None,
    };
    Ok(Audit {
        audit_type: f[0].clone(),
        statement_id: num(1, "statement id")?,
        substatement_id: num(2, "substatement id")?,
        class: f[3].clone(),
        command: f[4].clone(),
        object_type: f[5].clone(),
        object_name: f[6].clone(),
        statement: f[7].clone(),
        parameter: f.get(8).cloned(),
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_split_handles_quotes_and_empties() {
        assert_eq!(
            split_csv("a,,\"b,c\",\"d\"\"e\",x"),
            ["a", "", "b,c", "d\"e", "x"]
        );
        assert_eq!(split_csv(""), [""]);
        assert_eq!(split_csv("a,"), ["a", ""]);
        assert_eq!(split_csv("\"unterminated,x"), ["unterminated,x"]);
    }

    #[test]
    fn payloads_with_and_without_parameters_and_rows() {
        let a = parse_audit("SESSION,2,1,READ,SELECT,TABLE,cdr.voice_cdr,\"select a, b\",\"999700000002,2019-01-01\",12").unwrap();
        assert_eq!(a.statement, "select a, b");
        assert_eq!(a.parameter.as_deref(), Some("999700000002,2019-01-01"));
        assert_eq!(a.rows, Some(12));
        let b = parse_audit("OBJECT,1,1,READ,SELECT,TABLE,public.account,<not logged>").unwrap();
        assert_eq!((b.parameter, b.rows), (None, None));
        assert!(parse_audit("SESSION,x,1,READ").is_err());
        assert!(parse_audit("SESSION,x,1,READ,SELECT,,,select 1,<none>")
            .unwrap_err()
            .contains("statement id"));
    }
}
