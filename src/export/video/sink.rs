//! Where video frames go, chosen by the output's name: a folder of numbered PNGs
//! (`frame000000.png`…, each written atomically) or an animated GIF (looping, delays in
//! hundredths of a second, written to a temporary file and renamed when complete, so a stopped
//! export leaves a playable file).

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use crate::error::SaveError;

/// What the output's name asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Format {
    PngFolder,
    Gif,
}

impl Format {
    /// `.gif` → GIF, a name without an extension (or an existing folder) → PNGs; anything else is
    /// an error naming what is supported.
    pub fn of(path: &Path) -> Result<Self, String> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("gif") => Ok(Self::Gif),
            None => Ok(Self::PngFolder),
            _ if path.is_dir() => Ok(Self::PngFolder),
            Some("mp4") => Err(format!("{}: MP4 encoding is not built into StyleScope yet; write a .gif, or a folder of PNGs (then e.g. ffmpeg)", path.display())),
            Some(other) => Err(format!("{}: unknown video format '.{other}' (use .gif, or a folder name for PNG frames)", path.display())),
        }
    }
}

/// An open output.
pub enum Sink {
    Png { dir: PathBuf, written: usize },
    Gif { path: PathBuf, tmp: PathBuf, encoder: Option<gif::Encoder<BufWriter<File>>>, delay_cs: u16, written: usize },
}

fn io(path: &Path, error: std::io::Error) -> SaveError {
    SaveError::Io { path: path.into(), error }
}

fn encode(path: &Path, e: impl std::fmt::Display) -> SaveError {
    SaveError::Encode { path: path.into(), detail: e.to_string() }
}

impl Sink {
    pub fn create(path: &Path, format: &Format, width: usize, height: usize, fps: f64) -> Result<Self, SaveError> {
        match format {
            Format::PngFolder => {
                std::fs::create_dir_all(path).map_err(|e| io(path, e))?;
                Ok(Self::Png { dir: path.to_path_buf(), written: 0 })
            }
            Format::Gif => {
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let tmp = path.with_file_name(format!(".{name}.partial"));
                let file = File::create(&tmp).map_err(|e| io(&tmp, e))?;
                let (w, h) = (u16::try_from(width).map_err(|_| encode(path, "GIF frames are at most 65535 pixels wide"))?, u16::try_from(height).map_err(|_| encode(path, "GIF frames are at most 65535 pixels high"))?);
                let mut encoder = gif::Encoder::new(BufWriter::new(file), w, h, &[]).map_err(|e| encode(path, e))?;
                encoder.set_repeat(gif::Repeat::Infinite).map_err(|e| encode(path, e))?;
                // GIF delays are whole hundredths of a second (60 fps → 2 cs, shown at 50 fps).
                let delay_cs = (100.0 / fps).round().clamp(1.0, 65535.0) as u16;
                Ok(Self::Gif { path: path.to_path_buf(), tmp, encoder: Some(encoder), delay_cs, written: 0 })
            }
        }
    }

    /// Appends one HWC uint8 frame (1 or 3 channels).
    pub fn push(&mut self, hwc: &[u8], height: usize, width: usize, channels: usize) -> Result<(), SaveError> {
        match self {
            Self::Png { dir, written } => {
                let path = dir.join(format!("frame{:06}.png", *written));
                let color = if channels == 1 { image::ExtendedColorType::L8 } else { image::ExtendedColorType::Rgb8 };
                let mut bytes = Vec::new();
                image::ImageEncoder::write_image(image::codecs::png::PngEncoder::new(&mut bytes), hwc, width as u32, height as u32, color).map_err(|e| encode(&path, e))?;
                crate::weights::safetensors::write_atomic(&path, &bytes)?;
                *written += 1;
            }
            Self::Gif { path, encoder, delay_cs, written, .. } => {
                let rgb: Vec<u8> = if channels == 1 { hwc.iter().flat_map(|&v| [v, v, v]).collect() } else { hwc.to_vec() };
                let mut frame = gif::Frame::from_rgb_speed(width as u16, height as u16, &rgb, 10);
                frame.delay = *delay_cs;
                encoder.as_mut().ok_or_else(|| encode(path, "already finished"))?.write_frame(&frame).map_err(|e| encode(path, e))?;
                *written += 1;
            }
        }
        Ok(())
    }

    /// Completes the file (the GIF trailer, then the rename into place); the frames written.
    pub fn finish(mut self) -> Result<usize, SaveError> {
        match &mut self {
            Self::Png { written, .. } => Ok(*written),
            Self::Gif { path, tmp, encoder, written, .. } => {
                if let Some(enc) = encoder.take() {
                    let mut w = enc.into_inner().map_err(|e| encode(path, e))?;
                    std::io::Write::flush(&mut w).map_err(|e| io(path, e))?;
                    w.get_ref().sync_all().map_err(|e| io(path, e))?;
                }
                std::fs::rename(&*tmp, &*path).map_err(|e| io(path, e))?;
                Ok(*written)
            }
        }
    }
}
