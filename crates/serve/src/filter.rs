//! A caller's filter, read by PostgreSQL's grammar (sqlparser) and let
//! through only when it is comparisons, boolean logic, `IN`, `BETWEEN`,
//! `IS NULL`, `LIKE`, a few plain functions and casts, over names the
//! query's metrics know and literals. The filter that reaches the planner
//! is written anew from what was read: names become the semantic layer's
//! references and every literal a `$n` parameter, so nothing the caller
//! typed is pasted into SQL.

use pm_core::semantic::query::template::{self, Reference, Template};
use sqlparser::ast::{
    BinaryOperator, CastKind, DataType, Expr, FunctionArg, FunctionArgExpr, FunctionArguments,
    UnaryOperator, Value,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

/// Functions a filter may call, with how many arguments.
const FUNCTIONS: &[(&str, std::ops::RangeInclusive<usize>)] = &[
    ("lower", 1..=1),
    ("upper", 1..=1),
    ("abs", 1..=1),
    ("coalesce", 1..=8),
    ("date_trunc", 2..=2),
];

/// Types a literal or name may be cast to, as sent.
const CASTS: &[(&str, &str)] = &[
    ("date", "DATE"),
    ("timestamp", "TIMESTAMP"),
    ("int", "INTEGER"),
    ("integer", "INTEGER"),
    ("bigint", "BIGINT"),
    ("numeric", "NUMERIC"),
    ("text", "TEXT"),
    ("boolean", "BOOLEAN"),
    ("double precision", "DOUBLE PRECISION"),
];

/// The names a filter may use.
pub trait Names {
    /// Whether `name` (`customer__region`, `metric_time__month`) is one.
    fn knows(&self, name: &str) -> bool;
    /// Whether `name` is a metric (filtered per entity with `Metric()`).
    fn is_metric(&self, name: &str) -> bool;
}

/// Reads `text` into a filter whose literals are pushed onto `params`
/// (numbered after those already there); the error names the part refused.
pub fn check(text: &str, names: &dyn Names, params: &mut Vec<String>) -> Result<Template, String> {
    if text.contains(PLACEHOLDER) {
        return Err(format!("`{PLACEHOLDER}` is not a name a filter may use"));
    }
    // MetricFlow's `{{ Dimension('x') }}` references stand as plain names
    // while the grammar reads the filter.
    let references = template::parse_filter(text)?;
    let mut plain = String::new();
    for (k, piece) in references.pieces.iter().enumerate() {
        plain.push_str(piece);
        if k < references.references.len() {
            plain.push_str(&format!(" {PLACEHOLDER}{k} "));
        }
    }
    let expr = parse(&plain)?;
    let mut out = Writer {
        names,
        references: &references.references,
        params,
        template: Template {
            pieces: Vec::new(),
            references: Vec::new(),
        },
        text: String::new(),
    };
    out.expr(&expr, 0)?;
    let mut template = out.template;
    template.pieces.push(out.text);
    Ok(template)
}

/// `reference = $n`, or `reference IN ($n, …)` for several values.
pub fn equals(reference: Reference, values: &[String], params: &mut Vec<String>) -> Template {
    let mut placeholders = Vec::new();
    for v in values {
        params.push(v.clone());
        placeholders.push(format!("${}", params.len()));
    }
    let tail = if placeholders.len() == 1 {
        format!(" = {}", placeholders[0])
    } else {
        format!(" IN ({})", placeholders.join(", "))
    };
    Template {
        pieces: vec![String::new(), tail],
        references: vec![reference],
    }
}

const PLACEHOLDER: &str = "__pm_reference_";

/// One expression: no comment, no `;`, no parameter, nothing after it.
fn parse(text: &str) -> Result<Expr, String> {
    let dialect = PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, text)
        .tokenize()
        .map_err(|e| format!("cannot read the filter: {e}"))?;
    for t in &tokens {
        match t {
            Token::Whitespace(Whitespace::SingleLineComment { .. })
            | Token::Whitespace(Whitespace::MultiLineComment(_)) => {
                return Err(format!("a filter may not hold a comment: `{t}`"))
            }
            Token::SemiColon => return Err("a filter is one expression: `;` is refused".into()),
            Token::Placeholder(p) => {
                return Err(format!("a filter may not hold a parameter: `{p}`"))
            }
            _ => {}
        }
    }
    let mut parser = Parser::new(&dialect).with_tokens(tokens);
    let expr = parser
        .parse_expr()
        .map_err(|e| format!("cannot read the filter: {e}"))?;
    let next = parser.peek_token().token;
    if next != Token::EOF {
        return Err(format!(
            "the filter goes on after its expression, at `{next}`"
        ));
    }
    Ok(expr)
}

