//! Generic data tests declared in YAML (`data_tests:` / `tests:`), turned into
//! test nodes whose SQL is rendered from `test_<name>` macros. The built-in
//! tests (`unique`, `not_null`, `accepted_values`, `relationships`) are
//! macros of the `pm` package that a project can override.

use crate::loader::config::{self, Config};
use crate::loader::properties::TestDef;
use crate::loader::yaml::as_string;
use serde_json::{Map, Value as Json};

/// Built-in macros, in the same Jinja that project macros use.
pub const BUILTIN_MACROS: &str = r#"{% macro default__generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ target.schema }}_{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
{% macro generate_schema_name(custom_schema_name, node) -%}{{ default__generate_schema_name(custom_schema_name, node) }}{%- endmacro %}
{% macro generate_schema_name_for_env(custom_schema_name, node) -%}
    {%- if target.name == 'prod' and custom_schema_name is not none -%}{{ custom_schema_name | trim }}{%- else -%}{{ target.schema }}{%- endif -%}
{%- endmacro %}
{% macro default__generate_alias_name(custom_alias_name, node) -%}
    {%- if custom_alias_name -%}{{ custom_alias_name | trim }}{%- else -%}{{ node.name }}{%- endif -%}
{%- endmacro %}
{% macro generate_alias_name(custom_alias_name, node) -%}{{ default__generate_alias_name(custom_alias_name, node) }}{%- endmacro %}
{% macro default__generate_database_name(custom_database_name, node) -%}
    {%- if custom_database_name is none -%}{{ target.database }}{%- else -%}{{ custom_database_name | trim }}{%- endif -%}
{%- endmacro %}
{% macro generate_database_name(custom_database_name, node) -%}{{ default__generate_database_name(custom_database_name, node) }}{%- endmacro %}
{% macro test_not_null(model, column_name) -%}
select {{ column_name }}
from {{ model }}
where {{ column_name }} is null
{%- endmacro %}
{% macro test_unique(model, column_name) -%}
select
    {{ column_name }} as unique_field,
    count(*) as n_records
from {{ model }}
where {{ column_name }} is not null
group by {{ column_name }}
having count(*) > 1
{%- endmacro %}
{% macro test_accepted_values(model, column_name, values, quote=True) -%}
{%- if values is undefined or values is none -%}
{{ exceptions.raise_compiler_error("accepted_values needs values:") }}
{%- endif -%}
with all_values as (
    select
        {{ column_name }} as value_field,
        count(*) as n_records
    from {{ model }}
    group by {{ column_name }}
)
select *
from all_values
where value_field not in (
    {% for value in values -%}
    {% if quote %}'{{ value | replace("'", "''") }}'{% else %}{{ value }}{% endif %}{% if not loop.last %}, {% endif %}
    {%- endfor %}
)
{%- endmacro %}
{% macro test_relationships(model, column_name, to, field) -%}
{%- if to is undefined or field is undefined or to is none or field is none -%}
{{ exceptions.raise_compiler_error("relationships needs to: and field:") }}
{%- endif -%}
with child as (
    select {{ column_name }} as from_field
    from {{ model }}
    where {{ column_name }} is not null
),
parent as (
    select {{ field }} as to_field
    from {{ to }}
)
select from_field
from child
left join parent on child.from_field = parent.to_field
where parent.to_field is null
{%- endmacro %}
"#;

/// Argument keys that configure a test rather than parameterise it (dbt's list).
const CONFIG_ARGS: &[&str] = &[
    "severity",
    "tags",
    "enabled",
    "where",
    "limit",
    "warn_if",
    "error_if",
    "fail_calc",
    "store_failures",
    "store_failures_as",
    "meta",
    "database",
    "schema",
    "alias",
];

/// A generic test entry, parsed.
#[derive(Debug, Clone)]
pub struct ParsedTest {
    pub test_name: String,
    pub namespace: Option<String>,
    pub custom_name: Option<String>,
    pub description: String,
    pub kwargs: Map<String, Json>,
    pub config: Config,
}

