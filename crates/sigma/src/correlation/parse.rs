//! A correlation rule's YAML into the model.

use std::collections::BTreeMap;

use serde_yaml::Value as Yaml;

use super::{Correlation, Kind, Threshold};
use crate::rule::RefusalKind;
use crate::Level;

type Refusal = (RefusalKind, String);

fn invalid(msg: impl Into<String>) -> Refusal {
    (RefusalKind::Invalid, msg.into())
}

fn text(y: &Yaml, key: &str) -> Option<String> {
    match y.get(key)? {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn strings(y: Option<&Yaml>) -> Result<Vec<String>, String> {
    match y {
        None | Some(Yaml::Null) => Ok(Vec::new()),
        Some(Yaml::String(s)) => Ok(vec![s.clone()]),
        Some(Yaml::Sequence(items)) => items
            .iter()
            .map(|i| match i {
                Yaml::String(s) => Ok(s.clone()),
                _ => Err("list item is not a string".to_string()),
            })
            .collect(),
        Some(_) => Err("not a string or a list of strings".into()),
    }
}

/// A `timespan` that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimespanError {
    #[error("timespan '{0}' has no unit (s, m, h, d)")]
    NoUnit(String),
    #[error("timespan '{0}' does not start with a number")]
    NoNumber(String),
    #[error("timespan '{0}': unknown unit '{1}'")]
    UnknownUnit(String, String),
    #[error("timespan '{0}' is empty")]
    Empty(String),
    #[error("timespan '{0}' is too long")]
    TooLong(String),
}

/// `30s`, `5m`, `2h`, `1d` (and `1w`, `1M`, `1y`, which some rule sets use) in milliseconds.
pub fn parse_timespan(s: &str) -> Result<i64, TimespanError> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| TimespanError::NoUnit(s.into()))?;
    let (number, unit) = s.split_at(split);
    let n: i64 = number
        .parse()
        .map_err(|_| TimespanError::NoNumber(s.into()))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "M" => 30 * 86_400,
        "y" => 365 * 86_400,
        _ => return Err(TimespanError::UnknownUnit(s.into(), unit.into())),
    };
    if n == 0 {
        return Err(TimespanError::Empty(s.into()));
    }
    n.checked_mul(seconds * 1000)
        .ok_or_else(|| TimespanError::TooLong(s.into()))
}

/// Parses a YAML document that has a `correlation` section.
pub(crate) fn parse(y: &Yaml, path: &str) -> Result<Correlation, Refusal> {
    let section = y
        .get("correlation")
        .ok_or_else(|| invalid("no 'correlation'"))?;
    if !section.is_mapping() {
        return Err(invalid("'correlation' is not a mapping"));
    }
    let title = text(y, "title").ok_or_else(|| invalid("missing 'title'"))?;
    let kind = match text(section, "type").as_deref() {
        Some("event_count") => Kind::EventCount,
        Some("value_count") => Kind::ValueCount,
        Some("temporal") => Kind::Temporal,
        Some("temporal_ordered") => Kind::TemporalOrdered,
        Some("value_sum") => Kind::ValueSum,
        Some("value_avg") => Kind::ValueAvg,
        Some("value_percentile") => Kind::ValuePercentile,
        Some(t) => return Err(invalid(format!("unknown correlation type '{t}'"))),
        None => return Err(invalid("correlation has no 'type'")),
    };
    let rules = strings(section.get("rules")).map_err(|m| invalid(format!("'rules': {m}")))?;
    if rules.is_empty() {
        return Err(invalid("correlation refers to no rules"));
    }
    let group_by =
        strings(section.get("group-by")).map_err(|m| invalid(format!("'group-by': {m}")))?;
    let timespan = text(section, "timespan")
        .or_else(|| text(section, "timeframe"))
        .ok_or_else(|| invalid("correlation has no 'timespan'"))?;
    let timespan_ms = parse_timespan(&timespan).map_err(|e| invalid(e.to_string()))?;
    let mut condition = Vec::new();
    let mut field = text(section, "field");
    match section.get("condition") {
        None | Some(Yaml::Null) => {}
        Some(Yaml::Mapping(m)) => {
            for (k, v) in m {
                let key = k.as_str().unwrap_or("");
                if key == "field" {
                    field = v.as_str().map(String::from);
                    continue;
                }
                let n = v
                    .as_f64()
                    .filter(|n| n.is_finite())
                    .ok_or_else(|| invalid(format!("condition '{key}' is not a number")))?;
                condition.push(match key {
                    "gt" => Threshold::Gt(n),
                    "gte" => Threshold::Gte(n),
                    "lt" => Threshold::Lt(n),
                    "lte" => Threshold::Lte(n),
                    "eq" => Threshold::Eq(n),
                    "neq" => Threshold::Neq(n),
                    _ => return Err(invalid(format!("unknown condition operator '{key}'"))),
                });
            }
        }
        Some(_) => return Err(invalid("correlation 'condition' is not a mapping")),
    }
    let counts = matches!(kind, Kind::EventCount | Kind::ValueCount);
    if (counts || kind.is_metric()) && condition.is_empty() {
        return Err(invalid(format!("{} needs a condition", kind.name())));
    }
    if kind.needs_field() && field.is_none() {
        return Err(invalid(format!(
            "{} needs the 'field' it measures",
            kind.name()
        )));
    }
    let mut aliases = BTreeMap::new();
    if let Some(a) = section.get("aliases") {
        let Yaml::Mapping(a) = a else {
            return Err(invalid("'aliases' is not a mapping"));
        };
        for (alias, map) in a {
            let alias = alias
                .as_str()
                .ok_or_else(|| invalid("alias name is not a string"))?;
            let Yaml::Mapping(map) = map else {
                return Err(invalid(format!("alias '{alias}' is not a mapping")));
            };
            let mut fields = BTreeMap::new();
            for (rule, f) in map {
                match (rule.as_str(), f.as_str()) {
                    (Some(r), Some(f)) => fields.insert(r.to_string(), f.to_string()),
                    _ => return Err(invalid(format!("alias '{alias}': not rule: field"))),
                };
            }
            aliases.insert(alias.to_string(), fields);
        }
    }
    let generate = match section.get("generate").or_else(|| y.get("generate")) {
        None => false,
        Some(Yaml::Bool(b)) => *b,
        Some(_) => return Err(invalid("'generate' is not true or false")),
    };
    let level = match text(y, "level") {
        Some(l) => l.parse().map_err(invalid)?,
        None => Level::Medium,
    };
    Ok(Correlation {
        id: text(y, "id").unwrap_or_default(),
        name: text(y, "name"),
        title,
        status: text(y, "status"),
        level,
        description: text(y, "description"),
        tags: strings(y.get("tags")).unwrap_or_default(),
        kind,
        rules,
        group_by,
        timespan_ms,
        condition,
        field,
        aliases,
        generate,
        path: path.to_string(),
        line: 1,
    })
}
