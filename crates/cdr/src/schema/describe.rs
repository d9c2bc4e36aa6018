//! The schema in words, so an analyst can check what was used and how each part was learnt.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Schema, TableKind};
use crate::sql::IdKind;

impl Schema {
    /// The schema in words, one table a line.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        if self.tables.is_empty() {
            let _ = writeln!(s, "  no CDR or subscriber table recognised");
        }
        for t in &self.tables {
            let kind = match t.kind {
                TableKind::Cdr => "CDR table",
                TableKind::Subscriber => "subscriber table",
            };
            let mut by_kind: BTreeMap<IdKind, Vec<String>> = BTreeMap::new();
            for (c, k, how) in &t.ids {
                by_kind
                    .entry(*k)
                    .or_default()
                    .push(format!("{c} ({})", how.say()));
            }
            let ids: Vec<String> = by_kind
                .iter()
                .map(|(k, cols)| format!("{} {}", k.name(), cols.join(", ")))
                .collect();
            let _ = write!(s, "  {kind} {}", t.name);
            if !t.seen_as.is_empty() {
                let shown: Vec<&str> = t.seen_as.iter().take(4).map(String::as_str).collect();
                let more = t.seen_as.len().saturating_sub(4);
                let _ = write!(
                    s,
                    " (also {}{})",
                    shown.join(", "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                );
            }
            let _ = write!(
                s,
                ": {}",
                if ids.is_empty() {
                    "no identifier column".into()
                } else {
                    ids.join("; ")
                }
            );
            if let Some((c, how)) = &t.time {
                let _ = write!(s, "; time {c} ({})", how.say());
            }
            if !t.location.is_empty() {
                let _ = write!(s, "; location {}", t.location.join(", "));
            }
            let _ = writeln!(s, " — {}", t.evidence.join(", "));
        }
        for c in &self.candidates {
            let _ = writeln!(
                s,
                "  candidate: {}.{} compared with {} {}-shaped literal{} (not a known CDR or subscriber table)",
                c.relation,
                c.column,
                c.literals,
                c.kind.name(),
                if c.literals == 1 { "" } else { "s" }
            );
        }
        match &self.numbering.country_code {
            Some(cc) => {
                let _ = writeln!(
                    s,
                    "  national numbers: country code {cc} ({})",
                    self.numbering.how
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    "  national numbers: no country code ({})",
                    self.numbering.how
                );
            }
        }
        s
    }
}
