//! Images as the dataset code handles them: 8-bit HWC pixels with 1 (grayscale) or 3 (RGB)
//! channels, decoded from PNG, JPEG or WebP, and written back as uncompressed PNG.
//!
//! The official tools keep grayscale as one channel and RGB as three. An alpha channel is our
//! extension: RGBA and grayscale+alpha are composited onto white (the official tool refuses RGBA
//! and would train on the raw colour of transparent pixels). 16-bit images become 8-bit and palette
//! images RGB.

use std::io::Cursor;

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ColorType, DynamicImage, ExtendedColorType, ImageDecoder, ImageEncoder, ImageFormat, ImageReader};

/// 8-bit pixels, row-major HWC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pixels {
    pub width: u32,
    pub height: u32,
    /// 1 (grayscale) or 3 (RGB).
    pub channels: u8,
    pub data: Vec<u8>,
}

impl Pixels {
    pub fn new(width: u32, height: u32, channels: u8, data: Vec<u8>) -> Self {
        debug_assert_eq!(data.len(), width as usize * height as usize * channels as usize);
        Self { width, height, channels, data }
    }

    /// The same image with 3 channels (grayscale values replicated; RGB unchanged).
    pub fn to_rgb(self) -> Pixels {
        if self.channels != 1 {
            return self;
        }
        let data = self.data.iter().flat_map(|&v| [v, v, v]).collect();
        Self::new(self.width, self.height, 3, data)
    }

    /// A black image.
    pub fn zeros(width: u32, height: u32, channels: u8) -> Self {
        Self::new(width, height, channels, vec![0; width as usize * height as usize * channels as usize])
    }

    /// The pixels in CHW order (what the training loop feeds the networks).
    pub fn to_chw(&self, xflip: bool) -> Vec<u8> {
        let (w, h, c) = (self.width as usize, self.height as usize, self.channels as usize);
        let mut out = vec![0u8; w * h * c];
        for y in 0..h {
            for x in 0..w {
                let sx = if xflip { w - 1 - x } else { x };
                for ch in 0..c {
                    out[(ch * h + y) * w + x] = self.data[(y * w + sx) * c + ch];
                }
            }
        }
        out
    }

    /// Rows `y0..y1` and columns `x0..x1`.
    pub fn crop(&self, x0: u32, y0: u32, x1: u32, y1: u32) -> Pixels {
        let c = self.channels as usize;
        let (w, nw) = (self.width as usize, (x1 - x0) as usize);
        let mut data = Vec::with_capacity(nw * (y1 - y0) as usize * c);
        for y in y0 as usize..y1 as usize {
            let row = (y * w + x0 as usize) * c;
            data.extend_from_slice(&self.data[row..row + nw * c]);
        }
        Pixels::new(x1 - x0, y1 - y0, self.channels, data)
    }
}

/// How many channels an image of this colour type has for us (alpha is composited away).
pub fn channels_of(color: ColorType) -> u8 {
    if color.has_color() {
        3
    } else {
        1
    }
}

/// `value` drawn with opacity `alpha` over white, rounded to nearest.
fn over_white(value: u8, alpha: u8) -> u8 {
    let (v, a) = (value as u32, alpha as u32);
    ((v * a + 255 * (255 - a) + 127) / 255) as u8
}

fn reader<'a>(bytes: &'a [u8], name: &str) -> Result<ImageReader<Cursor<&'a [u8]>>, String> {
    let mut r = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| e.to_string())?;
    if r.format().is_none() {
        match ImageFormat::from_path(name) {
            Ok(f) => r.set_format(f),
            Err(_) => return Err("not a PNG, JPEG or WebP image".into()),
        }
    }
    Ok(r)
}

/// Width, height and channels from the header only (cheap: no pixel data is decoded).
pub fn probe(bytes: &[u8], name: &str) -> Result<(u32, u32, u8), String> {
    let decoder = reader(bytes, name)?.into_decoder().map_err(|e| e.to_string())?;
    let (w, h) = decoder.dimensions();
    Ok((w, h, channels_of(decoder.color_type())))
}

/// Decodes a PNG, JPEG or WebP file (`name` is used only when the content does not say what it
/// is). Grayscale stays one channel, colour becomes RGB, alpha is composited onto white.
pub fn decode(bytes: &[u8], name: &str) -> Result<Pixels, String> {
    let img = reader(bytes, name)?.decode().map_err(|e| e.to_string())?;
    Ok(from_dynamic(img))
}

/// Our channel policy applied to a decoded image.
pub fn from_dynamic(img: DynamicImage) -> Pixels {
    let (w, h) = (img.width(), img.height());
    let color = img.color();
    match (color.has_color(), color.has_alpha()) {
        (false, false) => Pixels::new(w, h, 1, img.into_luma8().into_raw()),
        (true, false) => Pixels::new(w, h, 3, img.into_rgb8().into_raw()),
        (false, true) => {
            let la = img.into_luma_alpha8();
            Pixels::new(w, h, 1, la.pixels().map(|p| over_white(p[0], p[1])).collect())
        }
        (true, true) => {
            let rgba = img.into_rgba8();
            let mut data = Vec::with_capacity(w as usize * h as usize * 3);
            for p in rgba.pixels() {
                data.extend((0..3).map(|c| over_white(p[c], p[3])));
            }
            Pixels::new(w, h, 3, data)
        }
    }
}

/// An uncompressed PNG (as `dataset_tool.py` writes: `compress_level=0`, fastest to decode).
pub fn encode_png(p: &Pixels) -> Result<Vec<u8>, String> {
    let color = if p.channels == 1 { ExtendedColorType::L8 } else { ExtendedColorType::Rgb8 };
    let mut out = Vec::with_capacity(p.data.len() + p.height as usize * 6 + 1024);
    PngEncoder::new_with_quality(&mut out, CompressionType::Uncompressed, FilterType::NoFilter)
        .write_image(&p.data, p.width, p.height, color)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpha_goes_onto_white_and_png_round_trips() {
        let rgba = image::RgbaImage::from_raw(2, 1, vec![255, 0, 0, 255, 0, 0, 0, 0]).unwrap();
        let p = from_dynamic(DynamicImage::ImageRgba8(rgba));
        assert_eq!((p.channels, p.data.clone()), (3, vec![255, 0, 0, 255, 255, 255]));
        let la = image::GrayAlphaImage::from_raw(1, 1, vec![0, 128]).unwrap();
        assert_eq!(from_dynamic(DynamicImage::ImageLumaA8(la)).data, vec![127]);
        let png = encode_png(&p).unwrap();
        assert_eq!(probe(&png, "x.png").unwrap(), (2, 1, 3));
        assert_eq!(decode(&png, "x.png").unwrap(), p);
        assert!(decode(b"not an image", "x.png").is_err());
        assert!(decode(b"not an image", "x.txt").is_err());
    }

    #[test]
    fn chw_and_flip() {
        let p = Pixels::new(2, 1, 3, vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(p.to_chw(false), vec![1, 4, 2, 5, 3, 6]);
        assert_eq!(p.to_chw(true), vec![4, 1, 5, 2, 6, 3]);
        let q = Pixels::new(3, 2, 1, vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(q.crop(1, 0, 3, 2).data, vec![2, 3, 5, 6]);
    }
}
