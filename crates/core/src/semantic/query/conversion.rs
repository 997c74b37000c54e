//! Conversion metrics, as MetricFlow computes them: each conversion event
//! (a row of the conversion measure) is matched to the latest base event of
//! the same entity (and the same constant properties) within the window
//! before it, and counted where that base event falls; the rate is
//! conversions over the base measure.

use super::sql::{self, aggregate, indent, interval};
use super::template::{Kind, Reference, Template};
use super::{Planner, Shape};
use crate::semantic::definition::{
    ConstantProperty, ConversionCalculation, ConversionParams, Grain, Metric, SemanticModel,
};

/// The conversion events, each a row with its own id: the entity, the day,
/// the measure's value, and each constant property's value.
struct Events {
    sql: String,
    /// The join to the base events, and the window's partition.
    on: Vec<String>,
    partition: Vec<String>,
}

impl<'a> Planner<'_, 'a> {
    pub(super) fn conversion(
        &self,
        metric: &'a Metric,
        column: &str,
        filters: &[Template],
    ) -> Result<(String, Vec<String>), String> {
        let c = metric
            .type_params
            .conversion_type_params
            .as_ref()
            .ok_or("a conversion metric without conversion_type_params")?;
        let mut filters = filters.to_vec();
        filters.extend(super::templates(c.base_measure.filter.as_ref())?);
        let base = &c.base_measure.name;
        let (base_model, _) = self
            .layer
            .measure(base)
            .ok_or_else(|| format!("no semantic model defines measure `{base}`"))?;
        let (extra, base_properties) = event_elements(metric, c, base_model, |p| &p.base_property)?;
        let (base_rows, cols) = self.measure_as(
            base,
            "__base",
            &filters,
            self.group_by,
            None,
            Shape::Rows(&extra),
        )?;
        let (base_agg, _) = self.measure(base, "__base", &filters, self.group_by, None)?;
        let (model, measure) = self
            .layer
            .measure(&c.conversion_measure.name)
            .ok_or_else(|| {
                format!(
                    "no semantic model defines measure `{}`",
                    c.conversion_measure.name
                )
            })?;
        let events = self.events(metric, c, model, &base_properties)?;
        let matched = matched(&base_rows, &events, &cols);
        let mut conversions = String::from("SELECT\n  ");
        let mut out_cols: Vec<String> = cols.clone();
        out_cols.push(format!(
            "{} AS __conversions",
            aggregate(measure, "__value")
        ));
        conversions.push_str(&out_cols.join("\n  , "));
        conversions.push_str(&format!("\nFROM (\n{}\n) matched", indent(&matched)));
        if !cols.is_empty() {
            conversions.push_str(&format!("\nGROUP BY\n  {}", cols.join("\n  , ")));
        }
        let combined = sql::combine(
            &[
                (base_agg, vec!["__base".into()]),
                (conversions, vec!["__conversions".into()]),
            ],
            &cols,
        );
        let value = match c.calculation {
            ConversionCalculation::ConversionRate => format!(
                "CAST(__conversions AS DOUBLE PRECISION) / CAST(NULLIF(__base, 0) AS DOUBLE PRECISION) AS {column}"
            ),
            ConversionCalculation::Conversions => format!("__conversions AS {column}"),
        };
        Ok((super::wrap(&combined, &cols, &value), cols))
    }
}

/// What one side's events carry besides the group-bys: the entity, the
/// day, and each constant property (`property` picks the side's name of
/// it), with the properties' column names.
fn event_elements(
    metric: &Metric,
    c: &ConversionParams,
    model: &SemanticModel,
    property: fn(&ConstantProperty) -> &str,
) -> Result<(Vec<Reference>, Vec<String>), String> {
    let mut extra = vec![
        Reference::Element {
            path: vec![c.entity.clone()],
            grain: None,
            kind: Kind::Entity,
        },
        Reference::Element {
            path: vec!["metric_time".into()],
            grain: Some(Grain::Day),
            kind: Kind::TimeDimension,
        },
    ];
    let mut columns = Vec::new();
    for p in c.constant_properties.iter().flatten() {
        let name = property(p);
        // A dimension goes by the model's primary entity; an entity by itself.
        let path = match (model.dimension(name), model.primary()) {
            (Some(_), Some(primary)) => vec![primary.to_string(), name.to_string()],
            (None, _) if model.entity(name).is_some() => vec![name.to_string()],
            _ => {
                return Err(format!(
                    "conversion metric `{}`: semantic model `{}` has no dimension or entity `{name}` (a constant property)",
                    metric.name, model.name
                ))
            }
        };
        columns.push(path.join("__"));
        extra.push(Reference::Element {
            path,
            grain: None,
            kind: Kind::Any,
        });
    }
    Ok((extra, columns))
}

impl<'a> Planner<'_, 'a> {
    /// The conversion events: the conversion measure's rows (its filter
    /// applied), each with its own id, its entity, day and constant
    /// properties.
    fn events(
        &self,
        metric: &Metric,
        c: &ConversionParams,
        model: &'a SemanticModel,
        base_properties: &[String],
    ) -> Result<Events, String> {
        let (extra, properties) = event_elements(metric, c, model, |p| &p.conversion_property)?;
        let filters = super::templates(c.conversion_measure.filter.as_ref())?;
        let (rows, _) = self.measure_as(
            &c.conversion_measure.name,
            "__conversions",
            &filters,
            &[],
            None,
            Shape::Rows(&extra),
        )?;
        let mut on = vec![
            format!("b.{0} = e.{0}", c.entity),
            "b.metric_time__day <= e.metric_time__day".to_string(),
        ];
        if let Some(w) = c.window {
            on.push(format!(
                "b.metric_time__day > e.metric_time__day - {}",
                interval(w)
            ));
        }
        let mut partition = vec![
            format!("e.{}", c.entity),
            "e.metric_time__day".to_string(),
            "e.__event".to_string(),
        ];
        for (base_column, column) in base_properties.iter().zip(&properties) {
            on.push(format!("b.{base_column} = e.{column}"));
            partition.push(format!("e.{column}"));
        }
        Ok(Events {
            sql: format!(
                "SELECT\n  *\n  , GEN_RANDOM_UUID() AS __event\nFROM (\n{}\n) rows",
                indent(&rows)
            ),
            on,
            partition,
        })
    }
}

/// Each conversion event once, with the group-by columns of the latest
/// base event that leads to it.
fn matched(base_rows: &str, events: &Events, cols: &[String]) -> String {
    let window = format!(
        "OVER (\n    PARTITION BY {}\n    ORDER BY b.metric_time__day DESC\n    ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING\n  )",
        events.partition.join(", ")
    );
    let mut select: Vec<String> = cols
        .iter()
        .map(|g| format!("FIRST_VALUE(b.{g}) {window} AS {g}"))
        .collect();
    select.push("e.__event AS __event".into());
    select.push("e.__value AS __value".into());
    format!(
        "SELECT DISTINCT\n  {}\nFROM (\n{}\n) b\nINNER JOIN (\n{}\n) e\nON\n  {}",
        select.join("\n  , "),
        indent(base_rows),
        indent(&events.sql),
        events.on.join("\n  AND ")
    )
}
