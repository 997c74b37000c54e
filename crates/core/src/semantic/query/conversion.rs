//! Conversion metrics, as MetricFlow computes them: each conversion event
//! (a row of the conversion measure) is matched to the latest base event of
//! the same entity within the window before it, and counted where that
//! base event falls; the rate is conversions over the base measure.

use super::sql::{self, aggregate, indent, interval, measure_value};
use super::template::{Kind, Reference, Template};
use super::{relation_of, Planner, Shape};
use crate::semantic::definition::{ConversionCalculation, Grain, Metric};

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
        let refuse = |what: &str| {
            Err(format!(
                "conversion metric `{}` has {what}, which pm query does not do yet",
                metric.name
            ))
        };
        if c.constant_properties
            .as_ref()
            .is_some_and(|p| !p.is_empty())
        {
            return refuse("constant_properties");
        }
        if c.conversion_measure.filter.is_some() {
            return refuse("a filter on its conversion measure");
        }
        let mut filters = filters.to_vec();
        filters.extend(super::templates(c.base_measure.filter.as_ref())?);
        // The base events: their group-by columns, entity and day.
        let entity = Reference::Element {
            path: vec![c.entity.clone()],
            grain: None,
            kind: Kind::Entity,
        };
        let day = Reference::Element {
            path: vec!["metric_time".into()],
            grain: Some(Grain::Day),
            kind: Kind::TimeDimension,
        };
        let extra = [entity, day];
        let base = &c.base_measure.name;
        let (base_rows, cols) = self.measure_as(
            base,
            "__base",
            &filters,
            self.group_by,
            None,
            Shape::Rows(&extra),
        )?;
        let (base_agg, _) = self.measure(base, "__base", &filters, self.group_by, None)?;
        // The conversion events, each its own row.
        let (model, measure) = self
            .layer
            .measure(&c.conversion_measure.name)
            .ok_or_else(|| {
                format!(
                    "no semantic model defines measure `{}`",
                    c.conversion_measure.name
                )
            })?;
        let key = model.entity(&c.entity).ok_or_else(|| {
            format!(
                "semantic model `{}` has no entity `{}`",
                model.name, c.entity
            )
        })?;
        let time = model
            .agg_time_dimension_of(measure)
            .and_then(|d| model.dimension(d))
            .ok_or_else(|| format!("measure `{}` has no time dimension", measure.name))?;
        let events = format!(
            "SELECT\n  {} AS __entity\n  , {} AS __day\n  , {} AS __value\n  , GEN_RANDOM_UUID() AS __event\nFROM {}",
            key.sql(),
            sql::date_trunc(Grain::Day, time.sql()),
            measure_value(measure),
            relation_of(model)
        );
        let mut on = vec![
            format!("b.{} = e.__entity", c.entity),
            "b.metric_time__day <= e.__day".to_string(),
        ];
        if let Some(w) = c.window {
            on.push(format!("b.metric_time__day > e.__day - {}", interval(w)));
        }
        let window = "OVER (\n    PARTITION BY e.__entity, e.__day, e.__event\n    ORDER BY b.metric_time__day DESC\n    ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING\n  )";
        let mut select: Vec<String> = cols
            .iter()
            .map(|g| format!("FIRST_VALUE(b.{g}) {window} AS {g}"))
            .collect();
        select.push("e.__event AS __event".into());
        select.push("e.__value AS __value".into());
        let matched = format!(
            "SELECT DISTINCT\n  {}\nFROM (\n{}\n) b\nINNER JOIN (\n{}\n) e\nON\n  {}",
            select.join("\n  , "),
            indent(&base_rows),
            indent(&events),
            on.join("\n  AND ")
        );
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
