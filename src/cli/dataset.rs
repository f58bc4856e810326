//! `stylescope dataset`: dataset_tool.py, flag for flag. Makes a training dataset (the official
//! zip/folder layout) from a folder or zip of images; the work is in `crate::data::convert`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::data::{convert, ConvertOptions, Progress, Transform};

/// Shown after the flags in `stylescope dataset --help`.
pub const AFTER_HELP: &str = "\
Reads PNG, JPEG and WebP files from --source, recursively, in the order dataset_tool.py uses, and
writes 00000/img00000000.png ... (1000 per folder, uncompressed PNG) and dataset.json to --dest.
A dataset.json in the source ({\"labels\": [[\"rel/path.png\", 3], ...]}) is carried over.

Grayscale images stay 1 channel and colour images 3, as in the official tool. StyleScope extension:
images with an alpha channel (RGBA, grayscale+alpha) are composited onto white. Files that are not
images, or cannot be decoded, are skipped with a warning (the official tool stops).

Training needs every output image to have the same size and channels, square and a power of two:
use --resolution (and --transform) to make them so.

Example:
  stylescope dataset --source photos/ --dest faces-256.zip --transform center-crop --resolution 256x256
";

#[derive(Args, Debug)]
pub struct DatasetArgs {
    /// Input: a folder (searched recursively) or a .zip of images.
    #[arg(long, value_name = "DIR|ZIP")]
    pub source: PathBuf,
    /// Output: OUT.zip (uncompressed archive) or a folder that is empty or does not exist.
    #[arg(long, value_name = "OUT.zip|DIR")]
    pub dest: PathBuf,
    /// Output resolution, e.g. 512x512 (Lanczos, exactly as Pillow resizes; without --transform
    /// the image is stretched to WxH).
    #[arg(long, value_name = "WxH", value_parser = parse_resolution)]
    pub resolution: Option<(u32, u32)>,
    /// Crop before resizing (needs --resolution). center-crop: the largest centred square.
    /// center-crop-wide: full width, the height cropped to W:H, letterboxed onto a black WxW square
    /// (images narrower than W are dropped).
    #[arg(long, value_enum)]
    pub transform: Option<TransformArg>,
    /// Use only the first N image files.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_images: Option<u64>,
    /// Write every image as RGB, replicating grayscale ones, so a source that mixes grayscale
    /// and colour images converts (StyleScope extension).
    #[arg(long)]
    pub rgb: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TransformArg {
    CenterCrop,
    CenterCropWide,
}

/// dataset_tool.py's `parse_tuple`: `512x512` or `512,512`.
pub fn parse_resolution(s: &str) -> anyhow::Result<(u32, u32)> {
    let Some((w, h)) = s.split_once(['x', ',']) else { bail!("'{s}' is not a resolution (expected WxH, e.g. 512x512)") };
    let num = |t: &str| -> anyhow::Result<u32> {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            bail!("'{s}' is not a resolution (expected WxH, e.g. 512x512)");
        }
        t.parse().with_context(|| format!("'{t}' is too large"))
    };
    let (w, h) = (num(w)?, num(h)?);
    if w == 0 || h == 0 {
        bail!("'{s}': width and height must be at least 1");
    }
    Ok((w, h))
}

pub fn run(args: &DatasetArgs) -> anyhow::Result<()> {
    let opts = ConvertOptions {
        source: args.source.clone(),
        dest: args.dest.clone(),
        max_images: args.max_images.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        transform: args.transform.map(|t| match t {
            TransformArg::CenterCrop => Transform::CenterCrop,
            TransformArg::CenterCropWide => Transform::CenterCropWide,
        }),
        resolution: args.resolution,
        rgb: args.rgb,
    };
    // Drawn on stderr only when it is a terminal.
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} images [{elapsed_precise} < {eta_precise}]") {
        bar.set_style(style);
    }
    let mut on_progress = |p: Progress| match p {
        Progress::Start { total } => bar.set_length(total as u64),
        Progress::Image => bar.inc(1),
        Progress::Skipped { file, reason } => bar.suspend(|| eprintln!("warning: skipping {file}: {reason}")),
    };
    let result = convert(&opts, &mut on_progress);
    bar.finish_and_clear();
    let report = result?;
    let channels = if report.channels == 1 { "grayscale" } else { "RGB" };
    let labels = if report.labels { "with labels" } else { "no labels" };
    println!("Wrote {} images ({}x{} {channels}, {labels}) to {}", report.written, report.width, report.height, report.dest.display());
    match report.skipped.len() {
        0 => {}
        1 => println!("Skipped 1 file (see the warning above)"),
        n => println!("Skipped {n} files (see the warnings above)"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolutions_parse_like_parse_tuple() {
        assert_eq!(parse_resolution("512x384").unwrap(), (512, 384));
        assert_eq!(parse_resolution("4,2").unwrap(), (4, 2));
        for bad in ["512", "x512", "512x", "a x b", "0x4", "-1x4", "4x4x4"] {
            assert!(parse_resolution(bad).is_err(), "{bad}");
        }
    }
}
