//! The schema file (`--schema`, YAML): read, checked, and laid over what was learnt.

use std::collections::BTreeMap;

use super::names::parent_key;
use super::{How, Schema, Table, TableKind};
use crate::sql::IdKind;

/// The `--schema` file: tables and their columns, as YAML.
///
/// ```yaml
/// cdr_tables:
///   - name: dwh.call_events
///     identifiers: {msisdn: [a_number, b_number], imsi: [imsi], imei: [imei]}
///     time: call_start_ts
///     location: [cell_gid]
/// subscriber_tables:
///   - name: crm.subscriber
///     identifiers: {msisdn: [msisdn], imsi: [imsi]}
/// country_code: "44"
/// ```
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaFile {
    #[serde(default)]
    pub cdr_tables: Vec<TableFile>,
    #[serde(default)]
    pub subscriber_tables: Vec<TableFile>,
    pub country_code: Option<String>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableFile {
    pub name: String,
    #[serde(default)]
    pub identifiers: BTreeMap<String, Vec<String>>,
    pub time: Option<String>,
    #[serde(default)]
    pub location: Vec<String>,
}

/// A schema file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SchemaFileError {
    /// Not YAML of the schema file's shape (serde_yaml's message names line and column).
    #[error("{0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("table {table}: identifier kind {kind:?} is none of msisdn, imsi, imei")]
    IdentifierKind { table: String, kind: String },
}

impl SchemaFile {
    /// Reads and checks a schema file.
    pub fn parse(text: &str) -> Result<SchemaFile, SchemaFileError> {
        let f: SchemaFile = serde_yaml::from_str(text)?;
        for t in f.cdr_tables.iter().chain(&f.subscriber_tables) {
            for k in t.identifiers.keys() {
                if !matches!(k.as_str(), "msisdn" | "imsi" | "imei") {
                    return Err(SchemaFileError::IdentifierKind {
                        table: t.name.clone(),
                        kind: k.clone(),
                    });
                }
            }
        }
        Ok(f)
    }
}

/// Replaces the tables the file names (and their partitions) with the file's.
pub(super) fn apply_given(schema: &mut Schema, g: &SchemaFile) {
    let tables = g.cdr_tables.iter().map(|t| (t, TableKind::Cdr)).chain(
        g.subscriber_tables
            .iter()
            .map(|t| (t, TableKind::Subscriber)),
    );
    for (t, kind) in tables {
        let name = t.name.to_ascii_lowercase();
        schema
            .tables
            .retain(|x| x.name != name && parent_key(&x.name) != name);
        let mut ids = Vec::new();
        for (k, cols) in &t.identifiers {
            let kind = match k.as_str() {
                "msisdn" => IdKind::Msisdn,
                "imsi" => IdKind::Imsi,
                _ => IdKind::Imei,
            };
            for c in cols {
                ids.push((c.to_ascii_lowercase(), kind, How::Given));
            }
        }
        schema.tables.push(Table {
            name,
            kind,
            ids,
            time: t
                .time
                .as_ref()
                .map(|c| (c.to_ascii_lowercase(), How::Given)),
            times: t.time.iter().map(|c| c.to_ascii_lowercase()).collect(),
            location: t.location.iter().map(|c| c.to_ascii_lowercase()).collect(),
            seen_as: Vec::new(),
            evidence: vec!["given in --schema".into()],
        });
    }
}
