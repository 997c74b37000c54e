use super::{check, equals, Names};
use pm_core::semantic::query::template::{parse_group_by, Reference};

struct Known;

impl Names for Known {
    fn knows(&self, name: &str) -> bool {
        matches!(
            name,
            "user__country" | "metric_time" | "user" | "plan__tier"
        )
    }

    fn is_metric(&self, name: &str) -> bool {
        name == "revenue"
    }
}

fn rendered(text: &str) -> Result<(String, Vec<String>), String> {
    let mut params = Vec::new();
    let t = check(text, &Known, &mut params)?;
    let sql = t.render(|r: &Reference| format!("<{}>", r.column_name()));
    Ok((sql, params))
}

#[test]
fn names_become_references_and_literals_parameters() {
    let (sql, params) =
        rendered("user__country = 'SA' and metric_time__day >= '2024-01-01'").unwrap();
    assert_eq!(
        sql,
        "((<user__country> = $1) AND (<metric_time__day> >= $2))"
    );
    assert_eq!(params, ["SA", "2024-01-01"]);
    let (sql, params) = rendered(
        "{{ Dimension('user__country') }} in ('SA', 'AE') or plan__tier is null and not user__country like 'A%'",
    )
    .unwrap();
    assert_eq!(
        sql,
        "(<user__country> IN ($1, $2) OR (<plan__tier> IS NULL AND NOT <user__country> LIKE $3))"
    );
    assert_eq!(params, ["SA", "AE", "A%"]);
    let (sql, params) =
        rendered("metric_time between date '2024-01-01' and '2024-02-01'::date").unwrap();
    assert_eq!(
        sql,
        "<metric_time> BETWEEN CAST($1 AS DATE) AND CAST($2 AS DATE)"
    );
    assert_eq!(params, ["2024-01-01", "2024-02-01"]);
    let (sql, _) = rendered("lower(user__country) <> 'sa' and user > -5").unwrap();
    assert_eq!(sql, "((LOWER(<user__country>) <> $1) AND (<user> > -$2))");
}

#[test]
fn a_quote_in_a_value_stays_a_value() {
    let (sql, params) = rendered("user__country = 'x'' or 1=1 --'").unwrap();
    assert_eq!(sql, "(<user__country> = $1)");
    assert_eq!(params, ["x' or 1=1 --"]);
}

#[test]
fn hostile_filters_are_refused_naming_the_part() {
    let cases: &[(&str, &str)] = &[
        (
            "user__country = 'SA'; drop table analytics.dim_users",
            "`;`",
        ),
        ("user__country = 'SA' -- and more", "comment"),
        ("user__country = 'SA' /* x */", "comment"),
        (
            "user__country = (select max(country) from raw.users)",
            "subquery",
        ),
        ("exists (select 1 from pg_roles)", "subquery"),
        (
            "user__country in (select country from raw.users)",
            "subquery",
        ),
        ("pg_sleep(10) is null", "pg_sleep"),
        ("user__country = current_user", "current_user"),
        ("user__country = version()", "version"),
        ("lower(user__country, 'x') = 'a'", "takes 1 to 1"),
        ("password = 'x'", "`password`"),
        ("raw.users.email = 'x'", "raw.users.email"),
        ("\"user__country\" = 'SA'", "without quotes"),
        ("user__country = $1", "parameter"),
        ("user__country = 'SA' union select 1", "goes on"),
        ("user__country = 'SA') or (1=1", "goes on"),
        ("set_config('role', 'postgres', false) = 'x'", "set_config"),
        ("user__country = chr(65)", "chr"),
        ("user__country::regclass is null", "cast"),
        ("cast(user__country as regrole) is null", "cast"),
        ("user__country = e'\\x41'", "literal"),
        ("user__country = $$SA$$", "literal"),
        ("user__country ~ 'S.*'", "operator"),
        ("user__country || 'x' = 'SAx'", "operator"),
        ("case when 1=1 then true end", "expression"),
        ("user__country = any(array['SA'])", "refused"),
        ("{{ Dimension('user__email') }} = 'x'", "user__email"),
        ("{{ env_var('HOME') }} = 'x'", "env_var"),
        ("{% if true %}1=1{% endif %}", "Jinja"),
        ("__pm_reference_0 = 'x'", "__pm_reference_"),
        ("count(*) > 1", "count"),
        (
            "coalesce(user__country, 'x') = 'x' and lo_import('/etc/passwd') > 0",
            "lo_import",
        ),
        ("user__country = 'SA' and (select 1) = 1", "subquery"),
        ("user__country collate \"C\" = 'SA'", "refused"),
        ("row(user__country) = row('SA')", "refused"),
        ("revenue > 100", "Metric('revenue', group_by=['<entity>'])"),
    ];
    for (filter, named) in cases {
        match rendered(filter) {
            Ok(ok) => panic!("`{filter}` passed as {ok:?}"),
            Err(e) => assert!(e.contains(named), "`{filter}`: {e} (should name {named})"),
        }
    }
    assert!(cases.len() >= 30);
}

#[test]
fn query_string_values_are_parameters() {
    let mut params = vec!["first".to_string()];
    let t = equals(
        parse_group_by("user__country").unwrap(),
        &["SA".into(), "AE".into()],
        &mut params,
    );
    let sql = t.render(|r: &Reference| r.column_name());
    assert_eq!(sql, "user__country IN ($2, $3)");
    assert_eq!(params, ["first", "SA", "AE"]);
}
