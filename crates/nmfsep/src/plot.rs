//! PNG pictures of a factorization: templates W, activations H, the cost curve and the
//! spectrograms of separated outputs (plotters, bitmap backend).
//!
//! Text needs a TrueType font, which plotters' `ab_glyph` backend does not bring: the first
//! plot registers `/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf` if that file exists, and
//! otherwise draws the same picture without any text. A missing font is never an error.

use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use ndarray::{Array2, ArrayView2};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::nmf::CostPoint;

/// Font file tried for text in the plots.
pub const FONT_PATH: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

const FONT_FAMILY: &str = "sans-serif";

/// Errors of plotting: the file cannot be drawn or written.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw the plot {path}: {message}")]
pub struct PlotError {
    /// The PNG path.
    pub path: String,
    /// What went wrong.
    pub message: String,
}

/// What to draw. Every part is optional; empty parts are left out of the picture.
pub struct PlotInput<'a> {
    /// Sample rate of the audio, Hz (for the frequency and time axes).
    pub sample_rate: u32,
    /// STFT frame length, samples (bin f is at f * sample_rate / n_fft Hz).
    pub n_fft: usize,
    /// STFT hop, samples (frame t is at t * hop / sample_rate s).
    pub hop: usize,
    /// Templates W, n_bins x K (drawn in dB, 60 dB range, frequency on a log axis).
    pub w: Option<ArrayView2<'a, f32>>,
    /// Activations H, K x n_frames (drawn in dB, 60 dB range).
    pub h: Option<ArrayView2<'a, f32>>,
    /// Cost history of the fit (beta divergence against iterations).
    pub cost: &'a [CostPoint],
    /// Title for the cost panel, e.g. "beta divergence (beta = 1)".
    pub cost_title: String,
    /// Named magnitude spectrograms |X|, n_bins x n_frames each (drawn in dB, 80 dB range).
    pub spectrograms: Vec<(String, Array2<f32>)>,
}

/// True if a font is registered and text can be drawn.
pub fn has_font() -> bool {
    *FONT.get_or_init(|| match std::fs::read(FONT_PATH) {
        Ok(bytes) => {
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, bytes).is_ok()
        }
        Err(_) => false,
    })
}

static FONT: OnceLock<bool> = OnceLock::new();

type Area<'b> = DrawingArea<BitMapBackend<'b>, Shift>;

/// Draws `input` into a PNG file at `path` (the extension must be `.png`). The picture is
/// 1400 px wide: W and H side by side, the cost curve below, then one row per spectrogram.
///
/// # Errors
/// [`PlotError`] if drawing or writing the file fails.
pub fn plot_factorization(path: &Path, input: &PlotInput) -> Result<(), PlotError> {
    draw_png(path, input, has_font())
}

