//! Drawing primitives shared by the charts, on plotters' bitmap backend:
//! text placed by its baseline, filled and outlined boxes, dashed lines,
//! hatching — and the PNG encoding of the finished buffer.
//!
//! Text goes through [`Canvas::text`], which rasterises glyphs with
//! `ab_glyph` onto plotters' bitmap and places them by baseline. plotters
//! 0.3.7's own `ab_glyph` text drops each glyph's left side bearing and
//! rounds every pen position down, so "if it" came out as "ifit", and it
//! puts the baseline half a font size below a top-anchored position; its
//! font feature is therefore not used.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::font;
use super::ChartError;

pub use plotters::style::RGBColor as Rgb;

/// The palette: calm, print-safe, distinguishable in greyscale.
pub mod colors {
    use super::Rgb;
    pub const BACKGROUND: Rgb = Rgb(0xFF, 0xFF, 0xFF);
    pub const INK: Rgb = Rgb(0x1F, 0x29, 0x33);
    pub const MUTED: Rgb = Rgb(0x5F, 0x6B, 0x7A);
    pub const GRID: Rgb = Rgb(0xE3, 0xE7, 0xEC);
    pub const AXIS: Rgb = Rgb(0x9A, 0xA5, 0xB1);
    /// Every other band of a time axis.
    pub const ZEBRA: Rgb = Rgb(0xF5, 0xF7, 0xFA);
    /// Stated figures.
    pub const PRIMARY: Rgb = Rgb(0x1F, 0x5F, 0xA8);
    /// Derived figures: the primary's outline over a pale fill.
    pub const PALE: Rgb = Rgb(0xDC, 0xE8, 0xF5);
    pub const HATCH: Rgb = Rgb(0x8F, 0xB3, 0xDC);
    /// The visit, growth and other highlights.
    pub const ACCENT: Rgb = Rgb(0xD9, 0x6A, 0x0B);
    /// A second series (state-supported projects).
    pub const SECOND: Rgb = Rgb(0x2E, 0x8B, 0x57);
}

/// A chart being drawn: the plotters drawing area over an RGB buffer.
pub struct Canvas<'a> {
    pub area: DrawingArea<BitMapBackend<'a>, Shift>,
    pub width: i32,
    pub height: i32,
    /// Every text drawn, as given (before missing glyphs are replaced):
    /// what the glyph-coverage tests check.
    pub drawn: std::cell::RefCell<Vec<String>>,
}

fn draw_err<E: std::fmt::Debug>(e: E) -> ChartError {
    ChartError::Draw(format!("{e:?}"))
}

/// Text alignment relative to the x given.
#[derive(Clone, Copy)]
pub enum Align {
    Left,
    Center,
    Right,
}

