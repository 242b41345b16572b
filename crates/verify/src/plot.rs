//! The timeline plot of a continuous run: one row per node pair (all pair paths merged) and
//! one per node (Service, DNS, API), time across, outages in red over amber while a node of the
//! row was being switched, node events as lines.
//!
//! plotters draws the SVG; resvg rasterises that same SVG to PNG with DejaVu Sans built in,
//! so the PNG looks the same everywhere and needs no system fonts.

use crate::continuous::ContinuousReport;
use plotters::prelude::*;
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("cannot draw the plot: {0}")]
    Draw(String),
    #[error("cannot rasterise the plot to PNG: {0}")]
    Png(String),
}

/// A row of the plot: its label and its outages in seconds since the start.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub label: String,
    pub gaps: Vec<(f64, f64)>,
    pub lost: u64,
    /// Whether any path of the row was probed (grey when not).
    pub probed: bool,
    /// When a node of the row was being switched (amber behind the outages).
    pub switching: Vec<(f64, f64)>,
}

/// When any of `nodes` was being switched, in seconds since the start, merged.
fn windows_of(report: &ContinuousReport, nodes: &[&String]) -> Vec<(f64, f64)> {
    merge(
        report
            .windows
            .iter()
            .filter(|w| nodes.contains(&&w.node))
            .map(|w| (w.start_s, w.end_s))
            .collect(),
    )
}

/// Node pairs first (`a -> b`: every pair path between them), then each node's own paths.
pub fn rows(report: &ContinuousReport) -> Vec<Row> {
    let mut pairs: BTreeMap<(String, String), Row> = BTreeMap::new();
    let mut own: BTreeMap<String, Row> = BTreeMap::new();
    for from in &report.nodes {
        for to in &report.nodes {
            pairs.insert(
                (from.clone(), to.clone()),
                Row {
                    label: format!("{from} -> {to}"),
                    gaps: vec![],
                    lost: 0,
                    probed: false,
                    switching: windows_of(report, &[from, to]),
                },
            );
        }
        own.insert(
            from.clone(),
            Row {
                label: format!("{from}: service, dns, api"),
                gaps: vec![],
                lost: 0,
                probed: false,
                switching: windows_of(report, &[from]),
            },
        );
    }
    for p in &report.paths {
        let row = match &p.to_node {
            Some(to) => pairs.get_mut(&(p.from_node.clone(), to.clone())),
            None => own.get_mut(&p.from_node),
        };
        if let Some(row) = row {
            row.lost += p.lost;
            row.probed |= p.probes > 0;
            row.gaps
                .extend(p.gaps.iter().map(|g| (g.start_s, g.end_s.max(g.start_s))));
        }
    }
    pairs
        .into_values()
        .chain(own.into_values())
        .map(|mut row| {
            row.gaps = merge(row.gaps);
            row
        })
        .collect()
}

