//! What a statement reads, from its SQL (PostgreSQL dialect, `sqlparser`): the tables, the
//! subscriber identifiers its predicates name (literals, `IN` lists, bind parameters), the
//! bounds on the CDR time column, whether it projects location columns, aggregates, or exports
//! (`COPY … TO`). Analyses are cached by statement text: applications repeat a few texts.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use sqlparser::ast::{
    BinaryOperator, CopySource, Expr, InTarget, Query, SelectItem, SetExpr, Statement, Value,
};
use sqlparser::dialect::{GenericDialect, MsSqlDialect, PostgreSqlDialect};
use sqlparser::parser::Parser;

/// What kind of subscriber identifier a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IdKind {
    Msisdn,
    Imsi,
    Imei,
}

/// A value in a predicate: a literal, or bind parameter `$n` (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    Literal(String),
    Param(usize),
}

/// The schema knowledge the analysis needs: which tables hold CDRs and which columns are
/// identifiers, times and locations.
#[derive(Debug, Clone)]
pub struct Schema {
    /// CDR tables by unqualified name (`voice_cdr`); partitions `voice_cdr_2019_03` match.
    pub cdr_tables: Vec<String>,
    pub id_columns: Vec<(String, IdKind)>,
    pub time_column: String,
    pub location_columns: Vec<String>,
}

