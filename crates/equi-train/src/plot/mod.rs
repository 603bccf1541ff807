//! The loss-curve PNG of a run: training and validation loss per epoch, logarithmic axis.
//!
//! Drawn with plotters' bitmap backend only; labels use a built-in pixel font, so no font
//! library or system font is needed.

mod font;

use std::path::Path;

use plotters::prelude::*;

use crate::checkpoint::commit;
use crate::error::TrainError;
use crate::history::EpochRecord;

const SIZE: (u32, u32) = (860, 520);
const LEFT: i32 = 90;
const RIGHT: i32 = 30;
const TOP: i32 = 50;
const BOTTOM: i32 = 60;
const TEXT_SCALE: i32 = 2;
const TRAIN_COLOR: RGBColor = RGBColor(31, 119, 180);
const VALID_COLOR: RGBColor = RGBColor(214, 39, 40);
const GRID_COLOR: RGBColor = RGBColor(225, 225, 225);

/// Writes the loss curve of `history` to `path` (PNG), atomically.
///
/// # Errors
/// The image cannot be drawn or written.
pub fn write_loss_curve(path: &Path, history: &[EpochRecord]) -> Result<(), TrainError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.tmp.png"));
    draw(&temporary, history).map_err(|message| TrainError::File {
        path: path.display().to_string(),
        source: std::io::Error::other(message),
    })?;
    commit(&temporary, path)
}

fn log_loss(value: f64) -> f64 {
    value.max(1e-12).log10()
}

fn draw(path: &Path, history: &[EpochRecord]) -> Result<(), String> {
    let error = |e: DrawingAreaErrorKind<_>| e.to_string();
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(error)?;
    let train: Vec<(f64, f64)> = history
        .iter()
        .map(|r| (r.epoch as f64, log_loss(r.train_loss)))
        .collect();
    let valid: Vec<(f64, f64)> = history
        .iter()
        .filter_map(|r| Some((r.epoch as f64, log_loss(r.valid_loss()?))))
        .collect();
    let last_epoch = history.last().map_or(1, |r| r.epoch) as f64;
    let (mut low, mut high) = train
        .iter()
        .chain(&valid)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(_, y)| {
            (lo.min(y), hi.max(y))
        });
    if !low.is_finite() {
        (low, high) = (-1.0, 0.0);
    }
    let pad = ((high - low) * 0.08).max(0.02);
    let (low, high) = (low - pad, high + pad);
    let mut chart = ChartBuilder::on(&root)
        .margin_left(LEFT as u32)
        .margin_right(RIGHT as u32)
        .margin_top(TOP as u32)
        .margin_bottom(BOTTOM as u32)
        .build_cartesian_2d(0.5..last_epoch + 0.5, low..high)
        .map_err(error)?;
    let mut labels: Vec<(String, (i32, i32), bool)> = Vec::new();
    for tick in y_ticks(low, high) {
        let y = tick.log10();
        chart
            .draw_series(LineSeries::new(
                [(0.5, y), (last_epoch + 0.5, y)],
                GRID_COLOR,
            ))
            .map_err(error)?;
        labels.push((format_number(tick), chart.backend_coord(&(0.5, y)), true));
    }
    let step = nice_step(last_epoch / 8.0).max(1.0);
    let mut epoch = step;
    while epoch <= last_epoch + 1e-9 {
        chart
            .draw_series(LineSeries::new([(epoch, low), (epoch, high)], GRID_COLOR))
            .map_err(error)?;
        labels.push((
            format_number(epoch),
            chart.backend_coord(&(epoch, low)),
            false,
        ));
        epoch += step;
    }
    for (points, color) in [(&train, TRAIN_COLOR), (&valid, VALID_COLOR)] {
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(error)?;
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(error)?;
    }
    let frame = [
        (0.5, low),
        (last_epoch + 0.5, low),
        (last_epoch + 0.5, high),
        (0.5, high),
        (0.5, low),
    ];
    chart
        .draw_series(LineSeries::new(frame, BLACK))
        .map_err(error)?;
    let text = |s: &str, at: (i32, i32), color: RGBColor| -> Result<(), String> {
        let mut result = Ok(());
        font::render(s, at, TEXT_SCALE, |x, y| {
            if result.is_ok() {
                result = root.draw_pixel((x, y), &color).map_err(error);
            }
        });
        result
    };
    let glyph_height = font::HEIGHT * TEXT_SCALE;
    for (label, (x, y), is_y) in &labels {
        let width = font::text_width(label, TEXT_SCALE);
        let at = if *is_y {
            (x - width - 8, y - glyph_height / 2)
        } else {
            (x - width / 2, y + 8)
        };
        text(label, at, BLACK)?;
    }
    let (width, height) = (SIZE.0 as i32, SIZE.1 as i32);
    let x_title = "epoch";
    text(
        x_title,
        (
            (width - font::text_width(x_title, TEXT_SCALE)) / 2,
            height - 26,
        ),
        BLACK,
    )?;
    text("loss (log scale)", (LEFT, 16), BLACK)?;
    let legend_x = width - RIGHT - 300;
    for (i, (label, color)) in [("train", TRAIN_COLOR), ("validation", VALID_COLOR)]
        .into_iter()
        .enumerate()
    {
        let x = legend_x + 120 * i as i32;
        root.draw(&Rectangle::new([(x, 20), (x + 18, 26)], color.filled()))
            .map_err(error)?;
        text(label, (x + 24, 16), color)?;
    }
    root.present().map_err(error)
}

