//! A PNG picture of an analysis: one lane per timescale, longest on top; token segments as
//! coloured blocks (one colour and letter per token within a lane), the surprise as a thin curve,
//! changed stretches of the pattern layers as amber bands on their lanes, each lane naming its
//! pattern layers. A layer the user selected is highlighted as in the editor: a stripe beside its
//! lane, its name in the highlight colour and its changed stretches marked across every lane.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::layers::patterns::{layer_with_period, Pattern};
use crate::layers::{Analysis, Layer};

const WIDTH: u32 = 1600;
const LANE_HEIGHT: u32 = 110;
const HEADER: u32 = 44;
const LEFT: u32 = 190;
const FONT: &str = "strata-sans";
const BRIGHT: RGBColor = RGBColor(230, 230, 230);
const DIM: RGBColor = RGBColor(170, 170, 170);
const DIMMER: RGBColor = RGBColor(150, 150, 150);
const INK: RGBColor = RGBColor(20, 20, 20);
/// The editor's highlight colour (`editor::lanes::HIGHLIGHT`).
const HIGHLIGHT: RGBColor = RGBColor(0x7C, 0xC8, 0xFF);

#[derive(Debug, thiserror::Error)]
#[error("cannot draw {path}: {reason}")]
pub struct PictureError {
    pub path: String,
    pub reason: String,
}

/// A colour per token: hues spread by the golden angle so neighbouring tokens differ.
pub fn token_colour(token: u8) -> RGBColor {
    let hue = (f64::from(token) * 137.508) % 360.0;
    let (s, l) = (0.55, 0.55);
    let c = (1.0 - (2.0 * l - 1.0_f64).abs()) * s;
    let x = c * (1.0 - ((hue / 60.0) % 2.0 - 1.0).abs());
    let m = l - c / 2.0;
    let (r, g, b) = match (hue / 60.0) as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    RGBColor(((r + m) * 255.0) as u8, ((g + m) * 255.0) as u8, ((b + m) * 255.0) as u8)
}

/// The picture's text at `size` points in `colour`.
fn text_style(size: u32, colour: &'static RGBColor) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font()).color(colour)
}