/// Writes what was read as the planner's template.
struct Writer<'a> {
    names: &'a dyn Names,
    references: &'a [Reference],
    params: &'a mut Vec<String>,
    template: Template,
    /// The text since the last reference.
    text: String,
}

impl Writer<'_> {
    fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }

    fn reference(&mut self, r: Reference) {
        self.template.pieces.push(std::mem::take(&mut self.text));
        self.template.references.push(r);
    }

    fn param(&mut self, value: String) {
        self.params.push(value);
        let n = self.params.len();
        self.push(&format!("${n}"));
    }

    fn list(&mut self, items: &[Expr], depth: usize) -> Result<(), String> {
        for (k, e) in items.iter().enumerate() {
            if k > 0 {
                self.push(", ");
            }
            self.expr(e, depth + 1)?;
        }
        Ok(())
    }

    fn expr(&mut self, e: &Expr, depth: usize) -> Result<(), String> {
        if depth > 40 {
            return Err("the filter nests too deeply".into());
        }
        match e {
            Expr::Identifier(ident) => self.name(ident.quote_style.is_some(), &ident.value),
            Expr::Value(v) => self.value(&v.value),
            Expr::Nested(inner) => {
                self.push("(");
                self.expr(inner, depth + 1)?;
                self.push(")");
                Ok(())
            }
            Expr::UnaryOp { op, expr } => {
                let op = match op {
                    UnaryOperator::Not => "NOT ",
                    UnaryOperator::Minus => "-",
                    _ => return Err(refused("the operator", e)),
                };
                self.push(op);
                self.expr(expr, depth + 1)
            }
            Expr::BinaryOp { left, op, right } => {
                let op = binary(op).ok_or_else(|| refused("the operator", e))?;
                self.push("(");
                self.expr(left, depth + 1)?;
                self.push(&format!(" {op} "));
                self.expr(right, depth + 1)?;
                self.push(")");
                Ok(())
            }
            Expr::Cast {
                kind: CastKind::Cast | CastKind::DoubleColon,
                expr,
                data_type,
                format: None,
            } => {
                let to = cast_type(data_type).ok_or_else(|| refused("the cast", e))?;
                self.push("CAST(");
                self.expr(expr, depth + 1)?;
                self.push(&format!(" AS {to})"));
                Ok(())
            }
            Expr::TypedString(t) => {
                let to = cast_type(&t.data_type).ok_or_else(|| refused("the literal", e))?;
                let Value::SingleQuotedString(s) = &t.value.value else {
                    return Err(refused("the literal", e));
                };
                self.push("CAST(");
                self.param(s.clone());
                self.push(&format!(" AS {to})"));
                Ok(())
            }
            // `user`, `current_date`: keywords without parentheses read as
            // calls; as a filter's names they are the semantic layer's.
            Expr::Function(f)
                if matches!(f.args, FunctionArguments::None) && f.name.0.len() == 1 =>
            {
                self.name(false, &f.name.to_string())
            }
            Expr::Function(f) => self.function(f, e, depth),
            Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => {
                Err(format!("a filter may not hold a subquery: `{e}`"))
            }
            _ => self.predicate(e, depth),
        }
    }

    /// `IS [NOT] NULL`, `[NOT] IN (…)`, `[NOT] BETWEEN`, `[NOT] [I]LIKE`.
    fn predicate(&mut self, e: &Expr, depth: usize) -> Result<(), String> {
        match e {
            Expr::IsNull(x) | Expr::IsNotNull(x) => {
                self.expr(x, depth + 1)?;
                self.push(if matches!(e, Expr::IsNull(_)) {
                    " IS NULL"
                } else {
                    " IS NOT NULL"
                });
                Ok(())
            }
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                self.expr(expr, depth + 1)?;
                self.push(if *negated { " NOT IN (" } else { " IN (" });
                self.list(list, depth)?;
                self.push(")");
                Ok(())
            }
            Expr::Between {
                expr,
                negated,
                low,
                high,
            } => {
                self.expr(expr, depth + 1)?;
                self.push(if *negated {
                    " NOT BETWEEN "
                } else {
                    " BETWEEN "
                });
                self.expr(low, depth + 1)?;
                self.push(" AND ");
                self.expr(high, depth + 1)
            }
            Expr::Like {
                negated,
                any: false,
                expr,
                pattern,
                escape_char: None,
            }
            | Expr::ILike {
                negated,
                any: false,
                expr,
                pattern,
                escape_char: None,
            } => {
                let op = if matches!(e, Expr::Like { .. }) {
                    "LIKE"
                } else {
                    "ILIKE"
                };
                self.expr(expr, depth + 1)?;
                self.push(&format!(" {}{op} ", if *negated { "NOT " } else { "" }));
                self.expr(pattern, depth + 1)
            }
            _ => Err(refused("the expression", e)),
        }
    }

    fn name(&mut self, quoted: bool, name: &str) -> Result<(), String> {
        if quoted {
            return Err(format!("write names without quotes: `{name}`"));
        }
        if let Some(k) = name.strip_prefix(PLACEHOLDER) {
            let r = k
                .parse::<usize>()
                .ok()
                .and_then(|k| self.references.get(k))
                .ok_or_else(|| format!("`{name}` is not a name a filter may use"))?;
            let known = match r {
                Reference::Element { path, .. } => self.names.knows(&path.join("__")),
                // A metric per entity: the planner checks the metric and entity.
                Reference::Metric { .. } => true,
            };
            if !known {
                return Err(format!(
                    "`{}` is not a dimension or entity of these metrics",
                    r.column_name()
                ));
            }
            self.reference(r.clone());
            return Ok(());
        }
        let r = template::parse_group_by(name)?;
        let Reference::Element { path, .. } = &r else {
            return Err(format!("`{name}` is not a name a filter may use"));
        };
        if self.names.is_metric(name) {
            return Err(format!(
                "`{name}` is a metric: filter on its value per entity with {{{{ Metric('{name}', group_by=['<entity>']) }}}}"
            ));
        }
        if !self.names.knows(&path.join("__")) {
            return Err(format!(
                "`{name}` is not a dimension or entity of these metrics (GET /api/v1/metrics lists each metric's)"
            ));
        }
        self.reference(r);
        Ok(())
    }

    fn value(&mut self, v: &Value) -> Result<(), String> {
        match v {
            Value::Number(n, false) => self.param(n.to_string()),
            Value::SingleQuotedString(s) => self.param(s.clone()),
            Value::Boolean(b) => self.push(if *b { "TRUE" } else { "FALSE" }),
            Value::Null => self.push("NULL"),
            other => {
                return Err(format!(
                    "the literal `{other}` is refused: write numbers and 'quoted text'"
                ))
            }
        }
        Ok(())
    }

    fn function(
        &mut self,
        f: &sqlparser::ast::Function,
        e: &Expr,
        depth: usize,
    ) -> Result<(), String> {
        let name = f.name.to_string().to_ascii_lowercase();
        let allowed = FUNCTIONS.iter().find(|(n, _)| *n == name);
        let plain = f.filter.is_none()
            && f.over.is_none()
            && f.within_group.is_empty()
            && matches!(f.parameters, FunctionArguments::None)
            && !f.uses_odbc_syntax;
        let FunctionArguments::List(list) = &f.args else {
            return Err(refused("the function call", e));
        };
        let (Some((_, arity)), true, None, true) = (
            allowed,
            plain,
            &list.duplicate_treatment,
            list.clauses.is_empty(),
        ) else {
            let names: Vec<&str> = FUNCTIONS.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "the function call `{e}` is refused: a filter may call {}",
                names.join(", ")
            ));
        };
        if !arity.contains(&list.args.len()) {
            return Err(format!(
                "`{name}` takes {} to {} arguments: `{e}`",
                arity.start(),
                arity.end()
            ));
        }
        let mut args = Vec::new();
        for a in &list.args {
            match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => args.push(x.clone()),
                _ => return Err(refused("the function argument", e)),
            }
        }
        self.push(&format!("{}(", name.to_ascii_uppercase()));
        self.list(&args, depth)?;
        self.push(")");
        Ok(())
    }
}

fn binary(op: &BinaryOperator) -> Option<&'static str> {
    Some(match op {
        BinaryOperator::Eq => "=",
        BinaryOperator::NotEq => "<>",
        BinaryOperator::Lt => "<",
        BinaryOperator::LtEq => "<=",
        BinaryOperator::Gt => ">",
        BinaryOperator::GtEq => ">=",
        BinaryOperator::And => "AND",
        BinaryOperator::Or => "OR",
        BinaryOperator::Plus => "+",
        BinaryOperator::Minus => "-",
        BinaryOperator::Multiply => "*",
        BinaryOperator::Divide => "/",
        _ => return None,
    })
}

fn cast_type(t: &DataType) -> Option<&'static str> {
    let written = t.to_string().to_ascii_lowercase();
    CASTS
        .iter()
        .find(|(n, _)| *n == written)
        .map(|(_, sent)| *sent)
}

fn refused(what: &str, e: &Expr) -> String {
    format!(
        "{what} `{e}` is refused: a filter compares names with literals, joined by AND, OR and NOT"
    )
}

#[cfg(test)]
#[path = "filter_tests.rs"]
mod tests;