/// [`plot_factorization`] with text (`text`, needs a registered font) or without.
fn draw_png(path: &Path, input: &PlotInput, text: bool) -> Result<(), PlotError> {
    let err = |m: &dyn std::fmt::Display| PlotError {
        path: path.display().to_string(),
        message: m.to_string(),
    };
    let top = if input.w.is_some() || input.h.is_some() {
        420
    } else {
        0
    };
    let cost_h = if input.cost.len() >= 2 { 260 } else { 0 };
    let spec_h = 260;
    let height = (top + cost_h + spec_h * input.spectrograms.len()).max(100) as u32;
    let root = BitMapBackend::new(path, (1400, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (top_area, rest) = root.split_vertically(top as u32);
    let (cost_area, spec_area) = rest.split_vertically(cost_h as u32);

    if top > 0 {
        let (w_area, h_area) = match (input.w, input.h) {
            (Some(_), Some(_)) => top_area.split_horizontally(480),
            (Some(_), None) => top_area.split_horizontally(1400),
            _ => top_area.split_horizontally(0),
        };
        if let Some(w) = input.w {
            draw_templates(&w_area, w, input, text).map_err(|e| err(&e))?;
        }
        if let Some(h) = input.h {
            draw_activations(&h_area, h, input, text).map_err(|e| err(&e))?;
        }
    }
    if cost_h > 0 {
        draw_cost(&cost_area, input, text).map_err(|e| err(&e))?;
    }
    let rows = spec_area.split_evenly((input.spectrograms.len().max(1), 1));
    for ((name, s), area) in input.spectrograms.iter().zip(rows.iter()) {
        draw_spectrogram(area, name, s.view(), input, text).map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// A colour ramp from black through purple and orange to pale yellow, `v` in [0, 1].
fn colour(v: f32) -> RGBColor {
    const STOPS: [(f32, f32, f32); 5] = [
        (0.0, 0.0, 4.0),
        (81.0, 18.0, 124.0),
        (183.0, 55.0, 121.0),
        (252.0, 137.0, 97.0),
        (252.0, 253.0, 191.0),
    ];
    let x = v.clamp(0.0, 1.0) * (STOPS.len() - 1) as f32;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let t = x - i as f32;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |p: f32, q: f32| (p + (q - p) * t).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Maps amplitudes to [0, 1]: 0 dB at `max`, 0 at `-range_db`.
fn db_scale(x: f32, max: f32, range_db: f32) -> f32 {
    let db = 20.0 * (x.max(1e-30) / max.max(1e-30)).log10();
    1.0 + db.max(-range_db) / range_db
}

/// Log-spaced frequency bands from bin 1 to Nyquist: returns the band edges in log10(Hz)
/// and, per band, the range of bins it covers (at least one bin).
fn frequency_bands(n_bins: usize, sample_rate: u32, n_fft: usize) -> (Vec<f64>, Vec<Range<usize>>) {
    let hz = |b: f64| b * f64::from(sample_rate) / n_fft as f64;
    let lo = hz(1.0).log10();
    let hi = hz((n_bins - 1) as f64).log10();
    let n = (n_bins - 1).clamp(1, 160);
    let edges: Vec<f64> = (0..=n)
        .map(|i| lo + (hi - lo) * i as f64 / n as f64)
        .collect();
    let bin_of = |l: f64| 10f64.powf(l) * n_fft as f64 / f64::from(sample_rate);
    let ranges = edges
        .windows(2)
        .map(|e| {
            let a = bin_of(e[0]).round().max(1.0) as usize;
            let b = (bin_of(e[1]).round() as usize).min(n_bins - 1);
            if b > a {
                a..b
            } else {
                a.min(n_bins - 1)..a.min(n_bins - 1) + 1
            }
        })
        .collect();
    (edges, ranges)
}

/// Groups `n` columns into at most `max` cells of consecutive columns.
fn column_cells(n: usize, max: usize) -> Vec<Range<usize>> {
    let cells = n.min(max).max(1);
    (0..cells)
        .map(|i| (i * n / cells)..((i + 1) * n / cells).max(i * n / cells + 1))
        .collect()
}

fn block_max(a: ArrayView2<f32>, rows: &Range<usize>, cols: &Range<usize>) -> f32 {
    let mut m = 0.0f32;
    for r in rows.clone() {
        for c in cols.clone() {
            m = m.max(a[[r, c]]);
        }
    }
    m
}

fn axis_style(text: bool) -> (u32, u32) {
    if text {
        (45, 70)
    } else {
        (0, 0)
    }
}

fn hz_label(l: &f64) -> String {
    let f = 10f64.powf(*l);
    if f >= 1000.0 {
        format!("{:.1}k", f / 1000.0)
    } else {
        format!("{f:.0}")
    }
}

/// Frequency (log axis, Hz) against time (s) for a spectrogram.
fn draw_spectrogram(
    area: &Area,
    name: &str,
    s: ArrayView2<f32>,
    input: &PlotInput,
    text: bool,
) -> DrawResult {
    let (edges, bands) = frequency_bands(s.nrows(), input.sample_rate, input.n_fft);
    let frame_s = input.hop as f64 / f64::from(input.sample_rate);
    let cols = column_cells(s.ncols(), 600);
    let max = s.iter().fold(0.0f32, |m, &x| m.max(x));
    let x_end = s.ncols() as f64 * frame_s;
    let (xl, yl) = axis_style(text);
    let mut b = ChartBuilder::on(area);
    b.margin(8).x_label_area_size(xl).y_label_area_size(yl);
    if text {
        b.caption(
            format!("{name}: spectrogram (dB, 80 dB range)"),
            (FONT_FAMILY, 18),
        );
    }
    let mut chart = b.build_cartesian_2d(0.0..x_end, edges[0]..edges[edges.len() - 1])?;
    if text {
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("time (s)")
            .y_desc("frequency (Hz)")
            .y_label_formatter(&hz_label)
            .draw()?;
    }
    let mut rects = Vec::with_capacity(bands.len() * cols.len());
    for (j, rows) in bands.iter().enumerate() {
        for c in &cols {
            let v = db_scale(block_max(s, rows, c), max, 80.0);
            rects.push(Rectangle::new(
                [
                    (c.start as f64 * frame_s, edges[j]),
                    (c.end as f64 * frame_s, edges[j + 1]),
                ],
                colour(v).filled(),
            ));
        }
    }
    chart.draw_series(rects)?;
    Ok(())
}

/// Templates: frequency (log axis, Hz) against component index.
fn draw_templates(area: &Area, w: ArrayView2<f32>, input: &PlotInput, text: bool) -> DrawResult {
    let (edges, bands) = frequency_bands(w.nrows(), input.sample_rate, input.n_fft);
    let k = w.ncols();
    let max = w.iter().fold(0.0f32, |m, &x| m.max(x));
    let (xl, yl) = axis_style(text);
    let mut b = ChartBuilder::on(area);
    b.margin(8).x_label_area_size(xl).y_label_area_size(yl);
    if text {
        b.caption("templates W (dB, 60 dB range)", (FONT_FAMILY, 18));
    }
    let mut chart = b.build_cartesian_2d(0.0..k as f64, edges[0]..edges[edges.len() - 1])?;
    if text {
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("component")
            .y_desc("frequency (Hz)")
            .x_label_formatter(&|x| format!("{:.0}", x.floor()))
            .y_label_formatter(&hz_label)
            .draw()?;
    }
    let mut rects = Vec::with_capacity(bands.len() * k);
    for (j, rows) in bands.iter().enumerate() {
        for c in 0..k {
            let v = db_scale(block_max(w, rows, &(c..c + 1)), max, 60.0);
            rects.push(Rectangle::new(
                [(c as f64, edges[j]), (c as f64 + 1.0, edges[j + 1])],
                colour(v).filled(),
            ));
        }
    }
    chart.draw_series(rects)?;
    Ok(())
}

/// Activations: component index against time (s).
fn draw_activations(area: &Area, h: ArrayView2<f32>, input: &PlotInput, text: bool) -> DrawResult {
    let k = h.nrows();
    let frame_s = input.hop as f64 / f64::from(input.sample_rate);
    let cols = column_cells(h.ncols(), 800);
    let max = h.iter().fold(0.0f32, |m, &x| m.max(x));
    let (xl, yl) = axis_style(text);
    let mut b = ChartBuilder::on(area);
    b.margin(8).x_label_area_size(xl).y_label_area_size(yl);
    if text {
        b.caption("activations H (dB, 60 dB range)", (FONT_FAMILY, 18));
    }
    let mut chart = b.build_cartesian_2d(0.0..h.ncols() as f64 * frame_s, 0.0..k as f64)?;
    if text {
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("time (s)")
            .y_desc("component")
            .y_label_formatter(&|y| format!("{:.0}", y.floor()))
            .draw()?;
    }
    let mut rects = Vec::with_capacity(k * cols.len());
    for r in 0..k {
        for c in &cols {
            let v = db_scale(block_max(h, &(r..r + 1), c), max, 60.0);
            rects.push(Rectangle::new(
                [
                    (c.start as f64 * frame_s, r as f64),
                    (c.end as f64 * frame_s, r as f64 + 1.0),
                ],
                colour(v).filled(),
            ));
        }
    }
    chart.draw_series(rects)?;
    Ok(())
}

/// Cost against iterations, on a log axis when every cost is positive.
fn draw_cost(area: &Area, input: &PlotInput, text: bool) -> DrawResult {
    let log = input.cost.iter().all(|c| c.cost > 0.0);
    let pts: Vec<(f64, f64)> = input
        .cost
        .iter()
        .map(|c| {
            (
                c.iteration as f64,
                if log { c.cost.log10() } else { c.cost },
            )
        })
        .collect();
    let (lo, hi) = pts
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.1), b.max(p.1))
        });
    let pad = ((hi - lo) * 0.05).max(hi.abs() * 1e-6).max(1e-12);
    let x_end = pts.last().map_or(1.0, |p| p.0.max(1.0));
    let (xl, yl) = axis_style(text);
    let mut b = ChartBuilder::on(area);
    b.margin(8).x_label_area_size(xl).y_label_area_size(yl + 20);
    if text {
        b.caption(&input.cost_title, (FONT_FAMILY, 18));
    }
    let mut chart = b.build_cartesian_2d(0.0..x_end, (lo - pad)..(hi + pad))?;
    if text {
        chart
            .configure_mesh()
            .x_desc("iteration")
            .y_desc(if log { "cost (log scale)" } else { "cost" })
            .y_label_formatter(&|y| format!("{:.3e}", if log { 10f64.powf(*y) } else { *y }))
            .draw()?;
    }
    chart.draw_series(LineSeries::new(pts.iter().copied(), BLUE.stroke_width(2)))?;
    chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, BLUE.filled())))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_with_and_without_text() {
        let dir = tempfile::tempdir().unwrap();
        let w = Array2::from_shape_fn((513, 3), |(f, k)| 1.0 / (1.0 + (f * (k + 1)) as f32));
        let h = Array2::from_shape_fn((3, 40), |(k, t)| ((k + t) % 5) as f32);
        let cost = [
            CostPoint {
                iteration: 0,
                cost: 10.0,
            },
            CostPoint {
                iteration: 10,
                cost: 2.0,
            },
        ];
        for text in [false, has_font()] {
            let input = PlotInput {
                sample_rate: 44100,
                n_fft: 1024,
                hop: 256,
                w: Some(w.view()),
                h: Some(h.view()),
                cost: &cost,
                cost_title: "cost".into(),
                spectrograms: vec![("a".into(), w.dot(&h))],
            };
            let path = dir.path().join(format!("p{text}.png"));
            draw_png(&path, &input, text).unwrap();
            assert!(std::fs::metadata(&path).unwrap().len() > 1000);
        }
    }
}
