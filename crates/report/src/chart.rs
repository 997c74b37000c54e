//! Trend charts as PNG, drawn in Rust with the font inside the binary (no
//! browser, no system fonts).

use super::config::Format;
use super::render::value;
use chrono::NaiveDate;
use plotters::prelude::*;
use pm_core::error::Code;
use pm_core::error::Problem;

/// DejaVu Sans (Bitstream Vera licence: assets/fonts/DejaVuSans-LICENSE.txt).
static FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

/// The colour of a day's marker; the last day's is `LAST`. Nothing else in a
/// chart is drawn in these colours, so a marker can be found in the image.
pub const MARKER: RGBColor = RGBColor(31, 119, 180);
pub const LAST: RGBColor = RGBColor(214, 39, 40);
const LINE: RGBColor = RGBColor(120, 170, 215);

/// What a chart shows: a metric over days ending on the report's day.
pub struct ChartData<'a> {
    pub label: &'a str,
    pub format: Format,
    pub currency: Option<&'a str>,
    pub points: &'a [(NaiveDate, Option<f64>)],
    pub width: u32,
    pub height: u32,
}

fn register_font() -> Result<(), Problem> {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(Problem::new(
            Code::ReportChart,
            "pm's built-in chart font cannot be read",
        ))
    }
}

fn drawing<E: std::fmt::Debug>(label: &str) -> impl Fn(E) -> Problem + '_ {
    move |e| {
        Problem::new(
            Code::ReportChart,
            format!("cannot draw the chart of {label}: {e:?}"),
        )
    }
}

/// The y axis: from 0 (or the lowest value, when below 0) to a bit above the highest.
fn y_range(values: &[f64]) -> (f64, f64) {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let lo = lo.min(0.0);
    let span = (hi - lo).max(hi.abs() * 0.1).max(1e-9);
    (
        lo - if lo < 0.0 { span * 0.1 } else { 0.0 },
        hi + span * 0.15,
    )
}

/// Draws the chart; returns the PNG file's bytes.
pub fn png(chart: &ChartData) -> Result<Vec<u8>, Problem> {
    register_font()?;
    let (w, h) = (chart.width, chart.height);
    let mut rgb = vec![0u8; (w as usize) * (h as usize) * 3];
    draw(chart, &mut rgb)?;
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(drawing(chart.label))?;
        writer
            .write_image_data(&rgb)
            .map_err(drawing(chart.label))?;
    }
    Ok(out)
}

fn draw(chart: &ChartData, rgb: &mut [u8]) -> Result<(), Problem> {
    let err = drawing(chart.label);
    let n = chart.points.len() as i32;
    let (Some(first), Some(last)) = (chart.points.first(), chart.points.last()) else {
        return Err(Problem::new(
            Code::ReportChart,
            format!("no days to chart for {}", chart.label),
        ));
    };
    let values: Vec<f64> = chart.points.iter().filter_map(|(_, v)| *v).collect();
    let (y0, y1) = y_range(&values);
    let root = BitMapBackend::with_buffer(rgb, (chart.width, chart.height)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    // The last day's value is in the title, not written on the line.
    let title = format!(
        "{} — {} days to {}: {}",
        chart.label,
        n,
        last.0.format("%b %-d, %Y"),
        value(last.1, chart.format, chart.currency)
    );
    let mut plot = ChartBuilder::on(&root)
        .caption(title, (FAMILY, 18).into_font().color(&BLACK))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(96)
        .build_cartesian_2d(-1..n, y0..y1)
        .map_err(&err)?;
    let day_label = |x: &i32| {
        if (0..n).contains(x) {
            (first.0 + chrono::Days::new(*x as u64))
                .format("%b %-d")
                .to_string()
        } else {
            String::new()
        }
    };
    // Axis labels without cents: $60,000, not $60,000.00.
    let axis_format = match chart.format {
        Format::Currency | Format::Number if values.iter().any(|v| v.abs() >= 100.0) => {
            Format::Count
        }
        f => f,
    };
    let value_label = |y: &f64| match (chart.format, axis_format) {
        (Format::Currency, Format::Count) => {
            let whole = value(Some(y.round()), Format::Currency, chart.currency);
            whole.strip_suffix(".00").unwrap_or(&whole).to_string()
        }
        _ => value(Some(*y), axis_format, chart.currency),
    };
    // About one date every 90 pixels, so that they never run together.
    let x_labels = ((chart.width / 90) as usize)
        .clamp(2, 10)
        .min(n.max(1) as usize);
    let y_title = match (chart.format, chart.currency) {
        (Format::Currency, Some(code)) => format!("{} ({code})", chart.label),
        (Format::Percent, _) => format!("{} (%)", chart.label),
        (Format::Duration, _) => format!("{} (time)", chart.label),
        _ => chart.label.to_string(),
    };
    plot.configure_mesh()
        .x_labels(x_labels)
        .y_labels(6)
        .x_desc("Day")
        .y_desc(y_title)
        .axis_desc_style((FAMILY, 14).into_font().color(&RGBColor(60, 60, 60)))
        .x_label_formatter(&day_label)
        .y_label_formatter(&value_label)
        .label_style((FAMILY, 13).into_font().color(&RGBColor(60, 60, 60)))
        .bold_line_style(RGBColor(225, 225, 225))
        .light_line_style(RGBColor(244, 244, 244))
        .axis_style(RGBColor(150, 150, 150))
        .draw()
        .map_err(&err)?;
    // The line, broken where a day has no value.
    let mut segment: Vec<(i32, f64)> = Vec::new();
    let mut segments = Vec::new();
    for (x, (_, v)) in chart.points.iter().enumerate() {
        match v {
            Some(v) => segment.push((x as i32, *v)),
            None => segments.push(std::mem::take(&mut segment)),
        }
    }
    segments.push(segment);
    for s in segments.into_iter().filter(|s| s.len() > 1) {
        plot.draw_series(LineSeries::new(s, LINE.stroke_width(2)))
            .map_err(&err)?;
    }
    // A marker per day with a value; the last day's larger, in red, with its value.
    let plot_width = f64::from(chart.width.saturating_sub(110));
    let spacing = plot_width / f64::from(n.max(1) as u32 + 1);
    let radius = (spacing / 3.0).clamp(1.0, 4.0) as i32;
    let last_x = n - 1;
    plot.draw_series(
        chart
            .points
            .iter()
            .enumerate()
            .filter(|(x, _)| *x as i32 != last_x)
            .filter_map(|(x, (_, v))| {
                v.map(|v| Circle::new((x as i32, v), radius, MARKER.filled()))
            }),
    )
    .map_err(&err)?;
    if let Some(v) = last.1 {
        plot.draw_series(std::iter::once(Circle::new(
            (last_x, v),
            radius + 3,
            LAST.filled(),
        )))
        .map_err(&err)?;
    }
    root.present().map_err(&err)?;
    Ok(())
}