impl Default for Schema {
    fn default() -> Self {
        Schema {
            cdr_tables: ["voice_cdr", "sms_cdr", "data_cdr"]
                .map(String::from)
                .to_vec(),
            id_columns: vec![
                ("served_msisdn".into(), IdKind::Msisdn),
                ("calling_number".into(), IdKind::Msisdn),
                ("called_number".into(), IdKind::Msisdn),
                ("served_imsi".into(), IdKind::Imsi),
                ("served_imei".into(), IdKind::Imei),
            ],
            time_column: "start_time".into(),
            location_columns: [
                "cell_id",
                "lac_tac",
                "user_location_information",
                "ecgi",
                "location",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

impl Schema {
    /// The CDR table a relation name refers to, if any (`cdr.voice_cdr_2019_03` → `voice_cdr`).
    pub fn cdr_table(&self, relation: &str) -> Option<&str> {
        let name = relation
            .rsplit('.')
            .next()
            .unwrap_or(relation)
            .trim_matches('"')
            .to_ascii_lowercase();
        self.cdr_tables
            .iter()
            .find(|t| {
                name == **t
                    || name.strip_prefix(t.as_str()).is_some_and(|rest| {
                        rest.starts_with('_')
                            && rest[1..].bytes().all(|b| b.is_ascii_digit() || b == b'_')
                    })
            })
            .map(String::as_str)
    }

    fn id_kind(&self, column: &str) -> Option<IdKind> {
        self.id_columns
            .iter()
            .find(|(c, _)| c == column)
            .map(|(_, k)| *k)
    }
}

/// The analysis of one statement text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Analysis {
    /// CDR tables read (unqualified names).
    pub cdr_tables: Vec<String>,
    /// Identifier predicates: column kind, column, operand.
    pub ids: Vec<(IdKind, String, Operand)>,
    /// Lower and upper bounds on the time column (`>=`/`>`/`BETWEEN` and `<`/`<=`).
    pub from: Option<Operand>,
    pub to: Option<Operand>,
    pub projects_location: bool,
    pub aggregates: bool,
    /// `COPY … TO` (a file, a program or the client).
    pub export: bool,
    /// `LIKE` on an identifier column (a prefix scan over many subscribers).
    pub id_pattern: bool,
}

/// Whether a statement changes auditing (`pgaudit.*` settings, `DROP EXTENSION pgaudit`,
/// `log_statement`): decided on the text, since `ALTER SYSTEM` and friends need not parse.
pub fn changes_auditing(sql: &str) -> bool {
    let l = sql.to_ascii_lowercase();
    let verb = l.split_whitespace().next().unwrap_or("");
    (l.contains("pgaudit") || l.contains("log_statement"))
        && (matches!(verb, "alter" | "drop" | "set" | "reset") || l.contains("set_config"))
}

/// Why a statement could not be analysed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("unparsable SQL: {0}")]
pub struct Unparsable(pub String);

/// Analyses statements, caching by text.
pub struct Analyzer {
    schema: Schema,
    cache: HashMap<Box<str>, Result<Arc<Analysis>, Unparsable>>,
}

const CACHE_LIMIT: usize = 20_000;

impl Analyzer {
    pub fn new(schema: Schema) -> Analyzer {
        Analyzer {
            schema,
            cache: HashMap::new(),
        }
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    pub fn analyse(&mut self, sql: &str) -> Result<Arc<Analysis>, Unparsable> {
        if let Some(hit) = self.cache.get(sql) {
            return hit.clone();
        }
        let result = analyse(&self.schema, sql).map(Arc::new);
        if self.cache.len() >= CACHE_LIMIT {
            self.cache.clear();
        }
        self.cache.insert(sql.into(), result.clone());
        result
    }
}

fn analyse(schema: &Schema, sql: &str) -> Result<Analysis, Unparsable> {
    let mut a = Analysis::default();
    let statements =
        // PostgreSQL first; T-SQL and others (SQL Server and Oracle audit exports) next.
        Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .or_else(|e| Parser::parse_sql(&MsSqlDialect {}, sql).map_err(|_| e))
            .or_else(|e| Parser::parse_sql(&GenericDialect {}, sql).map_err(|_| e))
            .map_err(|e| Unparsable(e.to_string()))?;
    let _ = sqlparser::ast::visit_relations(&statements, |rel| {
        if let Some(t) = schema.cdr_table(&rel.to_string()) {
            if !a.cdr_tables.iter().any(|x| x == t) {
                a.cdr_tables.push(t.to_string());
            }
        }
        ControlFlow::<()>::Continue(())
    });
    for st in &statements {
        match st {
            Statement::Copy { source, to, .. } => {
                a.export |= *to;
                match source {
                    CopySource::Table { table_name, .. } => {
                        if let Some(t) = schema.cdr_table(&table_name.to_string()) {
                            if !a.cdr_tables.iter().any(|x| x == t) {
                                a.cdr_tables.push(t.to_string());
                            }
                        }
                        a.projects_location = true;
                    }
                    CopySource::Query(q) => projection(schema, q, &mut a),
                }
            }
            Statement::Query(q) => projection(schema, q, &mut a),
            _ => {}
        }
    }
    let _ = sqlparser::ast::visit_expressions(&statements, |e| {
        predicate(schema, e, &mut a);
        ControlFlow::<()>::Continue(())
    });
    Ok(a)
}

fn projection(schema: &Schema, q: &Query, a: &mut Analysis) {
    if let SetExpr::Select(select) = &*q.body {
        for item in &select.projection {
            match item {
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                    a.projects_location = true
                }
                SelectItem::UnnamedExpr(e)
                | SelectItem::ExprWithAlias { expr: e, .. }
                | SelectItem::ExprWithAliases { expr: e, .. } => {
                    if let Some(c) = column(e) {
                        a.projects_location |= schema.location_columns.contains(&c);
                    }
                    if let Expr::Function(f) = e {
                        let name = f.name.to_string().to_ascii_lowercase();
                        a.aggregates |=
                            matches!(name.as_str(), "count" | "sum" | "avg" | "min" | "max");
                    }
                }
            }
        }
        a.aggregates |= !matches!(select.group_by, sqlparser::ast::GroupByExpr::Expressions(ref v, _) if v.is_empty());
    }
}

/// The column an expression names (the last part of a compound identifier, lowercased).
fn column(e: &Expr) -> Option<String> {
    match e {
        Expr::Identifier(i) => Some(i.value.to_ascii_lowercase()),
        Expr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.to_ascii_lowercase()),
        Expr::Nested(inner) => column(inner),
        Expr::Cast { expr, .. } => column(expr),
        _ => None,
    }
}

/// A literal or parameter operand (through casts and parentheses).
fn operand(e: &Expr) -> Option<Operand> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::Number(s, _) | Value::DoubleQuotedString(s) => {
                Some(Operand::Literal(s.clone()))
            }
            // `$1` (PostgreSQL) and `:1` (Oracle) are positional parameters.
            Value::Placeholder(p) => p
                .strip_prefix(['$', ':'])
                .and_then(|n| n.parse().ok())
                .map(Operand::Param),
            _ => None,
        },
        Expr::Cast { expr, .. } | Expr::Nested(expr) => operand(expr),
        Expr::TypedString(ts) => match &ts.value.value {
            Value::SingleQuotedString(s) => Some(Operand::Literal(s.clone())),
            _ => None,
        },
        _ => None,
    }
}

