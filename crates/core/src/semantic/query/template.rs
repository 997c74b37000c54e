//! MetricFlow's references to the semantic layer, as written in `where`
//! filters (`{{ Dimension('customer__region') }} = 'north'`) and saved
//! queries' `group_by` (`TimeDimension('metric_time', 'month')`), read into
//! [`Reference`]s. Only these calls are understood; anything else inside
//! `{{ }}` is an error naming it.

use crate::semantic::definition::Grain;

/// What a call refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A dimension, time dimension or entity, by its `__`-joined path
    /// (`customer__region`, `metric_time`, `order__ordered_at`) and, for a
    /// time dimension, the grain asked for.
    Element {
        path: Vec<String>,
        grain: Option<Grain>,
        /// What the call says it is (`Dimension`, `Entity`...); a plain
        /// group-by name may be any.
        kind: Kind,
    },
    /// `Metric('name', group_by=[...])`: a metric's value per entity.
    Metric { name: String, group_by: Vec<String> },
}

impl Reference {
    /// The name the element goes by as a group-by and a column
    /// (`metric_time__month`, `customer__region`).
    pub fn column_name(&self) -> String {
        match self {
            Reference::Element { path, grain, .. } => {
                let mut name = path.join("__");
                if let Some(g) = grain {
                    name.push_str("__");
                    name.push_str(g.as_str());
                }
                name
            }
            Reference::Metric { name, group_by } => format!("{}__{name}", group_by.join("__")),
        }
    }
}

/// What a reference says it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Any,
    Dimension,
    TimeDimension,
    Entity,
}

/// A filter with its references replaced by `{0}`, `{1}`, ... placeholders.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// The text around the references.
    pub pieces: Vec<String>,
    pub references: Vec<Reference>,
}

impl Template {
    /// The filter with each reference written by `column`.
    pub fn render(&self, mut column: impl FnMut(&Reference) -> String) -> String {
        let mut out = String::new();
        for (k, piece) in self.pieces.iter().enumerate() {
            out.push_str(piece);
            if let Some(r) = self.references.get(k) {
                out.push_str(&column(r));
            }
        }
        out
    }
}

/// Reads a where filter's template.
pub fn parse_filter(text: &str) -> Result<Template, String> {
    let mut pieces = Vec::new();
    let mut references = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let end = rest[start..]
            .find("}}")
            .map(|e| start + e)
            .ok_or_else(|| format!("`{{{{` without its `}}}}` in `{text}`"))?;
        pieces.push(rest[..start].to_string());
        references.push(parse_call(rest[start + 2..end].trim())?);
        rest = &rest[end + 2..];
    }
    if rest.contains("{%") || rest.contains("{#") {
        return Err(format!(
            "a filter takes only `{{{{ }}}}` references, not Jinja statements: `{text}`"
        ));
    }
    pieces.push(rest.to_string());
    Ok(Template { pieces, references })
}

/// Reads a group-by item: a name (`metric_time__month`, `customer__region`)
/// or a call (`TimeDimension('metric_time', 'month')`, `Dimension('x')`).
pub fn parse_group_by(text: &str) -> Result<Reference, String> {
    let t = text.trim();
    let t = t
        .strip_prefix("{{")
        .and_then(|x| x.strip_suffix("}}"))
        .unwrap_or(t)
        .trim();
    if t.contains('(') {
        return parse_call(t);
    }
    if t.is_empty() || !t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("`{text}` is not a group-by name (names are like metric_time__month or customer__region)"));
    }
    Ok(element_of_name(t))
}

/// A plain name: its last part is a grain when it names one
/// (`metric_time__month`), else part of the path.
fn element_of_name(name: &str) -> Reference {
    let mut path: Vec<String> = name.split("__").map(String::from).collect();
    let grain = match path.last().and_then(|p| Grain::parse_exact(p)) {
        Some(g) if path.len() > 1 => {
            path.pop();
            Some(g)
        }
        _ => None,
    };
    Reference::Element {
        path,
        grain,
        kind: Kind::Any,
    }
}

/// A call's positional and named arguments.
type CallArgs = (Vec<Arg>, Vec<(String, Arg)>);

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Text(String),
    List(Vec<String>),
}