/// Parses one entry of a `data_tests:` list.
pub fn parse_test(def: &TestDef) -> Result<ParsedTest, String> {
    let (full_name, body): (String, Map<String, Json>) = match &def.value {
        Json::String(s) => (s.clone(), Map::new()),
        Json::Object(m) => {
            if let Some(tn) = m.get("test_name").and_then(as_string) {
                (tn, m.clone())
            } else if m.len() == 1 {
                let (k, v) = m
                    .iter()
                    .next()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .unwrap_or_default();
                match v {
                    Json::Object(inner) => (k, inner),
                    Json::Null => (k, Map::new()),
                    _ => return Err(format!("the arguments of test `{k}` must be a mapping")),
                }
            } else {
                return Err(
                    "a test entry must be a name, or a mapping with one test name as its key"
                        .into(),
                );
            }
        }
        _ => return Err("a test entry must be a name or a mapping".into()),
    };
    let (namespace, test_name) = match full_name.rsplit_once('.') {
        Some((ns, n)) => (Some(ns.to_string()), n.to_string()),
        None => (None, full_name.clone()),
    };
    let mut kwargs = Map::new();
    let mut cfg = Config::new();
    let mut custom_name = None;
    let mut description = String::new();
    for (k, v) in &body {
        match k.as_str() {
            "test_name" => {}
            "name" => custom_name = as_string(v),
            "description" => description = as_string(v).unwrap_or_default(),
            "config" => config::merge(&mut cfg, &config::from_json(Some(v))),
            "arguments" => {
                if let Json::Object(a) = v {
                    kwargs.extend(a.clone());
                }
            }
            k if CONFIG_ARGS.contains(&k) => config::merge_key(&mut cfg, k, v),
            _ => {
                kwargs.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(ParsedTest {
        test_name,
        namespace,
        custom_name,
        description,
        kwargs,
        config: cfg,
    })
}

fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last_sub = false;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
            last_sub = false;
        } else if !last_sub {
            out.push('_');
            last_sub = true;
        }
    }
    out
}

fn flat(v: &Json) -> Vec<String> {
    match v {
        Json::Object(m) => m.values().flat_map(flat_one).collect(),
        Json::Array(a) => a.iter().flat_map(flat_one).collect(),
        other => flat_one(other),
    }
}

fn flat_one(v: &Json) -> Vec<String> {
    match v {
        Json::String(s) => vec![s.clone()],
        Json::Null => vec!["None".into()],
        Json::Bool(b) => vec![if *b { "True".into() } else { "False".into() }],
        other => vec![other.to_string()],
    }
}

/// dbt's test naming: `not_null_orders_id`, `accepted_values_orders_status__a__b`,
/// `source_unique_raw_users_id`; names of 64 characters or more are shortened
/// with a hash. Returns (name, full name).
pub fn synthesize_name(
    test: &ParsedTest,
    target: &str,
    is_source: bool,
    column: Option<&str>,
) -> (String, String) {
    let mut args: Vec<(String, Json)> = test
        .kwargs
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(c) = column {
        args.push(("column_name".into(), Json::from(c)));
    }
    args.sort_by(|a, b| a.0.cmp(&b.0));
    let parts: Vec<String> = args
        .iter()
        .filter(|(k, _)| k != "model")
        .flat_map(|(_, v)| flat(v))
        .map(|s| clean(&s))
        .collect();
    let prefix = if is_source { "source_" } else { "" };
    let ns = test
        .namespace
        .as_ref()
        .map(|n| format!("{n}_"))
        .unwrap_or_default();
    let identifier = format!("{prefix}{ns}{}_{target}", test.test_name);
    let full = if parts.is_empty() {
        identifier.clone()
    } else {
        format!("{identifier}_{}", parts.join("__"))
    };
    if full.len() >= 64 {
        use md5::Digest;
        let digest = crate::text::hex(&md5::Md5::digest(full.as_bytes()));
        let trunc: String = identifier.chars().take(30).collect();
        (format!("{trunc}_{digest}"), full)
    } else {
        (full.clone(), full)
    }
}

/// dbt's hash of a generic test's unique id (`test.pkg.name.<hash>`): the
/// last 10 hex digits of the md5 of its name followed by the Python `repr`
/// of its metadata (`namespace`, `name`, `kwargs` with `column_name` and
/// `model`), keys sorted and every scalar as Python's `str()` of it, as
/// dbt-core's `create_test_node` computes it. Tools that read
/// manifest.json and run_results.json across runs key on these ids.
pub fn dbt_hash(name: &str, test: &ParsedTest, target_expr: &str, column: Option<&str>) -> String {
    let mut kwargs = test.kwargs.clone();
    if let Some(c) = column {
        kwargs.insert("column_name".into(), Json::from(c));
    }
    kwargs.insert(
        "model".into(),
        Json::from(format!("{{{{ get_where_subquery({target_expr}) }}}}")),
    );
    let mut metadata = Map::new();
    metadata.insert(
        "namespace".into(),
        test.namespace.clone().map_or(Json::Null, Json::from),
    );
    metadata.insert("name".into(), Json::from(test.test_name.as_str()));
    metadata.insert("kwargs".into(), Json::Object(kwargs));
    let text = format!("{name}{}", python_repr(&Json::Object(metadata)));
    use md5::Digest;
    let digest = crate::text::hex(&md5::Md5::digest(text.as_bytes()));
    digest[digest.len() - 10..].to_string()
}

