//! The semantic layer as dbt reads it: `tests/fixtures/metrics` (a shop with
//! semantic models, metrics of every type and a saved query) parses into the
//! same `semantic_manifest.json` and manifest entries as dbt-core 1.11
//! writes (kept beside the fixture), selects as dbt selects, and every
//! mistake is an error at its line.

use crate::common::*;
use serde_json::Value as Json;
use std::path::Path;

fn expected(name: &str) -> Json {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).expect("read expected")).expect("json")
}

/// The semantic manifest's lists in name order (dbt keeps file order, pm
/// unique-id order; MetricFlow reads them by name).
fn by_name(mut doc: Json) -> Json {
    for key in ["semantic_models", "metrics", "saved_queries"] {
        if let Some(Json::Array(items)) = doc.get_mut(key) {
            items.sort_by_key(|x| x["name"].as_str().unwrap_or("").to_string());
        }
    }
    doc
}

#[test]
fn the_semantic_manifest_is_dbts() {
    let dir = fixture("metrics");
    let r = pm(dir.path(), &["parse"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("5 semantic models, 23 metrics, 1 saved query"),
        "{}",
        r.stderr
    );
    let ours: Json = serde_json::from_str(&read(dir.path(), "target/semantic_manifest.json"))
        .expect("semantic_manifest.json");
    assert_eq!(
        by_name(ours),
        by_name(expected("metrics_dbt_semantic_manifest.json"))
    );
}

#[test]
fn only_an_exported_saved_query_leaves_compiled_sql() {
    let dir = fixture("metrics");
    let r = pm(dir.path(), &["compile"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let compiled = dir
        .path()
        .join("target/compiled/metrics_shop/models/semantic.yml");
    let mut files: Vec<String> = std::fs::read_dir(&compiled)
        .expect("compiled folder")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    files.sort();
    assert_eq!(files, ["revenue_by_region.sql"]);
    let sql = std::fs::read_to_string(compiled.join("revenue_by_region.sql")).expect("export SQL");
    assert!(
        sql.starts_with("SELECT") && sql.contains("FULL OUTER JOIN"),
        "{sql}"
    );
}

#[test]
fn manifest_json_carries_the_definitions_as_dbt_does() {
    let dir = fixture("metrics");
    let r = pm(dir.path(), &["parse"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ours = manifest(dir.path());
    let theirs = expected("metrics_dbt_manifest_semantic.json");
    for key in ["semantic_models", "metrics", "saved_queries"] {
        let (ours, theirs) = (&ours[key], &theirs[key]);
        let ids = |m: &Json| -> Vec<String> {
            let mut v: Vec<String> = m.as_object().expect(key).keys().cloned().collect();
            v.sort();
            v
        };
        assert_eq!(ids(ours), ids(theirs), "{key}");
        for (id, entry) in theirs.as_object().expect(key) {
            for field in [
                "name",
                "resource_type",
                "package_name",
                "original_file_path",
                "fqn",
                "type",
                "type_params",
                "label",
                "entities",
                "dimensions",
                "measures",
                "node_relation",
                "query_params",
                "filter",
                "model",
            ] {
                assert_eq!(ours[id].get(field), entry.get(field), "{id}: {field}");
            }
            let sorted = |v: &Json| {
                let mut ids: Vec<String> = v["depends_on"]["nodes"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                ids.sort();
                ids
            };
            assert_eq!(sorted(&ours[id]), sorted(entry), "{id}: depends_on");
        }
    }
}

#[test]
fn metrics_semantic_models_and_saved_queries_select_as_in_dbt() {
    let dir = fixture("metrics");
    let ls = |args: &[&str]| {
        let mut all = vec!["ls"];
        all.extend_from_slice(args);
        let r = pm(dir.path(), &all);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let mut lines: Vec<String> = r.stdout.lines().map(String::from).collect();
        lines.sort();
        lines
    };
    // Each list is what `dbt ls` printed for the same selection on this fixture.
    assert_eq!(
        ls(&["-s", "+saved_query:revenue_by_region"]),
        [
            "metric:metrics_shop.orders",
            "metric:metrics_shop.revenue",
            "metrics_shop.orders",
            "metrics_shop.raw_orders",
            "saved_query:metrics_shop.revenue_by_region",
            "semantic_model:metrics_shop.orders",
        ]
    );
    assert_eq!(
        ls(&["-s", "metric:revenue+"]),
        [
            "metric:metrics_shop.completed_share",
            "metric:metrics_shop.net_revenue",
            "metric:metrics_shop.revenue",
            "metric:metrics_shop.revenue_growth_mom",
            "metric:metrics_shop.revenue_per_customer",
            "metric:metrics_shop.revenue_week_ago",
            "saved_query:metrics_shop.revenue_by_region",
        ]
    );
    assert_eq!(ls(&["--resource-type", "metric"]).len(), 23);
    assert_eq!(
        ls(&["--resource-type", "semantic_model"]),
        [
            "semantic_model:metrics_shop.balances",
            "semantic_model:metrics_shop.customers",
            "semantic_model:metrics_shop.orders",
            "semantic_model:metrics_shop.regions",
            "semantic_model:metrics_shop.visits",
        ]
    );
    assert_eq!(ls(&["-s", "semantic_model:orders+"]).len(), 22);
    // A metric lists what `pm query` can group it by.
    let shown = ls(&["-s", "metric:revenue_per_customer", "--output", "json"]);
    let metric: serde_json::Value = serde_json::from_str(&shown[0]).expect("json");
    assert_eq!(metric["label"], "Revenue per customer");
    assert_eq!(metric["type"], "ratio");
    let dims: Vec<&str> = metric["dimensions"]
        .as_array()
        .expect("dimensions")
        .iter()
        .filter_map(|d| d.as_str())
        .collect();
    for d in [
        "metric_time",
        "order__status",
        "customer__tier",
        "customer__region__manager",
        "customer",
    ] {
        assert!(dims.contains(&d), "{d} in {dims:?}");
    }
    // A visit's channel is not reached from orders.
    assert!(!dims.contains(&"visit__channel"), "{dims:?}");
}

/// The fixture with `from` replaced by `to` in its semantic YAML: the
/// diagnostic of `pm parse`, which must fail as a project error.
fn broken(from: &str, to: &str) -> String {
    let dir = fixture("metrics");
    let path = "models/semantic.yml";
    let text = read(dir.path(), path);
    assert!(text.contains(from), "{from}");
    write(dir.path(), path, &text.replacen(from, to, 1));
    let r = pm(dir.path(), &["parse"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    unwrapped(&r.stderr)
}

#[test]
fn mistakes_in_definitions_are_errors_at_their_line() {
    let e = broken(
        "        agg: count_distinct\n        expr: customer_id\n      - name: average_order",
        "        agg: count_distinc\n        expr: customer_id\n      - name: average_order",
    );
    assert!(
        e.contains(
            "measure `customers_with_orders` of semantic model `orders` has agg `count_distinc`"
        ),
        "{e}"
    );
    assert!(
        e.contains("semantic.yml:46") && e.contains("did you mean `count_distinct`?"),
        "{e}"
    );

    let e = broken("      measure: discounts", "      measure: discount");
    assert!(
        e.contains(
            "simple metric `discounts` reads measure `discount`, which no semantic model defines"
        ),
        "{e}"
    );
    assert!(
        e.contains("semantic.yml:176") && e.contains("did you mean `discounts`"),
        "{e}"
    );

    let e = broken(
        "  - name: net_revenue\n",
        "  - name: net_revenue\n    bogus: 1\n",
    );
    assert!(
        e.contains("metric `net_revenue` has an unknown key `bogus`")
            && e.contains("semantic.yml:238"),
        "{e}"
    );

    let e = broken(
        "        - name: discounts\n",
        "        - name: revenue_per_customr\n",
    );
    assert!(
        e.contains(
            "derived metric `net_revenue` reads metric `revenue_per_customr`, which is not defined"
        ),
        "{e}"
    );
    assert!(e.contains("did you mean `revenue_per_customer`?"), "{e}");

    let e = broken(
        "      agg_time_dimension: ordered_at",
        "      agg_time_dimension: ordered_on",
    );
    assert!(
        e.contains("semantic model `orders` aggregates over time dimension `ordered_on`"),
        "{e}"
    );
    assert!(e.contains("did you mean `ordered_at`?"), "{e}");

    let e = broken(
        "        entity: customer\n        window: 7 days",
        "        entity: region\n        window: 7 days",
    );
    assert!(e.contains("joins on entity `region`, which semantic model `visits` (of measure `visitors`) does not have"), "{e}");

    let e = broken(
        "        - revenue\n        - orders",
        "        - revenue\n        - order",
    );
    assert!(
        e.contains("saved query `revenue_by_region` names metric `order`, which is not defined"),
        "{e}"
    );

    let e = broken(
        "        window: 7 days\n  - name: revenue_mtd",
        "        window: 7 dayz\n  - name: revenue_mtd",
    );
    assert!(
        e.contains("`window` of metric `revenue_7d` is `7 dayz`, not a count and a granularity"),
        "{e}"
    );
}

#[test]
fn a_semantic_model_over_a_model_that_does_not_exist_is_an_error_at_its_entry() {
    let e = broken("    model: ref('orders')\n", "    model: ref('orderz')\n");
    assert!(e.contains("ref('orderz') names no model"), "{e}");
    assert!(
        e.contains("semantic.yml:12") && e.contains("did you mean `orders`?"),
        "{e}"
    );
}

#[test]
fn a_cycle_between_derived_metrics_names_each_input() {
    let e = broken(
        "        - name: revenue\n        - name: discounts\n",
        "        - name: revenue\n        - name: loop_back\n  - name: loop_back\n    label: Loop\n    type: derived\n    type_params:\n      expr: net_revenue\n      metrics: [net_revenue]\n",
    );
    assert!(
        e.contains("dependency cycle: loop_back → net_revenue → loop_back"),
        "{e}"
    );
    assert!(e.contains("a metric cannot read itself"), "{e}");
}

#[test]
fn the_latest_spec_reads_into_the_same_definitions_and_its_mistakes_point_at_their_line() {
    let dir = fixture("metrics");
    let latest = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metrics_latest_semantic.yml"),
    )
    .expect("latest spec");
    write(dir.path(), "models/semantic.yml", &latest);
    let r = pm(dir.path(), &["parse"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = manifest(dir.path());
    // A simple metric of a model is a measure of its semantic model and a metric reading it.
    let orders = &m["semantic_models"]["semantic_model.metrics_shop.orders"];
    assert_eq!(orders["model"], "ref('orders')");
    assert_eq!(orders["defaults"]["agg_time_dimension"], "ordered_at");
    let p90 = orders["measures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "p90_order")
        .expect("p90 measure");
    assert_eq!(p90["agg_params"]["percentile"], 0.9);
    let entity = orders["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "customer")
        .expect("entity");
    assert_eq!(entity["expr"], "customer_id");
    let conversion = &m["metrics"]["metric.metrics_shop.visit_to_order"]["type_params"]
        ["conversion_type_params"];
    assert_eq!(conversion["base_measure"]["name"], "visitors");
    assert_eq!(conversion["window"]["count"], 7);
    // A mistake in a flow-style metric is shown on its own line.
    write(
        dir.path(),
        "models/semantic.yml",
        &latest.replace("agg: sum, expr: discount}", "agg: summ, expr: discount}"),
    );
    let r = pm(dir.path(), &["parse"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let e = unwrapped(&r.stderr);
    assert!(
        e.contains("measure `discounts` of semantic model `orders` has agg `summ`")
            && e.contains("semantic.yml:38"),
        "{e}"
    );
}