/// `Dimension('a__b')`, `Dimension('a__b').grain('month')`,
/// `TimeDimension('metric_time', 'month')`, `Entity('customer')`,
/// `Metric('revenue', group_by=['customer'])`, with `entity_path=[...]`.
fn parse_call(text: &str) -> Result<Reference, String> {
    let mut p = Parser { s: text, at: 0 };
    let function = p.ident()?;
    let (positional, named) = p.args()?;
    let text_arg = |k: usize, what: &str| -> Result<String, String> {
        match positional.get(k) {
            Some(Arg::Text(t)) => Ok(t.clone()),
            _ => Err(format!(
                "`{function}` needs {what} as a quoted text in `{text}`"
            )),
        }
    };
    let entity_path = match named.iter().find(|(k, _)| k == "entity_path") {
        Some((_, Arg::List(l))) => l.clone(),
        Some((_, Arg::Text(t))) => vec![t.clone()],
        None => Vec::new(),
    };
    for (k, _) in &named {
        if !matches!(k.as_str(), "entity_path" | "group_by") {
            return Err(format!("`{function}` has no argument `{k}` (in `{text}`)"));
        }
    }
    let element = |name: String, grain: Option<Grain>, kind: Kind| {
        let mut path = entity_path.clone();
        path.extend(name.split("__").map(String::from));
        Reference::Element { path, grain, kind }
    };
    // As MetricFlow reads them: a dimension's name is its entity and
    // itself; the joins before that entity go in `entity_path`.
    let dimension_name = |name: String| -> Result<String, String> {
        if name.split("__").count() > 2 {
            let parts: Vec<&str> = name.split("__").collect();
            let (before, last_two) = parts.split_at(parts.len() - 2);
            return Err(format!(
                "`{function}('{name}')` names more than an entity and a dimension; write `{function}('{}', entity_path=['{}'])`",
                last_two.join("__"),
                before.join("', '")
            ));
        }
        Ok(name)
    };
    let mut reference = match function.as_str() {
        "Dimension" => element(dimension_name(text_arg(0, "a name")?)?, None, Kind::Dimension),
        "Entity" => element(text_arg(0, "a name")?, None, Kind::Entity),
        "TimeDimension" => {
            let grain = match positional.get(1) {
                Some(Arg::Text(g)) => Some(grain_of(g)?),
                None => None,
                Some(_) => return Err(format!("the grain of `{text}` must be a quoted text")),
            };
            element(dimension_name(text_arg(0, "a name")?)?, grain, Kind::TimeDimension)
        }
        "Metric" => {
            let group_by = match named.iter().find(|(k, _)| k == "group_by") {
                Some((_, Arg::List(l))) => l.clone(),
                Some((_, Arg::Text(t))) => vec![t.clone()],
                None => Vec::new(),
            };
            Reference::Metric {
                name: text_arg(0, "the metric's name")?,
                group_by,
            }
        }
        other => {
            return Err(format!(
                "`{other}` is not a reference MetricFlow knows (Dimension, TimeDimension, Entity, Metric), in `{text}`"
            ))
        }
    };
    while p.eat('.') {
        let method = p.ident()?;
        let (args, _) = p.args()?;
        match (method.as_str(), args.first(), &mut reference) {
            ("grain", Some(Arg::Text(g)), Reference::Element { grain, .. }) => {
                *grain = Some(grain_of(g)?)
            }
            ("descending", _, _) => {}
            _ => {
                return Err(format!(
                    "`.{method}(...)` is not supported on `{function}` (in `{text}`)"
                ))
            }
        }
    }
    p.skip_space();
    if p.at < p.s.len() {
        return Err(format!("unexpected `{}` in `{text}`", &p.s[p.at..]));
    }
    Ok(reference)
}

fn grain_of(text: &str) -> Result<Grain, String> {
    Grain::parse_exact(text).ok_or_else(|| {
        let names: Vec<&str> = Grain::ALL.iter().map(|g| g.as_str()).collect();
        format!("`{text}` is not a time granularity ({})", names.join(", "))
    })
}

