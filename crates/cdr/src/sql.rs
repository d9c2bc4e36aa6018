//! What a statement says, read from its SQL (`sqlparser`; PostgreSQL first, then T-SQL and
//! generic SQL for Oracle and SQL Server audit exports) without knowing any schema: the
//! relations it names (with their aliases), every comparison of a column with literals or
//! bind parameters, the columns it projects, joins between columns, whether it aggregates or
//! exports (`COPY … TO`), and what a load writes (`COPY t (cols) FROM`, `INSERT INTO t
//! (cols)`) or a DDL declares (`PARTITION OF`, `INHERITS`). [`crate::schema`] decides which
//! of those relations hold CDRs and which columns are identifiers; facts are cached by text,
//! since applications repeat a few statements.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use sqlparser::ast::{
    BinaryOperator, CopySource, Expr, InTarget, ObjectName, Query, SelectItem, SetExpr, Statement,
    TableFactor, TableObject, Value, Visit, Visitor,
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

impl IdKind {
    pub fn name(self) -> &'static str {
        match self {
            IdKind::Msisdn => "msisdn",
            IdKind::Imsi => "imsi",
            IdKind::Imei => "imei",
        }
    }
}

/// A value in a predicate: a literal, or bind parameter `$n` / `:n` (1-based).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Operand {
    Literal(String),
    Param(usize),
}

/// How a column is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compare {
    /// `=`, `IN (…)`, `= ANY(…)`.
    Equals,
    /// `>`, `>=`, the low end of `BETWEEN`.
    Lower,
    /// `<`, `<=`, the high end of `BETWEEN`.
    Upper,
    /// `LIKE` / `ILIKE`: a pattern over many values.
    Pattern,
}

/// A column, with the relation its qualifier (or the statement's only relation) names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Column {
    /// The relation as written, lowercased and unquoted (`dwh.call_events_2024_05`); `None`
    /// when the statement names several and the column is not qualified.
    pub relation: Option<String>,
    pub name: String,
}

/// One comparison of a column with values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Predicate {
    pub column: Column,
    pub compare: Compare,
    pub operands: Vec<Operand>,
}

/// Everything the analytics need from one statement text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// Relations read or written, lowercased and unquoted, as written (schema included).
    pub relations: Vec<String>,
    pub predicates: Vec<Predicate>,
    /// Columns the statement returns.
    pub projected: Vec<Column>,
    /// `*`, `t.*`, or a whole-table `COPY … TO`.
    pub wildcard: bool,
    pub aggregates: bool,
    /// `COPY … TO` (a file, a program or the client).
    pub export: bool,
    /// What a load writes: the relation and the columns it lists.
    pub load: Option<(String, Vec<String>)>,
    /// Columns compared with columns (joins).
    pub joins: Vec<(Column, Column)>,
    /// `CREATE TABLE child PARTITION OF parent` / `INHERITS (parent)`.
    pub child_of: Option<(String, String)>,
}

impl Facts {
    /// Literal operands compared to a column (for discovery).
    pub fn literals(&self) -> impl Iterator<Item = (&Column, Compare, &str)> {
        self.predicates.iter().flat_map(|p| {
            p.operands.iter().filter_map(move |o| match o {
                Operand::Literal(s) => Some((&p.column, p.compare, s.as_str())),
                Operand::Param(_) => None,
            })
        })
    }
}

/// Whether a statement changes auditing (`pgaudit.*` settings, `DROP EXTENSION pgaudit`,
/// `log_statement`, Oracle's `NOAUDIT`, SQL Server audit state): decided on the text, since
/// `ALTER SYSTEM` and friends need not parse.
pub fn changes_auditing(sql: &str) -> bool {
    let l = sql.to_ascii_lowercase();
    let verb = l.split_whitespace().next().unwrap_or("");
    ((l.contains("pgaudit") || l.contains("log_statement"))
        && (matches!(verb, "alter" | "drop" | "set" | "reset") || l.contains("set_config")))
        || verb == "noaudit"
        || (l.contains("server audit") && l.contains("state") && l.contains("off"))
}

/// Why a statement could not be analysed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("unparsable SQL: {0}")]
pub struct Unparsable(pub String);

