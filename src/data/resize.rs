//! `dataset_tool.py`'s scale and crop: Pillow's `Image.resize(..., LANCZOS)` re-implemented
//! exactly (same coefficients, same 22-bit fixed point, horizontal pass then vertical, rounding
//! between them), so `--resolution` gives the same bytes as the official tool; plus its
//! `center-crop` and `center-crop-wide` transforms.
//!
//! Checked equal, byte for byte, to dataset_tool.py under Pillow 12.2 (the official environment
//! pins Pillow 8.3.1, same algorithm). Pillow 13 sometimes runs the vertical pass first, which
//! moves a few pixel values by a few levels.

use super::pixels::Pixels;

/// Pillow's `PRECISION_BITS` for 8-bit images.
const PRECISION_BITS: u32 = 32 - 8 - 2;

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        return 1.0;
    }
    let x = x * std::f64::consts::PI;
    x.sin() / x
}

/// Lanczos with a = 3, truncated as Pillow does (`-3 <= x < 3`).
fn lanczos(x: f64) -> f64 {
    if (-3.0..3.0).contains(&x) {
        sinc(x) * sinc(x / 3.0)
    } else {
        0.0
    }
}

/// One pass's taps: for each output index, the first input index, the number of taps, and the
/// fixed-point weights (`ksize` per output, zero-padded).
struct Taps {
    bounds: Vec<(usize, usize)>,
    weights: Vec<i32>,
    ksize: usize,
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for the box `0..in_size`.
fn taps(in_size: usize, out_size: usize) -> Taps {
    // Pillow computes `in1 - in0` in single precision, then divides in double.
    let scale = (in_size as f32) as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = 3.0 * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * ksize];
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        // C's (int) cast truncates toward zero, as `as` does.
        let xmin = ((center - support + 0.5) as i64).max(0);
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) - xmin;
        let (xmin, n) = (xmin as usize, xmax.max(0) as usize);
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(n) {
            let w = lanczos(((x + xmin) as f64 - center + 0.5) * ss);
            *kx = w;
            ww += w;
        }
        for (x, kx) in k.iter().enumerate().take(n) {
            let v = if ww != 0.0 { kx / ww } else { *kx };
            let scaled = v * (1u32 << PRECISION_BITS) as f64;
            weights[xx * ksize + x] = if v < 0.0 { (scaled - 0.5) as i32 } else { (scaled + 0.5) as i32 };
        }
        bounds.push((xmin, n));
    }
    Taps { bounds, weights, ksize }
}

fn clip8(v: i64) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Pillow's `Image.resize((width, height), Image.LANCZOS)` on an 8-bit L or RGB image.
pub fn resize_lanczos(src: &Pixels, width: u32, height: u32) -> Pixels {
    if (src.width, src.height) == (width, height) {
        return src.clone();
    }
    let c = src.channels as usize;
    let vert = taps(src.height as usize, height as usize);
    let first_row = vert.bounds.first().map_or(0, |b| b.0);
    let last_row = vert.bounds.last().map_or(0, |b| b.0 + b.1);
    let half = 1i64 << (PRECISION_BITS - 1);

    // Horizontal pass over only the rows the vertical pass reads (Pillow's `ybox`).
    let (tmp, row_offset) = if width != src.width {
        let hor = taps(src.width as usize, width as usize);
        let (sw, ow) = (src.width as usize, width as usize);
        let rows = last_row - first_row;
        let mut data = vec![0u8; ow * rows * c];
        for y in 0..rows {
            let row = &src.data[(y + first_row) * sw * c..(y + first_row + 1) * sw * c];
            for xx in 0..ow {
                let (xmin, n) = hor.bounds[xx];
                let k = &hor.weights[xx * hor.ksize..xx * hor.ksize + n];
                for ch in 0..c {
                    let mut ss = half;
                    for (x, kx) in k.iter().enumerate() {
                        ss += row[(x + xmin) * c + ch] as i64 * *kx as i64;
                    }
                    data[(y * ow + xx) * c + ch] = clip8(ss);
                }
            }
        }
        (Pixels::new(width, rows as u32, src.channels, data), first_row)
    } else {
        (src.clone(), 0)
    };
    if height == src.height {
        return tmp;
    }

    let w = tmp.width as usize;
    let mut data = vec![0u8; w * height as usize * c];
    for yy in 0..height as usize {
        let (ymin, n) = vert.bounds[yy];
        let ymin = ymin - row_offset;
        let k = &vert.weights[yy * vert.ksize..yy * vert.ksize + n];
        for xc in 0..w * c {
            let mut ss = half;
            for (y, ky) in k.iter().enumerate() {
                ss += tmp.data[(y + ymin) * w * c + xc] as i64 * *ky as i64;
            }
            data[yy * w * c + xc] = clip8(ss);
        }
    }
    Pixels::new(width, height, src.channels, data)
}

/// `--transform` of `dataset_tool.py`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transform {
    /// Crop the largest centred square, then resize to the resolution.
    CenterCrop,
    /// Keep the full width, crop the height to the resolution's aspect ratio, resize, and
    /// letterbox onto a black square canvas as wide as the resolution. Narrower images are dropped.
    CenterCropWide,
}

/// `numpy.round`: halves go to the even neighbour.
fn round_half_even(x: f64) -> f64 {
    x.round_ties_even()
}

