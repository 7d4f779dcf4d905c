//! The `/logins` chart: failures per minute over the chosen window, with the per-minute
//! alert thresholds drawn as dashed lines, as a PNG sized for a phone. Drawn with plotters
//! and the embedded DejaVu Sans, so it needs no system fonts.

use chrono::{DateTime, Duration, Utc};
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use std::sync::Once;

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const WIDTH: u32 = 960;
const HEIGHT: u32 = 600;

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("drawing the chart failed: {0}")]
    Draw(String),
    #[error("encoding the chart failed: {0}")]
    Encode(#[from] png::EncodingError),
}

/// A horizontal line: a rule's threshold expressed in failures per minute.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub label: String,
    pub per_minute: f64,
}

/// What to draw: failures per bucket from `since` to `until`.
pub struct ChartData<'a> {
    pub title: &'a str,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub bucket: Duration,
    /// (bucket start, failures in the bucket), any order, gaps are zero.
    pub failures: &'a [(DateTime<Utc>, i64)],
    pub thresholds: &'a [Threshold],
}

fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The embedded font is known good; a failure would show as missing text only.
        let _ = register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Failures per minute for each bucket of the window, gaps filled with zero.
pub fn per_minute_series(data: &ChartData<'_>) -> Vec<(DateTime<Utc>, f64)> {
    let step = data.bucket.num_seconds().max(1);
    let start = data.since.timestamp().div_euclid(step) * step;
    let buckets = ((data.until.timestamp() - start) / step + 1).max(1) as usize;
    let mut counts = vec![0i64; buckets];
    for (at, n) in data.failures {
        let i = (at.timestamp() - start).div_euclid(step);
        if (0..buckets as i64).contains(&i) {
            counts[i as usize] += n;
        }
    }
    let scale = 60.0 / step as f64;
    counts
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let at = DateTime::from_timestamp(start + i as i64 * step, 0).unwrap_or(data.since);
            (at, *n as f64 * scale)
        })
        .collect()
}

/// Draw the chart and return PNG bytes.
pub fn render(data: &ChartData<'_>) -> Result<Vec<u8>, ChartError> {
    register();
    let series = per_minute_series(data);
    let peak = series.iter().map(|(_, v)| *v).fold(0.0, f64::max);
    let top_line = data
        .thresholds
        .iter()
        .map(|t| t.per_minute)
        .fold(0.0, f64::max);
    let y_max = (peak.max(top_line) * 1.15).max(5.0);
    let mut rgb = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, data, &series, y_max).map_err(|e| ChartError::Draw(e.to_string()))?;
        root.present()
            .map_err(|e| ChartError::Draw(e.to_string()))?;
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&rgb)?;
    writer.finish()?;
    Ok(out)
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn draw(
    root: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    data: &ChartData<'_>,
    series: &[(DateTime<Utc>, f64)],
    y_max: f64,
) -> DrawResult {
    root.fill(&WHITE)?;
    let span = data.until - data.since;
    let time_format = if span > Duration::days(1) {
        "%d %b %H:%M"
    } else {
        "%H:%M"
    };
    let mut chart = ChartBuilder::on(root)
        .caption(data.title, ("sans-serif", 30))
        .margin(16)
        .x_label_area_size(46)
        .y_label_area_size(64)
        .build_cartesian_2d(data.since..data.until, 0.0..y_max)?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(235, 235, 235))
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&|t| t.format(time_format).to_string())
        .y_label_formatter(&|v| format!("{v:.0}"))
        .y_desc("failures / min")
        .x_desc("UTC")
        .label_style(("sans-serif", 20))
        .axis_desc_style(("sans-serif", 20))
        .draw()?;
    let red = RGBColor(200, 40, 40);
    chart
        .draw_series(
            AreaSeries::new(series.iter().copied(), 0.0, red.mix(0.25))
                .border_style(red.stroke_width(3)),
        )?
        .label("failures / min")
        .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 24, y + 6)], red.filled()));
    let palette = [
        RGBColor(30, 90, 200),
        RGBColor(230, 140, 0),
        RGBColor(90, 90, 90),
    ];
    for (i, t) in data.thresholds.iter().enumerate() {
        let color = palette[i % palette.len()];
        let line = DashedLineSeries::new(
            [(data.since, t.per_minute), (data.until, t.per_minute)],
            12,
            8,
            color.stroke_width(2),
        );
        chart
            .draw_series(line)?
            .label(format!("{} ({:.0}/min)", t.label, t.per_minute))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], color.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 20))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_png_with_thresholds_and_gaps() {
        let until = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let since = until - Duration::hours(1);
        let failures = [
            (since + Duration::minutes(10), 40),
            (since + Duration::minutes(11), 130),
            (since + Duration::minutes(12), 60),
            (since + Duration::minutes(30), 3),
        ];
        let thresholds = [
            Threshold {
                label: "ip-failures".into(),
                per_minute: 11.0,
            },
            Threshold {
                label: "surge".into(),
                per_minute: 101.0,
            },
        ];
        let data = ChartData {
            title: "Failed logins, last 1h",
            since,
            until,
            bucket: Duration::minutes(1),
            failures: &failures,
            thresholds: &thresholds,
        };
        let series = per_minute_series(&data);
        assert_eq!(series.len(), 61);
        assert_eq!(series.iter().map(|(_, v)| v).sum::<f64>(), 233.0);
        let png = render(&data).unwrap();
        // To look at it: OPSGUARD_CHART_OUT=/tmp/chart.png cargo test --lib chart
        if let Ok(path) = std::env::var("OPSGUARD_CHART_OUT") {
            std::fs::write(path, &png).unwrap();
        }
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), WIDTH);
        assert!(png.len() > 10_000, "a drawn chart, not a blank image");
    }
}
