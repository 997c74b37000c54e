//! What the server offers, as JSON: the metrics with their dimensions, the
//! saved queries with their parameters, and the OpenAPI document of it all.

use pm_core::semantic::query::group_by_names;
use pm_core::semantic::Layer;
use serde_json::{json, Value as Json};

/// `GET /api/v1/metrics`.
pub fn metrics(layer: &Layer) -> Json {
    let metrics: Vec<Json> = layer
        .metrics
        .iter()
        .map(|m| {
            let m = m.def;
            json!({
                "name": m.name,
                "label": m.label,
                "description": m.description,
                "type": m.metric_type.as_str(),
                "dimensions": group_by_names(layer, &m.name).unwrap_or_default(),
            })
        })
        .collect();
    json!({ "metrics": metrics })
}

/// The query-string parameters of saved query `name`'s endpoint, besides
/// the fixed ones: its metrics' dimensions.
fn dimensions_of(layer: &Layer, metrics: &[String]) -> Vec<String> {
    let mut names: Vec<String> = metrics
        .iter()
        .flat_map(|m| group_by_names(layer, m).unwrap_or_default())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// `GET /api/v1/saved-queries`.
pub fn saved_queries(layer: &Layer) -> Json {
    let list: Vec<Json> = layer
        .saved_queries
        .iter()
        .map(|s| {
            let s = s.def;
            let p = &s.query_params;
            json!({
                "name": s.name,
                "label": s.label,
                "description": s.description,
                "metrics": p.metrics,
                "group_by": p.group_by,
                "path": format!("/api/v1/saved-queries/{}", s.name),
                "dimensions": dimensions_of(layer, &p.metrics),
            })
        })
        .collect();
    json!({ "saved_queries": list })
}

fn text_param(name: &str, description: &str) -> Json {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": {"type": "string"}})
}

fn answers() -> Json {
    json!({
        "200": {
            "description": "The rows; `truncated` says the server's row cap cut them. `ETag` and `Cache-Control` let a client revalidate with If-None-Match.",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Answer"}},
                "text/csv": {"schema": {"type": "string"}}
            }
        },
        "304": {"description": "Not modified since the ETag sent in If-None-Match."},
        "400": {"$ref": "#/components/responses/Problem"},
        "401": {"$ref": "#/components/responses/Problem"},
        "403": {"$ref": "#/components/responses/Problem"},
        "503": {"$ref": "#/components/responses/Problem"},
        "504": {"$ref": "#/components/responses/Problem"}
    })
}

/// `GET /api/v1/openapi.json`: OpenAPI 3.1.
pub fn openapi(layer: &Layer, title: &str) -> Json {
    let metric_names: Vec<&str> = layer.metrics.iter().map(|m| m.def.name.as_str()).collect();
    let mut paths = serde_json::Map::new();
    paths.insert("/api/v1/health".into(), json!({"get": {
        "summary": "Whether the warehouse answers, and the last build",
        "security": [],
        "responses": {"200": {"description": "Reachable", "content": {"application/json": {}}}, "503": {"description": "Unreachable"}}
    }}));
    paths.insert("/api/v1/metrics".into(), json!({"get": {
        "summary": "The metrics, with labels, descriptions and the dimensions each can be grouped and filtered by",
        "responses": {"200": {"description": "The metrics", "content": {"application/json": {}}}, "401": {"$ref": "#/components/responses/Problem"}}
    }}));
    paths.insert("/api/v1/saved-queries".into(), json!({"get": {
        "summary": "The saved queries, each an endpoint",
        "responses": {"200": {"description": "The saved queries", "content": {"application/json": {}}}, "401": {"$ref": "#/components/responses/Problem"}}
    }}));
    paths.insert("/api/v1/query".into(), json!({"post": {
        "summary": "Metrics by dimensions, as `pm query` asks them",
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Query"}}}},
        "responses": answers()
    }}));
    for s in &layer.saved_queries {
        let s = s.def;
        let mut params = vec![
            text_param(
                "start_date",
                "First day (metric_time), inclusive: 2024-01-01",
            ),
            text_param("end_date", "Last day (metric_time), inclusive"),
            text_param("date", "One day: start_date and end_date at once"),
            text_param("limit", "At most this many rows"),
            text_param(
                "metrics",
                "A comma-separated subset of the saved query's metrics",
            ),
        ];
        for d in dimensions_of(layer, &s.query_params.metrics) {
            params.push(text_param(
                &d,
                "Keep rows whose value is this one (or one of several, comma-separated)",
            ));
        }
        paths.insert(
            format!("/api/v1/saved-queries/{}", s.name),
            json!({"get": {
                "summary": s.description.clone().unwrap_or_else(|| format!("Saved query {}", s.name)),
                "parameters": params,
                "responses": answers()
            }}),
        );
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": title, "version": env!("CARGO_PKG_VERSION")},
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "responses": {"Problem": {"description": "What went wrong", "content": {"application/json": {"schema": {
                "type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]
            }}}}},
            "schemas": {
                "Query": {
                    "type": "object",
                    "required": ["metrics"],
                    "additionalProperties": false,
                    "properties": {
                        "metrics": {"type": "array", "items": {"type": "string", "enum": metric_names}},
                        "group_by": {"type": "array", "items": {"type": "string"}, "description": "metric_time__month, user__country…"},
                        "where": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
                                  "description": "Comparisons, AND/OR/NOT, IN, BETWEEN, IS NULL and LIKE over dimensions and literals: user__country in ('SA', 'AE')"},
                        "order_by": {"type": "array", "items": {"type": "string"}, "description": "Column names; -name descends"},
                        "limit": {"type": "integer", "minimum": 0},
                        "start_time": {"type": "string", "description": "2024-01-01 or 2024-01-01T00:00:00"},
                        "end_time": {"type": "string"}
                    }
                },
                "Answer": {
                    "type": "object",
                    "required": ["columns", "rows", "truncated"],
                    "properties": {
                        "columns": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}, "type": {"type": "string"}}}},
                        "rows": {"type": "array", "items": {"type": "array"}},
                        "truncated": {"type": "boolean"}
                    }
                }
            }
        }
    })
}
