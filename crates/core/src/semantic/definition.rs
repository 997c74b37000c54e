//! dbt's semantic layer as pm holds it: semantic models (entities,
//! dimensions, measures over one model), metrics, saved queries and the time
//! spine. Each serializes as dbt writes it in `semantic_manifest.json`, the
//! file MetricFlow reads; `line` fields say where each was written.

use serde::Serialize;
use serde_json::{Map, Value as Json};

/// A time granularity, finest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Grain {
    Microsecond,
    Millisecond,
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

impl Grain {
    pub const ALL: [Grain; 10] = [
        Grain::Microsecond,
        Grain::Millisecond,
        Grain::Second,
        Grain::Minute,
        Grain::Hour,
        Grain::Day,
        Grain::Week,
        Grain::Month,
        Grain::Quarter,
        Grain::Year,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Grain::Microsecond => "microsecond",
            Grain::Millisecond => "millisecond",
            Grain::Second => "second",
            Grain::Minute => "minute",
            Grain::Hour => "hour",
            Grain::Day => "day",
            Grain::Week => "week",
            Grain::Month => "month",
            Grain::Quarter => "quarter",
            Grain::Year => "year",
        }
    }

    /// A grain by its exact name (`month`), as in a group-by name.
    pub fn parse_exact(text: &str) -> Option<Grain> {
        Grain::ALL.into_iter().find(|g| g.as_str() == text)
    }

    /// A grain as written (`day`, `DAY`; `days` too, as in a window).
    pub fn parse(text: &str) -> Option<Grain> {
        let t = text.trim().to_ascii_lowercase();
        let t = t.strip_suffix('s').unwrap_or(&t);
        Grain::ALL.into_iter().find(|g| g.as_str() == t)
    }
}

/// Where a semantic model's rows come from: the model's relation.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NodeRelation {
    pub alias: String,
    pub schema_name: String,
    pub database: Option<String>,
    pub relation_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntityType {
    Primary,
    Unique,
    Foreign,
    Natural,
}

impl EntityType {
    pub const NAMES: [&'static str; 4] = ["primary", "unique", "foreign", "natural"];

    pub fn parse(text: &str) -> Option<EntityType> {
        Some(match text {
            "primary" => EntityType::Primary,
            "unique" => EntityType::Unique,
            "foreign" => EntityType::Foreign,
            "natural" => EntityType::Natural,
            _ => return None,
        })
    }
}

/// An entity: a key of a semantic model, by which models join.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entity {
    pub name: String,
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub entity_type: EntityType,
    pub role: Option<String>,
    pub expr: Option<String>,
    pub metadata: Option<Json>,
    pub label: Option<String>,
    pub config: ElementConfig,
    #[serde(skip)]
    pub line: usize,
}

