//! The daily KPI digest: a day's metrics from a model with comparisons and
//! arrows, month-to-date sums, point-in-time values, PNG charts, delivered
//! to Slack or Telegram once per report and day.
//!
//! `config` reads `reports.yml`; `digest` computes (pure); `render` writes
//! text, Markdown and JSON; `chart` draws PNGs; `deliver` builds the API
//! requests and sends them.

pub mod chart;
pub mod config;
pub mod deliver;
pub mod digest;
pub mod render;
pub mod transport;