/// `make_transform(transform, width, height)(img)` of `dataset_tool.py`: `None` when the transform
/// drops the image (center-crop-wide on an image narrower than the resolution). Without a
/// transform, a resolution resizes to exactly `W×H` (the aspect ratio is not kept).
pub fn apply(img: Pixels, transform: Option<Transform>, resolution: Option<(u32, u32)>) -> Option<Pixels> {
    match (transform, resolution) {
        (_, None) => Some(img),
        (None, Some((w, h))) => Some(resize_lanczos(&img, w, h)),
        (Some(Transform::CenterCrop), Some((w, h))) => {
            let crop = img.width.min(img.height);
            let (x0, y0) = ((img.width - crop) / 2, (img.height - crop) / 2);
            let square = img.crop(x0, y0, (img.width + crop) / 2, (img.height + crop) / 2);
            Some(resize_lanczos(&square, w, h))
        }
        (Some(Transform::CenterCropWide), Some((w, h))) => {
            let ch = round_half_even(w as f64 * img.height as f64 / img.width as f64) as u32;
            if img.width < w || ch < h {
                return None;
            }
            let band = img.crop(0, (img.height - ch) / 2, img.width, (img.height + ch) / 2);
            let band = resize_lanczos(&band, w, h);
            let mut canvas = Pixels::zeros(w, w, img.channels);
            let top = ((w - h) / 2) as usize;
            let row = w as usize * img.channels as usize;
            canvas.data[top * row..(top + h as usize) * row].copy_from_slice(&band.data);
            Some(canvas)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(w: u32, h: u32, c: u8) -> Pixels {
        let mut data = Vec::new();
        for y in 0..h {
            for x in 0..w {
                for ch in 0..c as u32 {
                    data.push(((x * 37 + y * 91 + ch * 53 + (x * y) % 7 * 29) % 256) as u8);
                }
            }
        }
        Pixels::new(w, h, c, data)
    }

    /// Computed with Pillow 12.2.0 (13.0.0 gives the same):
    /// `np.array(PIL.Image.fromarray(a).resize((W, H), PIL.Image.LANCZOS))` where `a` is
    /// `pattern()` above built with numpy.
    #[test]
    fn lanczos_matches_pillow() {
        let down = resize_lanczos(&pattern(7, 5, 3), 3, 4);
        assert_eq!(down.data, PILLOW_7X5_TO_3X4);
        let up = resize_lanczos(&pattern(4, 3, 1), 6, 5);
        assert_eq!(up.data, PILLOW_4X3_TO_6X5);
        let only_h = resize_lanczos(&pattern(9, 2, 1), 4, 2);
        assert_eq!(only_h.data, PILLOW_9X2_TO_4X2);
        let both = resize_lanczos(&pattern(13, 19, 1), 5, 7);
        assert_eq!(both.data, PILLOW_13X19_TO_5X7);
    }

    const PILLOW_13X19_TO_5X7: [u8; 35] = [
        90, 137, 139, 102, 149, 99, 119, 143, 94, 137, 166, 94, 96, 135, 66, 115, 148, 113, 135, 142, 154, 153, 125, 161, 149, 119, 119, 169, 117, 136, 114,
        131, 114, 90, 143,
    ];

    const PILLOW_7X5_TO_3X4: [u8; 36] = [
        52, 84, 122, 106, 166, 195, 198, 143, 87, 141, 151, 84, 129, 89, 135, 147, 161, 89, 69, 135, 154, 131, 134, 117, 135, 125, 138, 83, 90, 149, 114, 101,
        136, 160, 102, 84,
    ];
    const PILLOW_4X3_TO_6X5: [u8; 30] =
        [0, 3, 24, 44, 96, 130, 17, 46, 106, 139, 100, 60, 87, 110, 181, 238, 124, 14, 172, 114, 82, 153, 165, 140, 209, 98, 0, 64, 186, 242];
    const PILLOW_9X2_TO_4X2: [u8; 8] = [23, 106, 189, 53, 151, 110, 157, 151];

    #[test]
    fn numpy_rounding() {
        assert_eq!(round_half_even(2.5), 2.0);
        assert_eq!(round_half_even(3.5), 4.0);
        assert_eq!(round_half_even(-0.5), -0.0);
        assert_eq!(round_half_even(2.4), 2.0);
        assert_eq!(round_half_even(2.6), 3.0);
    }

    #[test]
    fn transforms_follow_dataset_tool() {
        // center-crop: 8x4 → the middle 4x4 square.
        let img = pattern(8, 4, 1);
        let out = apply(img.clone(), Some(Transform::CenterCrop), Some((4, 4))).unwrap();
        assert_eq!(out, img.crop(2, 0, 6, 4));
        // center-crop-wide 8x4 at 4x2: ch = round(4*4/8) = 2 rows from the middle, resized to 4x2,
        // on a 4x4 black canvas at rows 1..3.
        let out = apply(img.clone(), Some(Transform::CenterCropWide), Some((4, 2))).unwrap();
        assert_eq!((out.width, out.height), (4, 4));
        assert_eq!(&out.data[..4], &[0; 4]);
        assert_eq!(&out.data[12..], &[0; 4]);
        assert_eq!(&out.data[4..12], &resize_lanczos(&img.crop(0, 1, 8, 3), 4, 2).data[..]);
        // Narrower than the resolution: dropped.
        assert!(apply(pattern(3, 8, 1), Some(Transform::CenterCropWide), Some((4, 2))).is_none());
        // No transform: plain resize to exactly W×H.
        let out = apply(pattern(8, 4, 3), None, Some((4, 4))).unwrap();
        assert_eq!((out.width, out.height, out.channels), (4, 4, 3));
    }
}
