//! Drawing helpers every chart of the report uses: the embedded font's family, the chart width,
//! the day (or category) axis, a note in the middle of an empty chart, and names shortened to fit.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Width of the rendered charts in pixels.
pub const CHART_WIDTH: u32 = 1200;
/// Height of the rendered charts in pixels (a faceted trend chart grows with its panels).
pub const CHART_HEIGHT: u32 = 700;

/// Font family name under which the embedded font is registered.
pub const FONT: &str = "sans-serif";
/// The x axis: indices 0..n (days, or bar categories) as `f64`, with half a step of padding on
/// each side (keeps the end markers inside the plot and gives a single day a visible range), a
/// labelled tick every `step` and a light grid line on every index when there are not too many.
pub struct DayAxis {
    days: usize,
    step: usize,
}

impl DayAxis {
    pub fn new(days: usize, step: usize) -> Self {
        DayAxis {
            days,
            step: step.max(1),
        }
    }
}

impl Ranged for DayAxis {
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let range = self.range();
        let fraction = (value - range.start) / (range.end - range.start);
        limit.0 + (fraction * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        let step = if hint.weight().allow_light_points() {
            if self.days > 92 {
                return Vec::new();
            }
            1
        } else {
            self.step
        };
        (0..self.days).step_by(step).map(|i| i as f64).collect()
    }

    fn range(&self) -> std::ops::Range<f64> {
        -0.5..(self.days.max(1) as f64 - 0.5)
    }
}

/// Picks a label step (in days) so that at most `max_labels` dates are labelled.
pub fn label_step(days: usize, max_labels: usize) -> usize {
    [1, 2, 7, 14, 28, 56, 91, 182, 364]
        .into_iter()
        .find(|step| days.div_ceil(*step) <= max_labels)
        .unwrap_or_else(|| days.div_ceil(max_labels.max(1)))
}

/// Writes `message` in the middle of `area` (used when there is nothing to plot).
pub fn centred_note<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    area: &DrawingArea<DB, Shift>,
    message: &str,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (w, h) = area.dim_in_pixel();
    let (x0, y0) = area.get_base_pixel();
    let style = (FONT, 22)
        .into_font()
        .color(&RGBColor(0x66, 0x66, 0x66))
        .pos(Pos::new(HPos::Center, VPos::Center));
    let (rx, ry) = root.get_base_pixel();
    root.draw(&Text::new(
        message.to_string(),
        (x0 - rx + w as i32 / 2, y0 - ry + h as i32 / 2),
        style,
    ))
}

/// Shortens `name` with "…" until it is at most `max_width` pixels wide in `style`.
pub fn fit<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    name: &str,
    style: &TextStyle<'_>,
    max_width: u32,
) -> String {
    let width = |text: &str| {
        area.estimate_text_size(text, style)
            .map(|(w, _)| w)
            .unwrap_or(u32::MAX)
    };
    if width(name) <= max_width {
        return name.to_string();
    }
    let mut chars: Vec<char> = name.chars().collect();
    while !chars.is_empty() {
        chars.pop();
        let short: String = chars.iter().collect::<String>().trim_end().to_string() + "…";
        if width(&short) <= max_width {
            return short;
        }
    }
    "…".to_string()
}