impl Entity {
    /// The SQL expression of the key (its name when no `expr`).
    pub fn sql(&self) -> &str {
        self.expr.as_deref().unwrap_or(&self.name)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ElementConfig {
    pub meta: Map<String, Json>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DimensionType {
    Categorical,
    Time,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidityParams {
    pub is_start: bool,
    pub is_end: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DimensionTypeParams {
    pub time_granularity: Grain,
    pub validity_params: Option<ValidityParams>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dimension {
    pub name: String,
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub dimension_type: DimensionType,
    pub is_partition: bool,
    pub type_params: Option<DimensionTypeParams>,
    pub expr: Option<String>,
    pub metadata: Option<Json>,
    pub label: Option<String>,
    pub config: ElementConfig,
    #[serde(skip)]
    pub line: usize,
}

impl Dimension {
    pub fn sql(&self) -> &str {
        self.expr.as_deref().unwrap_or(&self.name)
    }

    /// A time dimension's own grain.
    pub fn grain(&self) -> Option<Grain> {
        self.type_params.as_ref().map(|p| p.time_granularity)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    Sum,
    Min,
    Max,
    CountDistinct,
    SumBoolean,
    Average,
    Percentile,
    Median,
    Count,
}

impl Aggregation {
    pub const NAMES: [&'static str; 9] = [
        "sum",
        "min",
        "max",
        "count_distinct",
        "sum_boolean",
        "average",
        "percentile",
        "median",
        "count",
    ];

    pub fn parse(text: &str) -> Option<Aggregation> {
        Some(match text {
            "sum" => Aggregation::Sum,
            "min" => Aggregation::Min,
            "max" => Aggregation::Max,
            "count_distinct" => Aggregation::CountDistinct,
            "sum_boolean" => Aggregation::SumBoolean,
            "average" => Aggregation::Average,
            "percentile" => Aggregation::Percentile,
            "median" => Aggregation::Median,
            "count" => Aggregation::Count,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AggregationParams {
    pub percentile: Option<f64>,
    pub use_discrete_percentile: bool,
    pub use_approximate_percentile: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NonAdditiveDimension {
    pub name: String,
    /// `min` or `max`: which end of the window the measure is read at.
    pub window_choice: Aggregation,
    pub window_groupings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measure {
    pub name: String,
    pub agg: Aggregation,
    pub description: Option<String>,
    pub create_metric: bool,
    pub expr: Option<String>,
    pub agg_params: Option<AggregationParams>,
    pub metadata: Option<Json>,
    pub non_additive_dimension: Option<NonAdditiveDimension>,
    pub agg_time_dimension: Option<String>,
    pub label: Option<String>,
    pub config: ElementConfig,
    #[serde(skip)]
    pub line: usize,
}

impl Measure {
    pub fn sql(&self) -> &str {
        self.expr.as_deref().unwrap_or(&self.name)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SemanticModelDefaults {
    pub agg_time_dimension: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SemanticModel {
    pub name: String,
    pub defaults: Option<SemanticModelDefaults>,
    pub description: Option<String>,
    pub node_relation: NodeRelation,
    pub primary_entity: Option<String>,
    pub entities: Vec<Entity>,
    pub measures: Vec<Measure>,
    pub dimensions: Vec<Dimension>,
    pub metadata: Option<Json>,
    pub label: Option<String>,
    pub config: ElementConfig,
    /// `model:` as written (`ref('orders')`).
    #[serde(skip)]
    pub model: String,
    #[serde(skip)]
    pub line: usize,
}

impl SemanticModel {
    pub fn measure(&self, name: &str) -> Option<&Measure> {
        self.measures.iter().find(|m| m.name == name)
    }

    pub fn dimension(&self, name: &str) -> Option<&Dimension> {
        self.dimensions.iter().find(|d| d.name == name)
    }

    pub fn entity(&self, name: &str) -> Option<&Entity> {
        self.entities.iter().find(|e| e.name == name)
    }

    /// The time dimension a measure is aggregated over in time.
    pub fn agg_time_dimension_of<'a>(&'a self, measure: &'a Measure) -> Option<&'a str> {
        measure.agg_time_dimension.as_deref().or(self
            .defaults
            .as_ref()
            .and_then(|d| d.agg_time_dimension.as_deref()))
    }

    /// The entity a row of the model is: its primary entity, whether
    /// declared as an entity or by `primary_entity:`.
    pub fn primary(&self) -> Option<&str> {
        self.entities
            .iter()
            .find(|e| e.entity_type == EntityType::Primary)
            .map(|e| e.name.as_str())
            .or(self.primary_entity.as_deref())
    }
}

/// `filter:` as dbt keeps it: templates ANDed together.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WhereFilters {
    pub where_filters: Vec<WhereFilter>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WhereFilter {
    pub where_sql_template: String,
}

impl WhereFilters {
    pub fn of(templates: Vec<String>) -> Option<WhereFilters> {
        (!templates.is_empty()).then(|| WhereFilters {
            where_filters: templates
                .into_iter()
                .map(|t| WhereFilter {
                    where_sql_template: t,
                })
                .collect(),
        })
    }

    pub fn templates(&self) -> impl Iterator<Item = &str> {
        self.where_filters
            .iter()
            .map(|w| w.where_sql_template.as_str())
    }
}

/// `7 days`, `1 month`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TimeWindow {
    pub count: u32,
    pub granularity: Grain,
}

impl TimeWindow {
    pub fn parse(text: &str) -> Option<TimeWindow> {
        let mut words = text.split_whitespace();
        let count = words.next()?.parse().ok()?;
        let granularity = Grain::parse(words.next()?)?;
        words
            .next()
            .is_none()
            .then_some(TimeWindow { count, granularity })
    }
}

/// A measure a metric reads.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeasureInput {
    pub name: String,
    pub filter: Option<WhereFilters>,
    pub alias: Option<String>,
    pub join_to_timespine: bool,
    pub fill_nulls_with: Option<i64>,
}

/// A metric a ratio or derived metric reads.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricInput {
    pub name: String,
    pub filter: Option<WhereFilters>,
    pub alias: Option<String>,
    pub offset_window: Option<TimeWindow>,
    pub offset_to_grain: Option<Grain>,
}

impl MetricInput {
    /// The name the input goes by in a derived metric's `expr`.
    pub fn alias_or_name(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricType {
    Simple,
    Ratio,
    Cumulative,
    Derived,
    Conversion,
}

impl MetricType {
    pub const NAMES: [&'static str; 5] = ["simple", "ratio", "cumulative", "derived", "conversion"];

    pub fn parse(text: &str) -> Option<MetricType> {
        Some(match text.to_ascii_lowercase().as_str() {
            "simple" => MetricType::Simple,
            "ratio" => MetricType::Ratio,
            "cumulative" => MetricType::Cumulative,
            "derived" => MetricType::Derived,
            "conversion" => MetricType::Conversion,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Simple => "simple",
            MetricType::Ratio => "ratio",
            MetricType::Cumulative => "cumulative",
            MetricType::Derived => "derived",
            MetricType::Conversion => "conversion",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversionCalculation {
    Conversions,
    ConversionRate,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConstantProperty {
    pub base_property: String,
    pub conversion_property: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConversionParams {
    pub base_measure: MeasureInput,
    pub conversion_measure: MeasureInput,
    pub entity: String,
    pub calculation: ConversionCalculation,
    pub window: Option<TimeWindow>,
    pub constant_properties: Option<Vec<ConstantProperty>>,
}

/// How a cumulative metric reads a period coarser than its window's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PeriodAggregation {
    First,
    Last,
    Average,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CumulativeParams {
    pub window: Option<TimeWindow>,
    pub grain_to_date: Option<Grain>,
    pub period_agg: PeriodAggregation,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MetricTypeParams {
    pub measure: Option<MeasureInput>,
    pub numerator: Option<MetricInput>,
    pub denominator: Option<MetricInput>,
    pub expr: Option<String>,
    pub window: Option<TimeWindow>,
    pub grain_to_date: Option<Grain>,
    pub metrics: Vec<MetricInput>,
    pub conversion_type_params: Option<ConversionParams>,
    pub cumulative_type_params: Option<CumulativeParams>,
    /// The measures the metric reads, all the way down (filled in when the
    /// metrics it reads are known).
    pub input_measures: Vec<MeasureInput>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metric {
    pub name: String,
    pub description: String,
    #[serde(rename = "type")]
    pub metric_type: MetricType,
    pub type_params: MetricTypeParams,
    pub filter: Option<WhereFilters>,
    pub metadata: Option<Json>,
    pub label: String,
    pub config: ElementConfig,
    pub time_granularity: Option<Grain>,
    #[serde(skip)]
    pub line: usize,
}

impl Metric {
    /// The metrics a ratio or derived metric reads.
    pub fn metric_inputs(&self) -> Vec<&MetricInput> {
        let p = &self.type_params;
        match self.metric_type {
            MetricType::Ratio => p.numerator.iter().chain(p.denominator.iter()).collect(),
            MetricType::Derived => p.metrics.iter().collect(),
            _ => Vec::new(),
        }
    }

    /// The measures a simple, cumulative or conversion metric reads itself.
    pub fn own_measures(&self) -> Vec<&MeasureInput> {
        let p = &self.type_params;
        match self.metric_type {
            MetricType::Simple | MetricType::Cumulative => p.measure.iter().collect(),
            MetricType::Conversion => p
                .conversion_type_params
                .iter()
                .flat_map(|c| [&c.base_measure, &c.conversion_measure])
                .collect(),
            _ => Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportAs {
    Table,
    View,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportConfig {
    pub export_as: ExportAs,
    pub schema_name: Option<String>,
    pub alias: Option<String>,
    /// Written in `manifest.json` only (dbt leaves it out of the semantic manifest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Export {
    pub name: String,
    pub config: ExportConfig,
    #[serde(skip)]
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SavedQueryParams {
    pub metrics: Vec<String>,
    pub group_by: Vec<String>,
    #[serde(rename = "where")]
    pub where_filter: Option<WhereFilters>,
    pub order_by: Vec<String>,
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SavedQuery {
    pub name: String,
    pub query_params: SavedQueryParams,
    pub description: Option<String>,
    pub metadata: Option<Json>,
    pub label: Option<String>,
    pub exports: Vec<Export>,
    pub tags: Vec<String>,
    #[serde(skip)]
    pub line: usize,
}

/// One of the semantic layer's definitions, as a node of the manifest carries
/// it (boxed there, so the sizes of the variants cost nothing per node).
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Definition {
    SemanticModel(SemanticModel),
    Metric(Metric),
    SavedQuery(SavedQuery),
}

/// The time spine: a model with a row per day (or finer), which cumulative
/// metrics, offsets and filled gaps join to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimeSpine {
    pub node_relation: NodeRelation,
    pub primary_column: TimeSpineColumn,
    pub custom_granularities: Vec<Json>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimeSpineColumn {
    pub name: String,
    pub time_granularity: Grain,
}

#[cfg(test)]
mod tests {
    use super::{Grain, TimeWindow};

    #[test]
    fn windows_and_grains_read_as_dbt_writes_them() {
        assert_eq!(
            TimeWindow::parse("7 days"),
            Some(TimeWindow {
                count: 7,
                granularity: Grain::Day
            })
        );
        assert_eq!(
            TimeWindow::parse("1 MONTH"),
            Some(TimeWindow {
                count: 1,
                granularity: Grain::Month
            })
        );
        for bad in ["7", "days", "7 dayz", "7 days ago", "-1 day"] {
            assert_eq!(TimeWindow::parse(bad), None, "{bad}");
        }
        assert_eq!(Grain::parse("quarter"), Some(Grain::Quarter));
        assert_eq!(Grain::parse("nanosecond"), None);
        assert!(Grain::Day < Grain::Week && Grain::Month < Grain::Year);
    }
}
