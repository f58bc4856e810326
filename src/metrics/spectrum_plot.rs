//! Drawing spectra to PNG with plotters (text in the Ubuntu font egui ships, so no system fonts
//! are needed): avg_spectra.py's heatmap (contour bands every 5 dB from −40 to 20 in blues,
//! frequencies in cycles per image) beside its 0° and 45° slices (−50…30 dB).

use std::path::Path;

use plotters::prelude::*;

const W: u32 = 1560;
const H: u32 = 520;

/// matplotlib's 'Blues' anchors.
const BLUES: [(u8, u8, u8); 9] = [(247, 251, 255), (222, 235, 247), (198, 219, 239), (158, 202, 225), (107, 174, 214), (66, 146, 198), (33, 113, 181), (8, 81, 156), (8, 48, 107)];

fn blues(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0) * (BLUES.len() - 1) as f64;
    let i = (t.floor() as usize).min(BLUES.len() - 2);
    let f = t - i as f64;
    let (a, b) = (BLUES[i], BLUES[i + 1]);
    let mix = |x: u8, y: u8| (x as f64 + (y as f64 - x as f64) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// The band colour of a dB value: 12 bands between −40 and 20, and the two extensions.
fn band_color(db: f64) -> RGBColor {
    let band = ((db + 40.0) / 5.0).floor().clamp(-1.0, 12.0);
    blues((band + 1.0) / 13.0)
}

fn register_font() {
    // Registering twice is harmless; failure leaves plotters without text, which still draws.
    let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, epaint_default_fonts::UBUNTU_LIGHT);
}

fn draw_err<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> String + '_ {
    move |e| format!("{}: cannot draw: {e}", path.display())
}

pub fn render(path: &Path, cases: &[(String, Vec<f64>, usize, usize)]) -> Result<(), String> {
    let Some((_, first, size, image_size)) = cases.first() else { return Err("nothing to draw".into()) };
    let (size, image_size) = (*size, *image_size);
    if cases.iter().any(|c| c.2 != size || c.3 != image_size) {
        return Err("all spectra must have the same resolution".into());
    }
    register_font();
    let e = draw_err(path);
    let mut buf = vec![255u8; (W * H * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(&e)?;
        let (left, right) = root.split_horizontally(520);
        let (mid, rest) = right.split_horizontally(520);

        // Heatmap of the first spectrum (smoothing 1.25, as the official default).
        let hmap = super::spectrum::heatmap(first, size, image_size, 1.25);
        let n = size + 1;
        let half = image_size as f64 / 2.0;
        let mut chart = ChartBuilder::on(&left)
            .caption(format!("{} (dB)", cases[0].0), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(40)
            .build_cartesian_2d(-half..half, -half..half)
            .map_err(&e)?;
        chart.configure_mesh().disable_mesh().x_labels(5).y_labels(5).draw().map_err(&e)?;
        let area = chart.plotting_area();
        let (xr, yr) = area.get_pixel_range();
        for py in yr.clone() {
            for px in xr.clone() {
                let fx = (px - xr.start) as f64 / (xr.end - xr.start - 1).max(1) as f64;
                let fy = 1.0 - (py - yr.start) as f64 / (yr.end - yr.start - 1).max(1) as f64;
                let db = bilinear(&hmap, n, fy * (n - 1) as f64, fx * (n - 1) as f64);
                let coord = (-half + fx * 2.0 * half, -half + fy * 2.0 * half);
                area.draw_pixel(coord, &band_color(db)).map_err(&e)?;
            }
        }

        // Slices (no smoothing).
        let slices: Vec<(String, Vec<f64>)> = cases.iter().map(|(label, s, _, _)| (label.clone(), super::spectrum::heatmap(s, size, image_size, 0.0))).collect();
        let center = n / 2;
        let count = n - center;
        for (area, title, max_f, diag) in [(&mid, "0° slice", image_size as f64 / 2.0, false), (&rest, "45° slice", image_size as f64 / 2f64.sqrt(), true)] {
            let mut chart = ChartBuilder::on(area)
                .caption(title, ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(30)
                .y_label_area_size(40)
                .build_cartesian_2d(0.0..max_f, -50.0..30.0)
                .map_err(&e)?;
            chart.configure_mesh().x_labels(9).y_labels(9).draw().map_err(&e)?;
            for (i, (label, h)) in slices.iter().enumerate() {
                let color = Palette99::pick(i).to_rgba();
                let pts = (0..count).map(|k| {
                    let f = max_f * k as f64 / (count - 1).max(1) as f64;
                    let v = if diag { h[(center + k) * n + center + k] } else { h[center * n + center + k] };
                    (f, v)
                });
                chart
                    .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                    .map_err(&e)?
                    .label(label.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
            }
            chart.configure_series_labels().position(SeriesLabelPosition::UpperRight).background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(&e)?;
        }
        root.present().map_err(&e)?;
    }
    let mut png = Vec::new();
    image::ImageEncoder::write_image(image::codecs::png::PngEncoder::new(&mut png), &buf, W, H, image::ExtendedColorType::Rgb8).map_err(|err| format!("{}: cannot encode: {err}", path.display()))?;
    crate::weights::safetensors::write_atomic(path, &png).map_err(|e| e.to_string())
}

fn bilinear(a: &[f64], n: usize, y: f64, x: f64) -> f64 {
    let (y0, x0) = (y.floor().clamp(0.0, (n - 1) as f64) as usize, x.floor().clamp(0.0, (n - 1) as f64) as usize);
    let (y1, x1) = ((y0 + 1).min(n - 1), (x0 + 1).min(n - 1));
    let (fy, fx) = (y - y0 as f64, x - x0 as f64);
    let top = a[y0 * n + x0] * (1.0 - fx) + a[y0 * n + x1] * fx;
    let bottom = a[y1 * n + x0] * (1.0 - fx) + a[y1 * n + x1] * fx;
    top * (1.0 - fy) + bottom * fy
}

/// A heatmap (`n x n`, from [`super::spectrum::heatmap`]) as RGBA in the same colour bands,
/// high frequencies of y at the top like the plot.
pub fn heatmap_rgba(hmap: &[f64], n: usize) -> Vec<u8> {
    let mut out = vec![255u8; n * n * 4];
    for y in 0..n {
        for x in 0..n {
            let RGBColor(r, g, b) = band_color(hmap[(n - 1 - y) * n + x]);
            let o = (y * n + x) * 4;
            out[o..o + 3].copy_from_slice(&[r, g, b]);
        }
    }
    out
}