/// Ticks between `10^low` and `10^high`: powers of ten times 1 (or 1, 2, 5) over wide
/// ranges, evenly spaced round numbers over narrow ones.
fn y_ticks(low: f64, high: f64) -> Vec<f64> {
    let span = high - low;
    if span < 0.6 {
        let (bottom, top) = (10f64.powf(low), 10f64.powf(high));
        let step = nice_step((top - bottom) / 5.0);
        let first = (bottom / step).ceil() as i64;
        let last = (top / step).floor() as i64;
        return (first..=last)
            .map(|i| i as f64 * step)
            .filter(|&v| v > 0.0)
            .collect();
    }
    let mantissas: &[f64] = if span >= 2.0 {
        &[1.0]
    } else {
        &[1.0, 2.0, 5.0]
    };
    let mut ticks = Vec::new();
    for exponent in (low.floor() as i32)..=(high.ceil() as i32) {
        for m in mantissas {
            let value = m * 10f64.powi(exponent);
            let y = value.log10();
            if y >= low && y <= high {
                ticks.push(value);
            }
        }
    }
    ticks
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * magnitude)
}

/// A short label: plain decimals from 0.001 to 9999, otherwise `2e-5`.
fn format_number(value: f64) -> String {
    let magnitude = value.abs();
    if value == 0.0 || (1e-3..1e4).contains(&magnitude) {
        let text = format!("{value:.4}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        let significant: String = text.chars().take(6).collect();
        significant
    } else {
        let text = format!("{value:.1e}");
        text.replace(".0e", "e")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_ticks() {
        assert_eq!(format_number(0.5), "0.5");
        assert_eq!(format_number(10.0), "10");
        assert_eq!(format_number(0.0123), "0.0123");
        assert_eq!(format_number(2e-5), "2e-5");
        assert_eq!(nice_step(1.3), 2.0);
        assert_eq!(nice_step(0.2), 0.2);
        let ticks = y_ticks(-3.2, 0.4);
        assert_eq!(ticks, vec![0.001, 0.01, 0.1, 1.0]);
        assert!(y_ticks(-0.1, -0.05).len() >= 2);
    }

    #[test]
    fn renders_a_png() {
        let folder = tempfile::tempdir().expect("temporary folder");
        let path = folder.path().join("loss.png");
        let record = |epoch: usize, loss: f64| EpochRecord {
            epoch,
            step: epoch * 4,
            lr: 1e-3,
            train_loss: loss,
            valid: vec![("loss".into(), loss * 1.1)],
            elapsed_s: 1.0,
        };
        write_loss_curve(&path, &[record(1, 1.0), record(2, 0.6), record(3, 0.4)]).expect("plot");
        let bytes = std::fs::read(&path).expect("png written");
        assert_eq!(&bytes[1..4], b"PNG");
        write_loss_curve(&path, &[record(1, 0.9)]).expect("one epoch");
        let leftovers = std::fs::read_dir(folder.path()).expect("list").count();
        assert_eq!(leftovers, 1);
    }
}