fn predicate(schema: &Schema, e: &Expr, a: &mut Analysis) {
    let time = schema.time_column.as_str();
    match e {
        Expr::In {
            expr,
            target: InTarget::List(list),
            negated: false,
            ..
        } => {
            if let Some(c) = column(expr) {
                if let Some(kind) = schema.id_kind(&c) {
                    for item in list {
                        if let Some(o) = operand(item) {
                            a.ids.push((kind, c.clone(), o));
                        }
                    }
                }
            }
        }
        Expr::BinaryOp { left, op, right } => {
            let (col, val, flipped) = match (column(left), operand(right)) {
                (Some(c), Some(v)) => (c, v, false),
                _ => match (column(right), operand(left)) {
                    (Some(c), Some(v)) => (c, v, true),
                    _ => return,
                },
            };
            if let Some(kind) = schema.id_kind(&col) {
                if *op == BinaryOperator::Eq {
                    a.ids.push((kind, col, val));
                }
            } else if col == time {
                let lower = matches!(op, BinaryOperator::Gt | BinaryOperator::GtEq) != flipped;
                let upper = matches!(op, BinaryOperator::Lt | BinaryOperator::LtEq) != flipped;
                if matches!(
                    op,
                    BinaryOperator::Gt
                        | BinaryOperator::GtEq
                        | BinaryOperator::Lt
                        | BinaryOperator::LtEq
                ) {
                    if lower {
                        a.from = Some(val);
                    } else if upper {
                        a.to = Some(val);
                    }
                }
            }
        }
        Expr::Between {
            expr,
            negated: false,
            low,
            high,
        } if column(expr).as_deref() == Some(time) => {
            a.from = operand(low).or(a.from.take());
            a.to = operand(high).or(a.to.take());
        }
        Expr::Like { expr, .. } | Expr::ILike { expr, .. }
            if column(expr).is_some_and(|c| schema.id_kind(&c).is_some()) =>
        {
            a.id_pattern = true;
        }
        Expr::AnyOp { left, right, .. } => {
            if let (Some(c), Some(o)) = (column(left), operand(right)) {
                if let Some(kind) = schema.id_kind(&c) {
                    a.ids.push((kind, c, o));
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn an(sql: &str) -> Analysis {
        analyse(&Schema::default(), sql).unwrap()
    }

    #[test]
    fn targeted_select_with_literals() {
        let a = an("select start_time, cell_id from cdr.voice_cdr where served_msisdn in ('999700000001', '999700000002') and start_time >= '2017-03-06' order by 1;");
        assert_eq!(a.cdr_tables, ["voice_cdr"]);
        assert_eq!(a.ids.len(), 2);
        assert_eq!(
            a.ids[0],
            (
                IdKind::Msisdn,
                "served_msisdn".into(),
                Operand::Literal("999700000001".into())
            )
        );
        assert_eq!(a.from, Some(Operand::Literal("2017-03-06".into())));
        assert_eq!(a.to, None);
        assert!(a.projects_location && !a.export && !a.aggregates);
    }

    #[test]
    fn parameters_through_casts_and_between() {
        let a = an("SELECT a FROM cdr.sms_cdr WHERE served_msisdn = $1 AND start_time >= $2::timestamptz AND start_time < $3::timestamptz");
        assert_eq!(
            a.ids,
            vec![(IdKind::Msisdn, "served_msisdn".into(), Operand::Param(1))]
        );
        assert_eq!(
            (a.from, a.to),
            (Some(Operand::Param(2)), Some(Operand::Param(3)))
        );
        assert!(!a.projects_location);
        let b = an("select * from cdr.voice_cdr_2019_03 v where v.served_imsi = '001010000000001' and v.start_time between '2019-01-01' and '2019-02-01'");
        assert_eq!(b.cdr_tables, ["voice_cdr"]);
        assert_eq!(b.ids[0].0, IdKind::Imsi);
        assert_eq!(b.to, Some(Operand::Literal("2019-02-01".into())));
    }

    #[test]
    fn exports_aggregates_and_audit_changes() {
        let c = an("COPY (select * from cdr.voice_cdr where served_msisdn in ('1') and start_time >= '2017-03-06') TO STDOUT WITH CSV HEADER");
        assert!(c.export && c.projects_location);
        assert_eq!(c.ids.len(), 1);
        let d = an("COPY cdr.voice_cdr (record_id, apn) TO stdout;");
        assert!(d.export && d.ids.is_empty());
        assert_eq!(d.cdr_tables, ["voice_cdr"]);
        let e = an("SELECT served_msisdn, count(*) FROM cdr.voice_cdr WHERE start_time >= $1::timestamptz GROUP BY served_msisdn");
        assert!(e.aggregates);
        let f = an("COPY cdr.voice_cdr (record_id) FROM STDIN WITH (FORMAT csv)");
        assert!(!f.export);
        assert!(changes_auditing("ALTER SYSTEM SET pgaudit.log = 'none'"));
        assert!(changes_auditing("drop extension pgaudit"));
        assert!(!changes_auditing("select * from pgaudit_history"));
        assert!(an("select 1 from cdr.voice_cdr where called_number like '99970%'").id_pattern);
        assert!(analyse(&Schema::default(), "selec * frm").is_err());
        let t = an("SELECT TOP 100 * FROM cdr.voice_cdr WHERE served_msisdn = :1");
        assert_eq!(
            t.ids,
            vec![(IdKind::Msisdn, "served_msisdn".into(), Operand::Param(1))]
        );
    }
}