/// Relation names as the analytics compare them: lowercased, quotes and brackets removed.
pub fn relation_name(name: &ObjectName) -> String {
    name.0
        .iter()
        .map(|p| {
            p.to_string()
                .trim_matches(|c| c == '"' || c == '[' || c == ']' || c == '`')
                .to_ascii_lowercase()
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Reads statements, caching facts by text.
#[derive(Default)]
pub struct Reader {
    cache: HashMap<Box<str>, Result<Arc<Facts>, Unparsable>>,
}

const CACHE_LIMIT: usize = 20_000;

impl Reader {
    pub fn facts(&mut self, sql: &str) -> Result<Arc<Facts>, Unparsable> {
        if let Some(hit) = self.cache.get(sql) {
            return hit.clone();
        }
        let result = facts(sql).map(Arc::new);
        if self.cache.len() >= CACHE_LIMIT {
            self.cache.clear();
        }
        self.cache.insert(sql.into(), result.clone());
        result
    }
}

/// Tables and their aliases in a statement.
#[derive(Default)]
struct Tables {
    names: Vec<String>,
    aliases: HashMap<String, String>,
}

impl Visitor for Tables {
    type Break = ();
    fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, alias, .. } = t {
            let n = relation_name(name);
            if let Some(a) = alias {
                self.aliases
                    .insert(a.name.value.to_ascii_lowercase(), n.clone());
            }
            // The bare table name is its own alias too (`voice_cdr.start_time`).
            if let Some(last) = n.rsplit('.').next() {
                self.aliases.entry(last.to_string()).or_insert(n.clone());
            }
            if !self.names.contains(&n) {
                self.names.push(n);
            }
        }
        ControlFlow::Continue(())
    }
}

/// Parses a statement text into its facts.
pub fn facts(sql: &str) -> Result<Facts, Unparsable> {
    let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .or_else(|e| Parser::parse_sql(&MsSqlDialect {}, sql).map_err(|_| e))
        .or_else(|e| Parser::parse_sql(&GenericDialect {}, sql).map_err(|_| e))
        .map_err(|e| Unparsable(e.to_string()))?;
    let mut tables = Tables::default();
    let _ = statements.visit(&mut tables);
    let mut f = Facts::default();
    let add_relation = |f: &mut Facts, n: String| {
        if !f.relations.contains(&n) {
            f.relations.push(n);
        }
    };
    for n in &tables.names {
        add_relation(&mut f, n.clone());
    }
    let only = (tables.names.len() == 1).then(|| tables.names[0].clone());
    let resolve = |parts: &[String]| -> Option<Column> {
        let (qualifier, name) = match parts {
            [] => return None,
            [name] => (None, name.clone()),
            [.., q, name] => (Some(q.clone()), name.clone()),
        };
        let relation = match qualifier {
            Some(q) => Some(tables.aliases.get(&q).cloned().unwrap_or(q)),
            None => only.clone(),
        };
        Some(Column { relation, name })
    };
    for st in &statements {
        match st {
            Statement::Copy {
                source, to, target, ..
            } => {
                let _ = target;
                match source {
                    CopySource::Table {
                        table_name,
                        columns,
                    } => {
                        let n = relation_name(table_name);
                        add_relation(&mut f, n.clone());
                        if *to {
                            f.export = true;
                            f.wildcard |= columns.is_empty();
                            for c in columns {
                                f.projected.push(Column {
                                    relation: Some(n.clone()),
                                    name: c.value.to_ascii_lowercase(),
                                });
                            }
                        } else {
                            f.load = Some((
                                n,
                                columns
                                    .iter()
                                    .map(|c| c.value.to_ascii_lowercase())
                                    .collect(),
                            ));
                        }
                    }
                    CopySource::Query(q) => {
                        f.export |= *to;
                        projection(q, &resolve, &mut f);
                    }
                }
            }
            Statement::Query(q) => projection(q, &resolve, &mut f),
            Statement::Insert(ins) => {
                if let TableObject::TableName(name) = &ins.table {
                    let n = relation_name(name);
                    add_relation(&mut f, n.clone());
                    f.load = Some((
                        n,
                        ins.columns
                            .iter()
                            .map(|c| c.to_string().trim_matches('"').to_ascii_lowercase())
                            .collect(),
                    ));
                }
            }
            Statement::CreateTable(ct) => {
                let child = relation_name(&ct.name);
                let parent = ct
                    .partition_of
                    .as_ref()
                    .or_else(|| ct.inherits.as_ref().and_then(|v| v.first()));
                if let Some(p) = parent {
                    f.child_of = Some((child, relation_name(p)));
                }
            }
            _ => {}
        }
    }
    let mut preds = Vec::new();
    let mut joins = Vec::new();
    let _ = sqlparser::ast::visit_expressions(&statements, |e| {
        predicate(e, &resolve, &mut preds, &mut joins);
        ControlFlow::<()>::Continue(())
    });
    f.predicates = preds;
    f.joins = joins;
    Ok(f)
}

fn projection(q: &Query, resolve: &dyn Fn(&[String]) -> Option<Column>, f: &mut Facts) {
    let SetExpr::Select(select) = &*q.body else {
        return;
    };
    for item in &select.projection {
        match item {
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => f.wildcard = true,
            SelectItem::UnnamedExpr(e)
            | SelectItem::ExprWithAlias { expr: e, .. }
            | SelectItem::ExprWithAliases { expr: e, .. } => {
                if let Some(c) = column_parts(e).and_then(|p| resolve(&p)) {
                    f.projected.push(c);
                }
                if let Expr::Function(func) = e {
                    let name = func.name.to_string().to_ascii_lowercase();
                    f.aggregates |=
                        matches!(name.as_str(), "count" | "sum" | "avg" | "min" | "max");
                }
            }
        }
    }
    f.aggregates |= !matches!(select.group_by, sqlparser::ast::GroupByExpr::Expressions(ref v, _) if v.is_empty());
}

/// The parts of a column reference (qualifiers and name, lowercased; through casts and
/// parentheses; a function of one column such as `trim(msisdn)` names that column).
fn column_parts(e: &Expr) -> Option<Vec<String>> {
    match e {
        Expr::Identifier(i) => Some(vec![i.value.to_ascii_lowercase()]),
        Expr::CompoundIdentifier(parts) => {
            Some(parts.iter().map(|i| i.value.to_ascii_lowercase()).collect())
        }
        Expr::Nested(inner) => column_parts(inner),
        Expr::Cast { expr, .. } => column_parts(expr),
        _ => None,
    }
}

/// A literal or parameter operand (through casts and parentheses).
fn operand(e: &Expr) -> Option<Operand> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s)
            | Value::Number(s, _)
            | Value::DoubleQuotedString(s)
            | Value::NationalStringLiteral(s)
            | Value::EscapedStringLiteral(s) => Some(Operand::Literal(s.clone())),
            // `$1` (PostgreSQL), `:1` (Oracle) and `@P1` (SQL Server) are positional.
            Value::Placeholder(p) => p
                .trim_start_matches(['$', ':', '@'])
                .trim_start_matches(['P', 'p'])
                .parse()
                .ok()
                .map(Operand::Param),
            _ => None,
        },
        Expr::Cast { expr, .. } | Expr::Nested(expr) => operand(expr),
        Expr::TypedString(ts) => match &ts.value.value {
            Value::SingleQuotedString(s) => Some(Operand::Literal(s.clone())),
            _ => None,
        },
        Expr::UnaryOp { expr, .. } => operand(expr),
        _ => None,
    }
}

