//! Where video frames go, chosen by the output's name: a folder of numbered PNGs
//! (`frame000000.png`…, each written atomically), an MP4 (H.264 by Cisco's openh264, muxed by
//! muxide, 12 Mbit/s like gen_video.py's default, odd sizes padded to even by repeating the last
//! row/column) or an animated GIF (looping, delays in hundredths of a second). MP4 and GIF are
//! written to a temporary file and renamed when complete, so a stopped export leaves a playable
//! file.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use crate::error::SaveError;

/// What the output's name asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Format {
    PngFolder,
    Gif,
    Mp4,
}

impl Format {
    /// `.gif` → GIF, a name without an extension (or an existing folder) → PNGs; anything else is
    /// an error naming what is supported.
    pub fn of(path: &Path) -> Result<Self, String> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("gif") => Ok(Self::Gif),
            None => Ok(Self::PngFolder),
            _ if path.is_dir() => Ok(Self::PngFolder),
            Some("mp4") => Ok(Self::Mp4),
            Some(other) => Err(format!("{}: unknown video format '.{other}' (use .mp4, .gif, or a folder name for PNG frames)", path.display())),
        }
    }
}

/// An open output.
pub enum Sink {
    Png { dir: PathBuf, written: usize },
    Gif { path: PathBuf, tmp: PathBuf, encoder: Option<gif::Encoder<BufWriter<File>>>, delay_cs: u16, written: usize },
    Mp4(Box<Mp4Sink>),
}

/// The H.264 encoder and MP4 muxer of an `.mp4` output.
pub struct Mp4Sink {
    path: PathBuf,
    tmp: PathBuf,
    encoder: openh264::encoder::Encoder,
    muxer: Option<muxide::api::Muxer<BufWriter<File>>>,
    fps: f64,
    /// The encoded size (even).
    width: usize,
    height: usize,
    written: usize,
}

/// gen_video.py's default bitrate (imageio-ffmpeg's `bitrate='12M'`).
pub const MP4_BITRATE: u32 = 12_000_000;

/// `name` → `.name.partial` beside it.
fn partial(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.partial"))
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
            Format::Mp4 => {
                use openh264::encoder::{BitRate, EncoderConfig, FrameRate};
                let (w, h) = (width + width % 2, height + height % 2);
                let tmp = partial(path);
                let file = File::create(&tmp).map_err(|e| io(&tmp, e))?;
                let config = EncoderConfig::new().bitrate(BitRate::from_bps(MP4_BITRATE)).max_frame_rate(FrameRate::from_hz(fps as f32));
                let encoder = openh264::encoder::Encoder::with_api_config(openh264::OpenH264API::from_source(), config).map_err(|e| encode(path, e))?;
                let muxer = muxide::api::MuxerBuilder::new(BufWriter::new(file)).video(muxide::api::VideoCodec::H264, w as u32, h as u32, fps).with_fast_start(true).build().map_err(|e| encode(path, e))?;
                Ok(Self::Mp4(Box::new(Mp4Sink { path: path.to_path_buf(), tmp, encoder, muxer: Some(muxer), fps, width: w, height: h, written: 0 })))
            }
            Format::Gif => {
                let tmp = partial(path);
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
            Self::Mp4(m) => {
                use openh264::formats::{RgbSliceU8, YUVBuffer};
                // RGB at the encoded (even) size: gray expanded, the last row/column repeated.
                let (w, h) = (m.width, m.height);
                let mut rgb = vec![0u8; w * h * 3];
                for y in 0..h {
                    for x in 0..w {
                        let s = (y.min(height - 1) * width + x.min(width - 1)) * channels;
                        let px = if channels == 1 { [hwc[s]; 3] } else { [hwc[s], hwc[s + 1], hwc[s + 2]] };
                        rgb[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&px);
                    }
                }
                let yuv = YUVBuffer::from_rgb8_source(RgbSliceU8::new(&rgb, (w, h)));
                let bits = m.encoder.encode(&yuv).map_err(|e| encode(&m.path, e))?;
                let key = matches!(bits.frame_type(), openh264::encoder::FrameType::IDR | openh264::encoder::FrameType::I);
                let data = bits.to_vec();
                let pts = m.written as f64 / m.fps;
                m.muxer.as_mut().ok_or_else(|| encode(&m.path, "already finished"))?.write_video(pts, &data, key).map_err(|e| encode(&m.path, e))?;
                m.written += 1;
            }
        }
        Ok(())
    }

    /// Completes the file (the GIF trailer or the MP4 index, then the rename into place); the
    /// frames written.
    pub fn finish(mut self) -> Result<usize, SaveError> {
        match &mut self {
            Self::Png { written, .. } => Ok(*written),
            Self::Mp4(m) => {
                if let Some(mux) = m.muxer.take() {
                    mux.finish().map_err(|e| encode(&m.path, e))?;
                }
                std::fs::rename(&m.tmp, &m.path).map_err(|e| io(&m.path, e))?;
                Ok(m.written)
            }
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

impl Drop for Sink {
    /// An output abandoned on an error leaves no partial file behind.
    fn drop(&mut self) {
        let tmp = match self {
            Self::Png { .. } => return,
            Self::Gif { tmp, .. } => tmp.clone(),
            Self::Mp4(m) => m.tmp.clone(),
        };
        let _ = std::fs::remove_file(tmp);
    }
}