/// `repr()` of dbt's hashable metadata: dicts with sorted keys, lists, and
/// every other value as the `repr` of its `str()`.
fn python_repr(v: &Json) -> String {
    match v {
        Json::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let items: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}: {}", python_str_repr(k), python_repr(&m[k])))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Json::Array(a) => format!(
            "[{}]",
            a.iter().map(python_repr).collect::<Vec<_>>().join(", ")
        ),
        Json::String(s) => python_str_repr(s),
        Json::Null => python_str_repr("None"),
        Json::Bool(b) => python_str_repr(if *b { "True" } else { "False" }),
        Json::Number(n) => python_str_repr(&python_number(n)),
    }
}

/// Python's `str()` of a YAML number: `1`, `0.5`, `1.0`, `1e+20`.
fn python_number(n: &serde_json::Number) -> String {
    if n.is_f64() {
        let f = n.as_f64().unwrap_or_default();
        if f.fract() == 0.0 && f.abs() < 1e16 {
            return format!("{f:.1}");
        }
        let text = f.to_string();
        if f.abs() >= 1e16 {
            return format!("{f:e}").replace('e', "e+");
        }
        return text;
    }
    n.to_string()
}

/// Python's `repr()` of a string: single quotes unless the text holds one
/// and no double quote; backslash escapes for `\\`, the quote and control
/// characters.
fn python_str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (0x7f..=0xa0).contains(&(c as u32)) || c as u32 == 0xad => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// A string argument that is really a template expression: `ref('x')`,
/// `source('a', 'b')`, or a whole `{{ expression }}`. Returns the expression.
pub fn is_relation_expr(v: &Json) -> Option<&str> {
    let s = v.as_str()?.trim();
    if let Some(inner) = s.strip_prefix("{{").and_then(|r| r.strip_suffix("}}")) {
        if !inner.contains("{{") && !inner.contains("}}") {
            return Some(inner.trim());
        }
    }
    let open = s.find('(')?;
    let func = s[..open].trim();
    (matches!(func, "ref" | "source") && s.ends_with(')')).then_some(s)
}

/// The template that renders a generic test's SQL. The tested relation comes
/// in the context as `__pm_model`, so tests of one kind share one template
/// unless an argument is itself an expression (`to: ref('x')`).
pub fn template_for(test: &ParsedTest) -> String {
    let mut explicit = String::new();
    for (k, v) in &test.kwargs {
        if let Some(expr) = is_relation_expr(v) {
            explicit.push_str(&format!(", {k}={expr}"));
        }
    }
    let namespace = test
        .namespace
        .as_ref()
        .map(|n| format!("{n}."))
        .unwrap_or_default();
    format!(
        "{{{{ {namespace}test_{}(model=get_where_subquery(__pm_model){explicit}, **__pm_test_args) }}}}",
        test.test_name
    )
}

/// The kwargs passed through the context (those not inlined as expressions).
pub fn context_args(test: &ParsedTest, column: Option<&str>) -> Map<String, Json> {
    let mut m: Map<String, Json> = test
        .kwargs
        .iter()
        .filter(|(_, v)| is_relation_expr(v).is_none())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(c) = column {
        if !m.contains_key("column_name") {
            m.insert("column_name".into(), Json::from(c));
        }
    }
    m
}

/// What is wrong with the arguments of a built-in generic test, if
/// something is: (message, help). Errors inside pm's test macros are
/// explained by this, at the YAML entry.
pub fn explain_arguments(test_name: &str, kwargs: &Map<String, Json>) -> Option<(String, String)> {
    let shown = |v: &Json| match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    };
    match test_name {
        "accepted_values" => match kwargs.get("values") {
            None => Some((
                "accepted_values needs `values:`, the list of accepted values".into(),
                "write accepted_values: {arguments: {values: [a, b]}}".into(),
            )),
            Some(Json::Array(_)) => None,
            Some(v) => Some((
                format!(
                    "accepted_values: `values:` must be a list, not `{}`",
                    shown(v)
                ),
                "write values: [a, b] (a list, even of one value)".into(),
            )),
        },
        "relationships" => {
            let missing: Vec<&str> = ["to", "field"]
                .into_iter()
                .filter(|k| kwargs.get(*k).is_none_or(Json::is_null))
                .collect();
            (!missing.is_empty()).then(|| {
                (
                    format!(
                        "relationships needs {}",
                        missing
                            .iter()
                            .map(|k| format!("`{k}:`"))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    ),
                    "write relationships: {arguments: {to: ref('customers'), field: id}}".into(),
                )
            })
        }
        _ => None,
    }
}