struct Parser<'a> {
    s: &'a str,
    at: usize,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while self.s[self.at..].starts_with(char::is_whitespace) {
            self.at += self.s[self.at..].chars().next().map_or(1, char::len_utf8);
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_space();
        if self.s[self.at..].starts_with(c) {
            self.at += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn ident(&mut self) -> Result<String, String> {
        self.skip_space();
        let rest = &self.s[self.at..];
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if len == 0 {
            return Err(format!("expected a name at `{rest}` in `{}`", self.s));
        }
        self.at += len;
        Ok(rest[..len].to_string())
    }

    fn text(&mut self) -> Result<String, String> {
        self.skip_space();
        let rest = &self.s[self.at..];
        let quote = rest
            .chars()
            .next()
            .filter(|c| *c == '\'' || *c == '"')
            .ok_or_else(|| format!("expected a quoted text at `{rest}` in `{}`", self.s))?;
        let end = rest[1..]
            .find(quote)
            .ok_or_else(|| format!("a text is not closed in `{}`", self.s))?;
        self.at += end + 2;
        Ok(rest[1..end + 1].to_string())
    }

    fn value(&mut self) -> Result<Arg, String> {
        if self.eat('[') {
            let mut items = Vec::new();
            if !self.eat(']') {
                loop {
                    items.push(self.text()?);
                    if self.eat(']') {
                        break;
                    }
                    if !self.eat(',') {
                        return Err(format!("expected `,` or `]` in `{}`", self.s));
                    }
                }
            }
            return Ok(Arg::List(items));
        }
        self.text().map(Arg::Text)
    }

    /// `(a, 'b', key=[...])`: positional and named arguments.
    fn args(&mut self) -> Result<CallArgs, String> {
        if !self.eat('(') {
            return Err(format!("expected `(` in `{}`", self.s));
        }
        let mut positional = Vec::new();
        let mut named = Vec::new();
        if self.eat(')') {
            return Ok((positional, named));
        }
        loop {
            self.skip_space();
            let rest = &self.s[self.at..];
            let is_named = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .is_some_and(|k| k > 0 && rest[k..].trim_start().starts_with('='));
            if is_named {
                let key = self.ident()?;
                self.eat('=');
                named.push((key, self.value()?));
            } else {
                positional.push(self.value()?);
            }
            if self.eat(')') {
                return Ok((positional, named));
            }
            if !self.eat(',') {
                return Err(format!("expected `,` or `)` in `{}`", self.s));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn element(path: &[&str], grain: Option<Grain>) -> Reference {
        Reference::Element {
            path: path.iter().map(|s| s.to_string()).collect(),
            grain,
            kind: Kind::Any,
        }
    }

    fn of_kind(kind: Kind, r: Reference) -> Reference {
        match r {
            Reference::Element { path, grain, .. } => Reference::Element { path, grain, kind },
            other => other,
        }
    }

    #[test]
    fn filters_read_their_references_and_keep_the_rest() {
        let t = parse_filter("{{ Dimension('order__status') }} = 'completed' and {{TimeDimension('metric_time', 'month')}} >= '2024-01-01'").unwrap();
        assert_eq!(
            t.references,
            vec![
                of_kind(Kind::Dimension, element(&["order", "status"], None)),
                of_kind(
                    Kind::TimeDimension,
                    element(&["metric_time"], Some(Grain::Month))
                )
            ]
        );
        assert_eq!(
            t.render(|r| r.column_name()),
            "order__status = 'completed' and metric_time__month >= '2024-01-01'"
        );
        let t = parse_filter("{{ Dimension('region', entity_path=['customer']) }} = 'x'").unwrap();
        assert_eq!(
            t.references,
            vec![of_kind(
                Kind::Dimension,
                element(&["customer", "region"], None)
            )]
        );
        let t = parse_filter("{{ Dimension('customer__signed_up_on').grain('week') }} is not null")
            .unwrap();
        assert_eq!(
            t.references,
            vec![of_kind(
                Kind::Dimension,
                element(&["customer", "signed_up_on"], Some(Grain::Week))
            )]
        );
        let t = parse_filter("{{ Metric('revenue', group_by=['customer']) }} > 100").unwrap();
        assert_eq!(
            t.references,
            vec![Reference::Metric {
                name: "revenue".into(),
                group_by: vec!["customer".into()]
            }]
        );
    }

    #[test]
    fn anything_else_is_an_error_naming_it() {
        for (bad, says) in [
            ("{{ Dimension('a') ", "without its"),
            (
                "{{ run_query('select 1') }}",
                "not a reference MetricFlow knows",
            ),
            ("{{ Dimension(a) }}", "quoted text"),
            (
                "{{ TimeDimension('metric_time', 'fortnight') }}",
                "not a time granularity",
            ),
            (
                "{{ Dimension('a').date_part('year') }}",
                "`.date_part(...)` is not supported",
            ),
            ("{% if x %}1{% endif %}", "not Jinja statements"),
            ("{{ Dimension('a', bogus=['x']) }}", "no argument `bogus`"),
            (
                "{{ Dimension('customer__region__country') }} = 'US'",
                "write `Dimension('region__country', entity_path=['customer'])`",
            ),
        ] {
            let e = parse_filter(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn group_by_names_split_their_grain() {
        assert_eq!(
            parse_group_by("metric_time__month").unwrap(),
            element(&["metric_time"], Some(Grain::Month))
        );
        assert_eq!(
            parse_group_by("metric_time").unwrap(),
            element(&["metric_time"], None)
        );
        assert_eq!(
            parse_group_by("customer__region").unwrap(),
            element(&["customer", "region"], None)
        );
        assert_eq!(
            parse_group_by("TimeDimension('metric_time', 'quarter')").unwrap(),
            of_kind(
                Kind::TimeDimension,
                element(&["metric_time"], Some(Grain::Quarter))
            )
        );
        assert_eq!(
            parse_group_by("Entity('customer__region')").unwrap(),
            of_kind(Kind::Entity, element(&["customer", "region"], None))
        );
        assert!(parse_group_by("customer; drop table x").is_err());
    }
}
