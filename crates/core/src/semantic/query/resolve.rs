//! What a measure can be grouped and filtered by, as MetricFlow offers it:
//! `metric_time` at the grains of the measure's time dimension; its own
//! model's dimensions through the model's primary entity (`order__status`);
//! its entities (`customer`); and what models reached through an entity
//! hold, up to two joins away (`customer__region`,
//! `customer__region__manager`), each join to a model where the entity is
//! primary or unique, so that no row of the measure is counted twice.

use super::template::{Kind, Reference};
use crate::semantic::definition::{
    Dimension, DimensionType, Entity, EntityType, Grain, Measure, SemanticModel,
};
use crate::semantic::Layer;
use std::collections::BTreeMap;

/// One join from the model before: the entity followed (`from` in that
/// model, `to` in the model reached), and the model reached.
#[derive(Debug, Clone, Copy)]
pub struct Hop<'a> {
    pub from: &'a Entity,
    pub to: &'a Entity,
    pub model: &'a SemanticModel,
}

#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// The measure's time dimension, as `metric_time`.
    MetricTime(&'a Dimension),
    Dimension(&'a Dimension),
    Entity(&'a Entity),
}

/// An element reachable from a measure: the joins to its model, what it
/// is there, and the grain a time element is truncated to.
#[derive(Debug, Clone)]
pub struct Element<'a> {
    pub name: String,
    pub path: Vec<Hop<'a>>,
    pub target: Target<'a>,
    pub grain: Option<Grain>,
}

/// Every element a measure of `model` can be grouped by, by name; a name
/// reached two ways maps to None (ambiguous).
pub struct Reachable<'a> {
    pub elements: BTreeMap<String, Option<Element<'a>>>,
}