/// Draws `analysis` into a PNG at `path`, highlighting the pattern layer of period
/// `highlight_period_s` ([`layer_with_period`]), if any.
pub fn draw(analysis: &Analysis, highlight_period_s: Option<f64>, path: &Path) -> Result<(), PictureError> {
    let err = |e: &dyn std::fmt::Display| PictureError {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    // Registering twice is harmless; the font ships inside egui's default fonts.
    let _ = register_font(FONT, FontStyle::Normal, epaint_default_fonts::UBUNTU_LIGHT);
    let lanes = analysis.layers.len() as u32;
    let height = HEADER + lanes * LANE_HEIGHT + 24;
    let root = BitMapBackend::new(path, (WIDTH, height)).into_drawing_area();
    root.fill(&RGBColor(24, 26, 30)).map_err(|e| err(&e))?;
    let duration = analysis.duration_s.max(1e-3);
    let x_of = |t: f64| LEFT as i32 + ((t / duration).clamp(0.0, 1.0) * f64::from(WIDTH - LEFT - 10)) as i32;
    let title = format!(
        "{}   ·   {:.1} s   ·   {} Hz   ·   models {}   ·   {}",
        analysis.source, analysis.duration_s, analysis.sample_rate, analysis.models, analysis.backend
    );
    root.draw_text(&title, &text_style(18, &BRIGHT), (12, 12)).map_err(|e| err(&e))?;
    let selected = highlight_period_s.and_then(|s| layer_with_period(&analysis.patterns, s));

    // Longest scale on top.
    for (row, i) in analysis.lanes_longest_first().into_iter().enumerate() {
        let top = (HEADER + row as u32 * LANE_HEIGHT) as i32;
        draw_lane(&root, analysis, &analysis.layers[i], selected, top, &x_of).map_err(|e| err(&e))?;
    }
    // Time axis: a tick every 10 s (or 60 s for long pieces).
    let step = if duration > 300.0 { 60.0 } else { 10.0 };
    let axis_y = (HEADER + lanes * LANE_HEIGHT) as i32;
    let mut t = 0.0;
    while t <= duration {
        root.draw_text(&format!("{t:.0} s"), &text_style(13, &DIM), (x_of(t), axis_y + 4))
            .map_err(|e| err(&e))?;
        t += step;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// Draws one lane (`layer`), its top at `top`: its name, period and pattern layers at the left;
/// its token runs, surprise curve, changed stretches and change markers along time (`x_of`), and
/// the `selected` pattern layer's stretches across it.
fn draw_lane(
    root: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    analysis: &Analysis,
    layer: &Layer,
    selected: Option<&Pattern>,
    top: i32,
    x_of: &dyn Fn(f64) -> i32,
) -> Result<(), DrawingAreaErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>> {
    let bottom = top + LANE_HEIGHT as i32 - 8;
    let period = layer.period_s.map_or("no period".to_owned(), |p| format!("period {p:.2} s"));
    root.draw_text(&format!("{} s layer", layer.scale_s), &text_style(17, &BRIGHT), (12, top + 14))?;
    root.draw_text(&period, &text_style(14, &DIM), (12, top + 38))?;
    // The pattern layers living at this timescale, one line each.
    let here: Vec<&Pattern> = analysis.patterns.iter().filter(|p| p.scale_s == layer.scale_s).collect();
    let listed = if here.is_empty() {
        format!("strength {:.2} · conf {:.2}", layer.strength, layer.period_confidence)
    } else {
        here.iter().map(|p| format!("{:.2} s {}", p.period_s, p.register)).collect::<Vec<_>>().join(" · ")
    };
    root.draw_text(&listed, &text_style(14, &DIMMER), (12, top + 58))?;
    if let Some(p) = selected.filter(|p| p.scale_s == layer.scale_s) {
        root.draw(&Rectangle::new([(2, top + 4), (6, bottom)], HIGHLIGHT.filled()))?;
        let name = format!("selected: {:.2} s {}", p.period_s, p.register);
        root.draw_text(&name, &text_style(14, &HIGHLIGHT), (12, top + 76))?;
    }
    for seg in &layer.segments {
        let (x0, x1) = (x_of(seg.start_s), x_of(seg.end_s).max(x_of(seg.start_s) + 1));
        root.draw(&Rectangle::new([(x0, top + 6), (x1, bottom)], token_colour(seg.token).filled()))?;
        if x1 - x0 > 18 {
            root.draw_text(&seg.label, &text_style(15, &INK), (x0 + 4, top + 10))?;
        }
    }
    // Surprise, scaled so the change threshold sits at two thirds of the lane.
    let scale = |z: f32| -> i32 {
        let frac = (f64::from(z.max(0.0)) / 12.0).min(1.0);
        bottom - (frac * f64::from(LANE_HEIGHT - 20)) as i32
    };
    let points: Vec<(i32, i32)> = layer.frames.time_s.iter().zip(&layer.frames.surprise).map(|(&t, &z)| (x_of(t), scale(z))).collect();
    root.draw(&PathElement::new(points, RGBColor(240, 240, 240).stroke_width(1)))?;
    // Each pattern layer's changed stretches: an amber band along the lane's bottom.
    for c in here.iter().flat_map(|p| &p.changes) {
        let (x0, x1) = (x_of(c.start_s), x_of(c.end_s).max(x_of(c.start_s) + 2));
        let alpha = 0.35 + 0.5 * c.strength.clamp(0.0, 1.0);
        root.draw(&Rectangle::new([(x0, bottom - 18), (x1, bottom)], RGBColor(255, 180, 40).mix(alpha).filled()))?;
    }
    // The selected layer's changed stretches across every lane, faintly, as in the editor.
    for c in selected.iter().flat_map(|p| &p.changes) {
        let (x0, x1) = (x_of(c.start_s), x_of(c.end_s).max(x_of(c.start_s) + 2));
        root.draw(&Rectangle::new([(x0, top + 4), (x1, bottom)], HIGHLIGHT.mix(0.18).filled()))?;
        root.draw(&Rectangle::new([(x0, top + 4), (x1, bottom)], HIGHLIGHT.stroke_width(1)))?;
    }
    for change in layer.changes.iter().filter(|c| c.start_s.is_none()) {
        let x = x_of(change.time_s);
        let w = 1 + (change.strength * 4.0) as u32;
        root.draw(&PathElement::new(vec![(x, top + 2), (x, bottom + 4)], RGBColor(255, 70, 70).stroke_width(w)))?;
    }
    Ok(())
}
