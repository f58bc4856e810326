//! Writing results: PNGs quantised exactly like gen_images.py, raw float32 `.npy` arrays, and
//! videos (`video`: gen_video.py's interpolation to PNG frames or GIF).

pub mod npy;
pub mod video;

use std::path::Path;

/// gen_images.py's conversion: `(x·127.5 + 128).clamp(0, 255)` truncated to u8, CHW → HWC.
pub fn quantize_chw(data: &[f32], channels: usize, height: usize, width: usize) -> Vec<u8> {
    let plane = height * width;
    let mut out = vec![0u8; plane * channels];
    for c in 0..channels {
        for p in 0..plane {
            let v = (data[c * plane + p] * 127.5f32 + 128f32).clamp(0.0, 255.0);
            out[p * channels + c] = v as u8;
        }
    }
    out
}

/// Saves an RGB (3 channels) or grayscale (1 channel) HWC u8 image as PNG.
pub fn save_png(path: &Path, hwc: &[u8], channels: usize, height: usize, width: usize) -> Result<(), image::ImageError> {
    let color = if channels == 1 { image::ExtendedColorType::L8 } else { image::ExtendedColorType::Rgb8 };
    image::save_buffer_with_format(path, hwc, width as u32, height as u32, color, image::ImageFormat::Png)
}