impl<'a> Reachable<'a> {
    pub fn of(layer: &Layer<'a>, model: &'a SemanticModel, measure: &'a Measure) -> Reachable<'a> {
        let mut r = Reachable {
            elements: BTreeMap::new(),
        };
        if let Some(t) = model
            .agg_time_dimension_of(measure)
            .and_then(|d| model.dimension(d))
        {
            r.time_names("metric_time", &[], Target::MetricTime(t), t.grain());
        }
        for e in &model.entities {
            r.add(e.name.clone(), &[], Target::Entity(e), None);
        }
        if let Some(primary) = model.primary() {
            r.model_elements(primary, &[], model, Some(primary));
        }
        for e in &model.entities {
            for first in join_targets(layer, model, e) {
                let one = [first];
                r.model_elements(&e.name, &one, first.model, Some(&e.name));
                for f in first.model.entities.iter().filter(|f| f.name != e.name) {
                    for second in join_targets(layer, first.model, f) {
                        if std::ptr::eq(second.model, model) {
                            continue;
                        }
                        let two = [first, second];
                        let prefix = format!("{}__{}", e.name, f.name);
                        r.model_elements(&prefix, &two, second.model, Some(&f.name));
                    }
                }
            }
        }
        r
    }

    /// A model's dimensions (time ones at each grain) and its other
    /// entities, named with `prefix`; `joined_on` is the entity the model
    /// was reached by (or the measure's own model's primary entity).
    fn model_elements(
        &mut self,
        prefix: &str,
        path: &[Hop<'a>],
        model: &'a SemanticModel,
        joined_on: Option<&str>,
    ) {
        for d in &model.dimensions {
            let name = format!("{prefix}__{}", d.name);
            match d.dimension_type {
                DimensionType::Time => {
                    self.time_names(&name, path, Target::Dimension(d), d.grain())
                }
                DimensionType::Categorical => self.add(name, path, Target::Dimension(d), None),
            }
        }
        for e in model
            .entities
            .iter()
            .filter(|e| Some(e.name.as_str()) != joined_on)
        {
            self.add(
                format!("{prefix}__{}", e.name),
                path,
                Target::Entity(e),
                None,
            );
        }
    }

    /// A time element at its own grain (plain name) and at each coarser one.
    fn time_names(&mut self, name: &str, path: &[Hop<'a>], target: Target<'a>, own: Option<Grain>) {
        let own = own.unwrap_or(Grain::Day);
        self.add(name.to_string(), path, target, Some(own));
        for g in Grain::ALL.into_iter().filter(|g| *g >= own) {
            self.add(format!("{name}__{}", g.as_str()), path, target, Some(g));
        }
    }

    fn add(&mut self, name: String, path: &[Hop<'a>], target: Target<'a>, grain: Option<Grain>) {
        let element = Element {
            name: name.clone(),
            path: path.to_vec(),
            target,
            grain,
        };
        self.elements
            .entry(name)
            .and_modify(|e| *e = None)
            .or_insert(Some(element));
    }

    /// The element `reference` names, or why not (with close names).
    pub fn resolve(&self, reference: &Reference) -> Result<Element<'a>, String> {
        let Reference::Element { path, grain, kind } = reference else {
            return Err("a Metric() filter is not supported by pm query yet".into());
        };
        let plain = path.join("__");
        let name = match grain {
            Some(g) => format!("{plain}__{}", g.as_str()),
            None => plain.clone(),
        };
        match self.elements.get(&name) {
            Some(Some(e)) => {
                let is = match e.target {
                    Target::Entity(_) => Kind::Entity,
                    Target::MetricTime(_) => Kind::TimeDimension,
                    Target::Dimension(d) if d.dimension_type == DimensionType::Time => {
                        Kind::TimeDimension
                    }
                    Target::Dimension(_) => Kind::Dimension,
                };
                let fits = match kind {
                    Kind::Any => true,
                    Kind::Entity => is == Kind::Entity,
                    // A time dimension is a dimension too (`Dimension('x').grain(...)`).
                    Kind::Dimension => is != Kind::Entity,
                    Kind::TimeDimension => is == Kind::TimeDimension,
                };
                if !fits {
                    let call = match is {
                        Kind::Entity => "Entity",
                        Kind::TimeDimension => "TimeDimension",
                        _ => "Dimension",
                    };
                    let what = match kind {
                        Kind::Entity => "an entity",
                        Kind::TimeDimension => "a time dimension",
                        _ => "a dimension",
                    };
                    return Err(format!(
                        "`{plain}` is not {what}; write {call}('{plain}'), as MetricFlow requires"
                    ));
                }
                let mut e = e.clone();
                // The column keeps the name the query gave (`metric_time`
                // is `metric_time__day` as MetricFlow names it).
                e.name = match (&e.target, grain) {
                    (Target::MetricTime(_) | Target::Dimension(_), None) if e.grain.is_some() => {
                        format!("{plain}__{}", e.grain.map_or("day", Grain::as_str))
                    }
                    _ => name,
                };
                Ok(e)
            }
            Some(None) => Err(format!(
                "`{name}` can be reached along more than one join path; MetricFlow refuses it too"
            )),
            None => {
                let close = crate::error::closest(&name, self.elements.keys().map(String::as_str));
                Err(format!(
                    "`{name}` is not something this metric can be grouped or filtered by; {}",
                    crate::error::did_you_mean(
                        &close,
                        "list what it can with `pm ls --resource-type metric --output json`"
                    )
                ))
            }
        }
    }
}

/// The models `entity` of `model` joins to without fanning out: those
/// where it is primary or unique.
fn join_targets<'a>(
    layer: &Layer<'a>,
    model: &'a SemanticModel,
    entity: &'a Entity,
) -> Vec<Hop<'a>> {
    layer
        .semantic_models
        .iter()
        .map(|s| s.def)
        .filter(|other| !std::ptr::eq(*other, model))
        .filter_map(|other| {
            let there = other.entity(&entity.name)?;
            matches!(there.entity_type, EntityType::Primary | EntityType::Unique).then_some(Hop {
                from: entity,
                to: there,
                model: other,
            })
        })
        .collect()
}