/// dbt's default test config.
pub fn default_config() -> Config {
    let mut c = Config::new();
    c.insert("enabled".into(), Json::Bool(true));
    c.insert("materialized".into(), Json::from("test"));
    c.insert("severity".into(), Json::from("ERROR"));
    c.insert("fail_calc".into(), Json::from("count(*)"));
    c.insert("warn_if".into(), Json::from("!= 0"));
    c.insert("error_if".into(), Json::from("!= 0"));
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def(v: Json) -> TestDef {
        TestDef { value: v, line: 1 }
    }

    #[test]
    fn parses_every_form() {
        let t = parse_test(&def(json!("unique"))).unwrap();
        assert_eq!(t.test_name, "unique");
        let t = parse_test(&def(
            json!({"accepted_values": {"values": ["a", "b"], "severity": "warn"}}),
        ))
        .unwrap();
        assert_eq!(t.kwargs["values"], json!(["a", "b"]));
        assert_eq!(t.config["severity"], json!("warn"));
        let t = parse_test(&def(json!({"accepted_values": {"arguments": {"values": ["a"]}, "config": {"where": "x > 1"}, "name": "custom"}}))).unwrap();
        assert_eq!(t.kwargs["values"], json!(["a"]));
        assert_eq!(t.config["where"], json!("x > 1"));
        assert_eq!(t.custom_name.as_deref(), Some("custom"));
        let t = parse_test(&def(
            json!({"dbt_utils.expression_is_true": {"expression": "a > 0"}}),
        ))
        .unwrap();
        assert_eq!(t.namespace.as_deref(), Some("dbt_utils"));
    }

    #[test]
    fn names_like_dbt() {
        let t = parse_test(&def(json!("not_null"))).unwrap();
        assert_eq!(
            synthesize_name(&t, "orders", false, Some("id")).0,
            "not_null_orders_id"
        );
        let t = parse_test(&def(
            json!({"accepted_values": {"values": ["placed", "shipped"]}}),
        ))
        .unwrap();
        assert_eq!(
            synthesize_name(&t, "orders", false, Some("status")).0,
            "accepted_values_orders_status__placed__shipped"
        );
        let t = parse_test(&def(
            json!({"relationships": {"to": "ref('customers')", "field": "id"}}),
        ))
        .unwrap();
        assert_eq!(
            synthesize_name(&t, "orders", false, Some("customer_id")).0,
            "relationships_orders_customer_id__id__ref_customers_"
        );
        let t = parse_test(&def(json!("unique"))).unwrap();
        assert_eq!(
            synthesize_name(&t, "raw_users", true, Some("id")).0,
            "source_unique_raw_users_id"
        );
        let long = synthesize_name(&t, &"x".repeat(70), false, Some("id"));
        assert!(long.0.len() < 64);
    }
}

#[cfg(test)]
mod dbt_hash_tests {
    use super::{dbt_hash, python_repr, ParsedTest};
    use serde_json::json;

    /// The expected values are Python 3's (dbt-core's own code run on the
    /// same metadata).
    #[test]
    fn the_hash_is_dbts() {
        let kwargs = json!({"values": ["a", "it's", "say \"hi\"", "back\\slash", "new\nline", "é", 1, 0.5, 2.0, true, null], "quote": false});
        let test = ParsedTest {
            test_name: "accepted_values".into(),
            namespace: None,
            custom_name: None,
            description: String::new(),
            kwargs: kwargs.as_object().unwrap().clone(),
            config: Default::default(),
        };
        let mut metadata = kwargs.as_object().unwrap().clone();
        metadata.insert("column_name".into(), json!("status"));
        assert_eq!(
            python_repr(&json!(metadata)),
            r#"{'column_name': 'status', 'quote': 'False', 'values': ['a', "it's", 'say "hi"', 'back\\slash', 'new\nline', 'é', '1', '0.5', '2.0', 'True', 'None']}"#
        );
        assert_eq!(
            dbt_hash(
                "accepted_values_orders_status",
                &test,
                "ref('orders')",
                Some("status")
            ),
            "c531cd3e3c"
        );
    }
}