impl<'a> Canvas<'a> {
    pub fn new(buf: &'a mut [u8], width: u32, height: u32) -> Result<Canvas<'a>, ChartError> {
        if !font::loaded() {
            return Err(ChartError::Draw("the chart font cannot be loaded".into()));
        }
        let area = BitMapBackend::with_buffer(buf, (width, height)).into_drawing_area();
        area.fill(&colors::BACKGROUND).map_err(draw_err)?;
        Ok(Canvas {
            area,
            width: width as i32,
            height: height as i32,
            drawn: Default::default(),
        })
    }

    /// Draws `text` with its baseline at `y`; returns its width. The text
    /// is cleaned of characters the font lacks first.
    pub fn text(
        &self,
        text: &str,
        (x, y): (i32, i32),
        size: f64,
        bold: bool,
        color: Rgb,
        align: Align,
    ) -> Result<i32, ChartError> {
        self.drawn.borrow_mut().push(text.to_string());
        let text = font::clean(text, bold);
        let width = font::width(&text, size, bold);
        let left = match align {
            Align::Left => f64::from(x),
            Align::Center => f64::from(x) - width / 2.0,
            Align::Right => f64::from(x) - width,
        };
        let mut failed = None;
        font::rasterize(
            &text,
            (left, f64::from(y)),
            size,
            bold,
            |px, py, coverage| {
                if failed.is_none() && coverage > 0.0 {
                    if let Err(e) = self
                        .area
                        .draw_pixel((px, py), &color.mix(f64::from(coverage.min(1.0))))
                    {
                        failed = Some(draw_err(e));
                    }
                }
            },
        );
        match failed {
            Some(e) => Err(e),
            None => Ok(width.round() as i32),
        }
    }

    pub fn fill(
        &self,
        (x0, y0): (i32, i32),
        (x1, y1): (i32, i32),
        color: Rgb,
    ) -> Result<(), ChartError> {
        self.area
            .draw(&Rectangle::new([(x0, y0), (x1, y1)], color.filled()))
            .map_err(draw_err)
    }

    /// A box outline `w` pixels wide, drawn inside the box.
    pub fn outline(
        &self,
        (x0, y0): (i32, i32),
        (x1, y1): (i32, i32),
        w: i32,
        color: Rgb,
    ) -> Result<(), ChartError> {
        self.fill((x0, y0), (x1, y0 + w - 1), color)?;
        self.fill((x0, y1 - w + 1), (x1, y1), color)?;
        self.fill((x0, y0), (x0 + w - 1, y1), color)?;
        self.fill((x1 - w + 1, y0), (x1, y1), color)
    }

    pub fn line(&self, a: (i32, i32), b: (i32, i32), w: u32, color: Rgb) -> Result<(), ChartError> {
        self.area
            .draw(&PathElement::new(vec![a, b], color.stroke_width(w)))
            .map_err(draw_err)
    }

    /// A horizontal or vertical dashed line (`dash` on, `gap` off).
    pub fn dashed(
        &self,
        a: (i32, i32),
        b: (i32, i32),
        w: i32,
        (dash, gap): (i32, i32),
        color: Rgb,
    ) -> Result<(), ChartError> {
        let (dx, dy) = ((b.0 - a.0).signum(), (b.1 - a.1).signum());
        let len = (b.0 - a.0).abs().max((b.1 - a.1).abs());
        let mut at = 0;
        while at < len {
            let end = (at + dash).min(len);
            let (s, e) = (
                (a.0 + dx * at, a.1 + dy * at),
                (a.0 + dx * end, a.1 + dy * end),
            );
            // A w-wide stroke as a filled box, centred on the line.
            let h = w / 2;
            self.fill(
                (s.0.min(e.0) - h * dy.abs(), s.1.min(e.1) - h * dx.abs()),
                (
                    s.0.max(e.0) + (w - 1 - h) * dy.abs(),
                    s.1.max(e.1) + (w - 1 - h) * dx.abs(),
                ),
                color,
            )?;
            at = end + gap;
        }
        Ok(())
    }

    /// A dashed box outline.
    pub fn dashed_box(
        &self,
        (x0, y0): (i32, i32),
        (x1, y1): (i32, i32),
        w: i32,
        color: Rgb,
    ) -> Result<(), ChartError> {
        let pat = (10, 6);
        let i = w / 2;
        self.dashed((x0, y0 + i), (x1, y0 + i), w, pat, color)?;
        self.dashed((x0, y1 - i), (x1, y1 - i), w, pat, color)?;
        self.dashed((x0 + i, y0), (x0 + i, y1), w, pat, color)?;
        self.dashed((x1 - i, y0), (x1 - i, y1), w, pat, color)
    }

    /// Diagonal hatching (45°, falling to the right: ╲) inside a box.
    pub fn hatch(
        &self,
        (x0, y0): (i32, i32),
        (x1, y1): (i32, i32),
        spacing: i32,
        w: u32,
        color: Rgb,
    ) -> Result<(), ChartError> {
        let (wd, ht) = (x1 - x0, y1 - y0);
        if wd <= 0 || ht <= 0 {
            return Ok(());
        }
        // Lines (x - x0) + (y1 - y) = k for k stepping through the box,
        // each clipped to it: from the bottom or right edge to the left or
        // top edge.
        let mut k = spacing / 2;
        while k < wd + ht {
            let start = if k <= wd {
                (x0 + k, y1)
            } else {
                (x1, y1 - (k - wd))
            };
            let end = if k <= ht {
                (x0, y1 - k)
            } else {
                (x0 + (k - ht), y0)
            };
            self.line(start, end, w, color)?;
            k += spacing;
        }
        Ok(())
    }

    pub fn disc(&self, c: (i32, i32), r: i32, color: Rgb) -> Result<(), ChartError> {
        self.area
            .draw(&Circle::new(c, r.max(1), color.filled()))
            .map_err(draw_err)
    }

    pub fn polygon(&self, points: Vec<(i32, i32)>, color: Rgb) -> Result<(), ChartError> {
        self.area
            .draw(&Polygon::new(points, color.filled()))
            .map_err(draw_err)
    }

    pub fn present(self) -> Result<(), ChartError> {
        self.area.present().map_err(draw_err)
    }
}

/// Encodes an RGB buffer as PNG: zlib level 1 over rows filtered with "Up"
/// (each row minus the one above; charts are mostly flat runs). On the
/// trade chart (`cargo bench --bench charts -- chart/stages`, a loaded
/// 2-core machine) this gives 77 KB in 1.7 ms, where png's `Fast` preset
/// gives 104 KB in 1.3 ms and its default `Balanced` 58 KB in 7.7–12.7 ms:
/// most of the size saving for little of the time.
pub fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, ChartError> {
    let mut out = Vec::with_capacity(96 * 1024);
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_deflate_compression(png::DeflateCompression::Level(1));
        enc.set_filter(png::Filter::Up);
        let mut w = enc
            .write_header()
            .map_err(|e| ChartError::Encode(e.to_string()))?;
        w.write_image_data(rgb)
            .map_err(|e| ChartError::Encode(e.to_string()))?;
        w.finish().map_err(|e| ChartError::Encode(e.to_string()))?;
    }
    Ok(out)
}