fn predicate(
    e: &Expr,
    resolve: &dyn Fn(&[String]) -> Option<Column>,
    out: &mut Vec<Predicate>,
    joins: &mut Vec<(Column, Column)>,
) {
    let col = |x: &Expr| column_parts(x).and_then(|p| resolve(&p));
    let mut push = |column: Column, compare: Compare, operands: Vec<Operand>| {
        if !operands.is_empty() {
            out.push(Predicate {
                column,
                compare,
                operands,
            });
        }
    };
    match e {
        Expr::In {
            expr,
            target: InTarget::List(list),
            negated: false,
            ..
        } => {
            if let Some(c) = col(expr) {
                push(
                    c,
                    Compare::Equals,
                    list.iter().filter_map(operand).collect(),
                );
            }
        }
        Expr::BinaryOp { left, op, right } => {
            if let (Some(a), Some(b)) = (col(left), col(right)) {
                if *op == BinaryOperator::Eq {
                    joins.push((a, b));
                }
                return;
            }
            let (c, v, flipped) = match (col(left), operand(right)) {
                (Some(c), Some(v)) => (c, v, false),
                _ => match (col(right), operand(left)) {
                    (Some(c), Some(v)) => (c, v, true),
                    _ => return,
                },
            };
            let compare = match op {
                BinaryOperator::Eq => Compare::Equals,
                BinaryOperator::Gt | BinaryOperator::GtEq => {
                    if flipped {
                        Compare::Upper
                    } else {
                        Compare::Lower
                    }
                }
                BinaryOperator::Lt | BinaryOperator::LtEq => {
                    if flipped {
                        Compare::Lower
                    } else {
                        Compare::Upper
                    }
                }
                _ => return,
            };
            push(c, compare, vec![v]);
        }
        Expr::Between {
            expr,
            negated: false,
            low,
            high,
        } => {
            if let Some(c) = col(expr) {
                push(
                    c.clone(),
                    Compare::Lower,
                    operand(low).into_iter().collect(),
                );
                push(c, Compare::Upper, operand(high).into_iter().collect());
            }
        }
        Expr::Like { expr, pattern, .. } | Expr::ILike { expr, pattern, .. } => {
            if let Some(c) = col(expr) {
                push(c, Compare::Pattern, operand(pattern).into_iter().collect());
            }
        }
        Expr::AnyOp { left, right, .. } => {
            if let Some(c) = col(left) {
                // `= ANY($1)`, `= ANY(ARRAY['a','b'])`, `= ANY('{a,b}'::text[])`.
                let operands = match &**right {
                    Expr::Array(a) => a.elem.iter().filter_map(operand).collect(),
                    Expr::Nested(inner) if matches!(&**inner, Expr::Array(_)) => match &**inner {
                        Expr::Array(a) => a.elem.iter().filter_map(operand).collect(),
                        _ => Vec::new(),
                    },
                    other => match operand(other) {
                        Some(Operand::Literal(l)) if l.starts_with('{') && l.ends_with('}') => l
                            [1..l.len() - 1]
                            .split(',')
                            .map(|v| Operand::Literal(v.trim().trim_matches('"').to_string()))
                            .filter(|o| !matches!(o, Operand::Literal(v) if v.is_empty()))
                            .collect(),
                        other => other.into_iter().collect(),
                    },
                };
                push(c, Compare::Equals, operands);
            }
        }
        _ => {}
    }
}