/// Merges overlapping intervals.
fn merge(mut gaps: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    gaps.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<(f64, f64)> = vec![];
    for (s, e) in gaps {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

const ROW_HEIGHT: u32 = 20;
const WIDTH: u32 = 1400;

/// The SVG document.
pub fn svg(report: &ContinuousReport) -> Result<String, PlotError> {
    let rows = rows(report);
    let n = rows.len().max(1);
    let height = 150 + ROW_HEIGHT * n as u32;
    let duration = report.duration_s.max(0.001);
    let label_width = rows
        .iter()
        .map(|r| r.label.chars().count())
        .max()
        .unwrap_or(10) as u32
        * 8
        + 20;
    let draw = |e: &dyn std::fmt::Display| PlotError::Draw(e.to_string());
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw(&e))?;
        let s = &report.summary;
        let title = format!(
            "cniswap verify --continuous: {} paths every {} ms, {} with gaps, longest {:.2} s, {} lost",
            s.paths, report.interval_ms, s.paths_with_gaps, s.longest_gap_s, s.lost
        );
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .margin_right(110)
            .x_label_area_size(40)
            .y_label_area_size(label_width)
            .build_cartesian_2d(0f64..duration, (0..n).into_segmented())
            .map_err(|e| draw(&e))?;
        let labels: Vec<String> = rows.iter().map(|r| r.label.clone()).collect();
        let formatter = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) if *i < n => {
                labels.get(n - 1 - *i).cloned().unwrap_or_default()
            }
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n)
            .y_label_formatter(&formatter)
            .x_desc(format!("seconds since {}", report.start))
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 14))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(|e| draw(&e))?;
        let up = RGBColor(200, 235, 200);
        let down = RGBColor(215, 25, 28);
        let band = |i: usize, a: f64, b: f64, color: RGBColor| {
            let y = n - 1 - i;
            Rectangle::new(
                [(a, SegmentValue::Exact(y)), (b, SegmentValue::Exact(y + 1))],
                color.filled(),
            )
        };
        let unprobed = RGBColor(225, 225, 225);
        chart
            .draw_series(
                rows.iter()
                    .enumerate()
                    .map(|(i, row)| band(i, 0.0, duration, if row.probed { up } else { unprobed })),
            )
            .map_err(|e| draw(&e))?;
        let switching = RGBColor(250, 205, 110);
        chart
            .draw_series(rows.iter().enumerate().flat_map(|(i, row)| {
                row.switching
                    .iter()
                    .map(move |(a, b)| band(i, *a, *b, switching))
                    .collect::<Vec<_>>()
            }))
            .map_err(|e| draw(&e))?;
        // Outages at least 2 px wide so a single lost probe is visible.
        let min_width = duration / f64::from(WIDTH) * 2.0;
        chart
            .draw_series(rows.iter().enumerate().flat_map(|(i, row)| {
                row.gaps
                    .iter()
                    .map(move |(a, b)| band(i, *a, b.max(a + min_width), down))
                    .collect::<Vec<_>>()
            }))
            .map_err(|e| draw(&e))?;
        // Thin separators between rows.
        chart
            .draw_series((1..n).map(|y| {
                PathElement::new(
                    vec![
                        (0.0, SegmentValue::Exact(y)),
                        (duration, SegmentValue::Exact(y)),
                    ],
                    WHITE.stroke_width(2),
                )
            }))
            .map_err(|e| draw(&e))?;
        // Node events: a vertical line and a short label.
        for event in report.timeline.iter().filter(|e| e.node.is_some()) {
            let x = event.t_s.clamp(0.0, duration);
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(x, SegmentValue::Exact(0)), (x, SegmentValue::Exact(n))],
                    BLUE.stroke_width(1),
                )))
                .map_err(|e| draw(&e))?;
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("{} {}", event.node.as_deref().unwrap_or(""), event.event),
                    (x, SegmentValue::Exact(n)),
                    ("sans-serif", 12).into_font().color(&BLUE),
                )))
                .map_err(|e| draw(&e))?;
        }
        // Lost probes per row, right of the plot.
        chart
            .draw_series(rows.iter().enumerate().map(|(i, row)| {
                let text = if !row.probed {
                    "not probed".to_string()
                } else if row.lost == 0 {
                    "0 lost".to_string()
                } else {
                    format!("{} lost", row.lost)
                };
                let color = if row.lost == 0 {
                    RGBColor(60, 120, 60)
                } else {
                    down
                };
                Text::new(
                    text,
                    (duration * 1.01, SegmentValue::CenterOf(n - 1 - i)),
                    ("sans-serif", 12).into_font().color(&color),
                )
            }))
            .map_err(|e| draw(&e))?;
        root.present().map_err(|e| draw(&e))?;
    }
    Ok(out)
}

/// The SVG rasterised to PNG.
pub fn png(svg: &str) -> Result<Vec<u8>, PlotError> {
    use resvg::{tiny_skia, usvg};
    let mut options = usvg::Options::default();
    {
        let db = options.fontdb_mut();
        db.load_font_data(dejavu::sans::regular().to_vec());
        db.load_font_data(dejavu::sans::bold().to_vec());
        db.set_sans_serif_family("DejaVu Sans");
    }
    let tree = usvg::Tree::from_str(svg, &options).map_err(|e| PlotError::Png(e.to_string()))?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| PlotError::Png(format!("cannot allocate {size:?} pixels")))?;
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap
        .encode_png()
        .map_err(|e| PlotError::Png(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::continuous::{build, tests_support};

    #[test]
    fn rows_merge_pair_paths_and_keep_gaps() {
        let report = build(&tests_support::sample());
        let rows = rows(&report);
        assert_eq!(rows.len(), 9 + 3);
        let ab = rows.iter().find(|r| r.label == "a -> b").unwrap();
        assert_eq!(ab.gaps, vec![(2.0, 5.0)]);
        assert_eq!(ab.lost, 15);
        assert_eq!(ab.switching, vec![(1.5, 6.0)]);
        let bc = rows.iter().find(|r| r.label == "b -> c").unwrap();
        assert!(bc.gaps.is_empty());
        assert!(bc.switching.is_empty());
    }

    #[test]
    fn svg_and_png_are_drawn() {
        let report = build(&tests_support::sample());
        let svg = svg(&report).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(
            svg.contains("a -&gt; b") || svg.contains("a -> b"),
            "row labels"
        );
        assert!(svg.contains("apply-in-progress"));
        // The switch window of "a" is drawn behind its rows (amber).
        assert!(
            svg.contains("#FACD6E") || svg.contains("#facd6e"),
            "window band"
        );
        let png = png(&svg).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        assert!(png.len() > 5_000);
        if let Ok(dir) = std::env::var("CNISWAP_PLOT_OUT") {
            std::fs::write(format!("{dir}/sample.svg"), &svg).unwrap();
            std::fs::write(format!("{dir}/sample.png"), &png).unwrap();
        }
    }

    #[test]
    fn merge_overlaps() {
        assert_eq!(
            merge(vec![(3.0, 4.0), (1.0, 2.0), (1.5, 3.5)]),
            vec![(1.0, 4.0)]
        );
    }
}