/// The statement with literals, numbers and parameters masked and whitespace folded.
pub fn fingerprint(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut space = false;
    while let Some(c) = chars.next() {
        if space && !c.is_whitespace() && !out.is_empty() {
            out.push(' ');
        }
        if !c.is_whitespace() {
            space = false;
        }
        match c {
            '\'' => {
                while let Some(d) = chars.next() {
                    if d == '\'' {
                        if chars.peek() == Some(&'\'') {
                            chars.next();
                        } else {
                            break;
                        }
                    }
                }
                out.push('?');
            }
            '$' | '0'..='9' if !out.ends_with(|p: char| p.is_ascii_alphanumeric() || p == '_') => {
                while chars
                    .peek()
                    .is_some_and(|d| d.is_ascii_digit() || *d == '.')
                {
                    chars.next();
                }
                out.push('?');
            }
            c if c.is_whitespace() => space = true,
            c => out.push(c.to_ascii_lowercase()),
        }
    }
    out
}

/// The fingerprint with date-like digit runs inside names masked too, so that a nightly job
/// over the day's partition (`usage_event20190311`, `calls_2019_03`) keeps one shape.
pub fn shape(sql: &str) -> String {
    let fp = fingerprint(sql);
    let mut out = String::with_capacity(fp.len());
    let mut digits = String::new();
    let flush = |out: &mut String, digits: &mut String| {
        if digits.len() >= 2 && out.ends_with(|p: char| p.is_ascii_alphanumeric() || p == '_') {
            out.push('#');
        } else {
            out.push_str(digits);
        }
        digits.clear();
    };
    for c in fp.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            flush(&mut out, &mut digits);
            out.push(c);
        }
    }
    flush(&mut out, &mut digits);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(relation: Option<&str>, name: &str) -> Column {
        Column {
            relation: relation.map(String::from),
            name: name.into(),
        }
    }

    #[test]
    fn targeted_select_with_literals_and_aliases() {
        let f = facts("select c.start_time, c.cell_id from dwh.call_events_2024_05 c where c.a_number in ('999700000001', '999700000002') and c.call_start_ts >= '2017-03-06' order by 1;").unwrap();
        assert_eq!(f.relations, ["dwh.call_events_2024_05"]);
        let p = &f.predicates[0];
        assert_eq!(p.column, col(Some("dwh.call_events_2024_05"), "a_number"));
        assert_eq!(p.compare, Compare::Equals);
        assert_eq!(p.operands.len(), 2);
        assert_eq!(f.predicates[1].compare, Compare::Lower);
        assert!(f
            .projected
            .contains(&col(Some("dwh.call_events_2024_05"), "cell_id")));
        assert!(!f.wildcard && !f.export);
    }

    #[test]
    fn parameters_between_flipped_and_joins() {
        let f = facts("SELECT a FROM cdr.sms_cdr WHERE served_msisdn = $1 AND $2::timestamptz <= start_time AND start_time BETWEEN $2 AND $3").unwrap();
        assert_eq!(f.predicates[0].operands, [Operand::Param(1)]);
        assert_eq!(f.predicates[1].compare, Compare::Lower);
        assert_eq!(
            f.predicates[2..]
                .iter()
                .map(|p| p.compare)
                .collect::<Vec<_>>(),
            [Compare::Lower, Compare::Upper]
        );
        let j = facts("select e.* from dwh.call_events e join crm.subscriber s on s.imsi = e.imsi where s.msisdn = '447700900123'").unwrap();
        assert_eq!(
            j.joins,
            [(
                col(Some("crm.subscriber"), "imsi"),
                col(Some("dwh.call_events"), "imsi")
            )]
        );
        assert_eq!(
            j.predicates[0].column,
            col(Some("crm.subscriber"), "msisdn")
        );
        assert!(j.wildcard);
        // Unqualified columns of a join are not attributed.
        let u = facts("select * from a join b on a.x = b.x where msisdn = '1'").unwrap();
        assert_eq!(u.predicates[0].column.relation, None);
    }

    #[test]
    fn exports_loads_partitions_and_audit_changes() {
        let c = facts("COPY (select * from cdr.voice_cdr where served_msisdn in ('1') and start_time >= '2017-03-06') TO STDOUT WITH CSV HEADER").unwrap();
        assert!(c.export && c.wildcard);
        let d = facts("COPY cdr.voice_cdr (record_id, apn) TO stdout;").unwrap();
        assert!(d.export && d.predicates.is_empty() && !d.wildcard);
        let l = facts(
            "COPY dwh.call_events (a_number, b_number, call_start_ts) FROM STDIN WITH (FORMAT csv)",
        )
        .unwrap();
        assert_eq!(
            l.load,
            Some((
                "dwh.call_events".into(),
                vec!["a_number".into(), "b_number".into(), "call_start_ts".into()]
            ))
        );
        assert!(!l.export);
        let i = facts(
            "INSERT INTO \"CallsData14\" (\"ServedMSISDN\", \"StartTime\") VALUES ('1', '2')",
        )
        .unwrap();
        assert_eq!(i.load.unwrap().1, ["servedmsisdn", "starttime"]);
        let p = facts("CREATE TABLE dwh.call_events_2024_05 PARTITION OF dwh.call_events FOR VALUES FROM ('2024-05-01') TO ('2024-06-01')").unwrap();
        assert_eq!(
            p.child_of,
            Some(("dwh.call_events_2024_05".into(), "dwh.call_events".into()))
        );
        let e = facts("SELECT served_msisdn, count(*) FROM cdr.voice_cdr WHERE start_time >= $1::timestamptz GROUP BY served_msisdn").unwrap();
        assert!(e.aggregates);
        assert!(changes_auditing("ALTER SYSTEM SET pgaudit.log = 'none'"));
        assert!(changes_auditing("drop extension pgaudit"));
        assert!(!changes_auditing("select * from pgaudit_history"));
        let like = facts("select 1 from cdr.voice_cdr where called_number like '99970%'").unwrap();
        assert_eq!(like.predicates[0].compare, Compare::Pattern);
        assert!(facts("selec * frm").is_err());
        let t = facts("SELECT TOP 100 * FROM cdr.voice_cdr WHERE served_msisdn = :1").unwrap();
        assert_eq!(t.predicates[0].operands, [Operand::Param(1)]);
        let any = facts("select * from t where msisdn = ANY(ARRAY['1','2'])").unwrap();
        assert_eq!(any.predicates[0].operands.len(), 2);
        let lit =
            facts("select * from t where a_number = ANY ('{593962889373,593961095845}'::text[])")
                .unwrap();
        assert_eq!(
            lit.predicates[0].operands,
            [
                Operand::Literal("593962889373".into()),
                Operand::Literal("593961095845".into())
            ]
        );
    }

    #[test]
    fn fingerprints_mask_values() {
        assert_eq!(
            fingerprint("SELECT a  FROM t WHERE x = 'a''b' AND y = 42 AND z = $3"),
            "select a from t where x = ? and y = ? and z = ?"
        );
        assert_eq!(
            fingerprint("select * from voice_cdr_2019"),
            "select * from voice_cdr_2019"
        );
        assert_eq!(
            shape("COPY ops.usage_event20190311 (a) TO '/x/e_2019_03_11.csv'"),
            shape("copy ops.usage_event20190312 (a) to '/x/e_2019_03_12.csv'")
        );
        assert_ne!(
            shape("select * from calls_a"),
            shape("select * from calls_b")
        );
    }
}
