//! `stylescope dataset`: the official `dataset_tool.py` (`convert_dataset`). Reads every image of
//! a folder (recursively) or zip in the official order, optionally crops and resizes it, and writes
//! `00000/img00000000.png` … (1000 per folder, uncompressed PNG) plus `dataset.json` with the
//! labels carried over, into a zip archive or a folder.
//!
//! Where the official tool would stop with a Python traceback on a file it cannot read, we skip
//! that file and report it; everything else (numbering, the checks on the output size) is the
//! official behaviour. A zip destination is written to `OUT.zip.tmp` and renamed into place when
//! complete; into a folder, each file is written under a temporary name and renamed.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

pub use super::resize::Transform;
pub use super::summary::Skipped;

use super::files::{self, Store};
use super::pixels::{self, Pixels};
use super::{resize, DataError};

/// The flags of `dataset_tool.py`.
#[derive(Clone, Debug)]
pub struct ConvertOptions {
    /// A folder (searched recursively) or a `.zip`.
    pub source: PathBuf,
    /// `OUT.zip`, or a folder that is empty or does not exist yet.
    pub dest: PathBuf,
    /// Use only the first N image files (in the official order).
    pub max_images: Option<usize>,
    pub transform: Option<Transform>,
    /// Output `(width, height)`.
    pub resolution: Option<(u32, u32)>,
    /// Write every image as RGB (grayscale replicated), so a source that mixes grayscale and
    /// colour images converts (our extension; the official tool refuses such sources).
    pub rgb: bool,
}

/// What the conversion reports while it runs.
#[derive(Debug)]
pub enum Progress<'a> {
    /// About to process `total` image files.
    Start { total: usize },
    /// One image file done (written or skipped).
    Image,
    /// A file that is not used, and why.
    Skipped { file: &'a str, reason: &'a str },
}

/// What was written.
#[derive(Clone, Debug)]
pub struct ConvertReport {
    pub dest: PathBuf,
    pub written: usize,
    pub width: u32,
    pub height: u32,
    pub channels: u8,
    /// Labels were carried over (every written image had one).
    pub labels: bool,
    pub skipped: Vec<Skipped>,
}

/// `f'{idx:08d}'` → `'00000/img00000000.png'`.
pub fn archive_name(idx: usize) -> String {
    let s = format!("{idx:08}");
    format!("{}/img{s}.png", &s[..5])
}

/// Converts `opts.source` into a dataset at `opts.dest`.
pub fn convert(opts: &ConvertOptions, progress: &mut dyn FnMut(Progress)) -> Result<ConvertReport, DataError> {
    check_options(opts)?;
    let source = Store::open(&opts.source)?;
    let all = source.files()?;
    let labels = files::read_labels(&source, &all)?.unwrap_or_default();
    let (mut images, mut others): (Vec<String>, Vec<String>) = all.into_iter().filter(|n| n != files::LABELS_FILE).partition(|n| files::tool_is_image(n));
    files::sort_like_tool(&mut images);
    files::sort_like_tool(&mut others);
    if images.is_empty() {
        let detail = if others.is_empty() { " (it is empty)".to_string() } else { format!(" ({} other files, no PNG, JPEG or WebP)", others.len()) };
        return Err(DataError::NoImages { path: opts.source.display().to_string(), detail });
    }
    let total = opts.max_images.map_or(images.len(), |m| m.min(images.len()));

    let mut dest = Dest::open(&opts.dest)?;
    let mut skipped = Vec::new();
    let mut skip = |progress: &mut dyn FnMut(Progress), file: String, reason: String| {
        progress(Progress::Skipped { file: &file, reason: &reason });
        skipped.push(Skipped { file, reason });
    };
    for name in &others {
        skip(progress, source.display(name), "not an image file".into());
    }
    progress(Progress::Start { total });

    let mut first: Option<(String, u32, u32, u8)> = None;
    let mut out_labels: Vec<Option<serde_json::Value>> = Vec::with_capacity(total);
    for (idx, name) in images.iter().take(total).enumerate() {
        let shown = source.display(name);
        let img = match source.read(name).and_then(|b| pixels::decode(&b, name).map_err(|detail| DataError::Image { path: shown.clone(), detail })) {
            Ok(img) => img,
            Err(e) => {
                skip(progress, shown, reason_of(&e));
                progress(Progress::Image);
                continue;
            }
        };
        let Some(img) = resize::apply(img, opts.transform, opts.resolution) else {
            let (w, h) = opts.resolution.unwrap_or_default();
            skip(progress, shown, format!("too small for center-crop-wide at {w}x{h} (dropped, as dataset_tool.py does)"));
            progress(Progress::Image);
            continue;
        };
        let img = if opts.rgb { img.to_rgb() } else { img };
        check_shape(&img, &shown, &mut first)?;
        let archive = archive_name(idx);
        let png = pixels::encode_png(&img).map_err(|detail| DataError::Image { path: shown.clone(), detail })?;
        dest.write(&archive, &png)?;
        // A JSON null label is no label, as `labels.get(name)` returning None.
        out_labels.push(labels.get(name.as_str()).filter(|v| !v.is_null()).map(|v| serde_json::json!([archive, v])));
        progress(Progress::Image);
    }

    let Some((_, width, height, channels)) = first else {
        return Err(DataError::NoImages {
            path: opts.source.display().to_string(),
            detail: format!(": none of its {total} image files could be used (see the warnings)"),
        });
    };
    let written = out_labels.len();
    let all_labelled: Option<Vec<serde_json::Value>> = out_labels.into_iter().collect();
    let has_labels = all_labelled.is_some();
    let meta = serde_json::json!({ "labels": all_labelled });
    dest.write(files::LABELS_FILE, &python_json(&meta))?;
    dest.finish()?;
    Ok(ConvertReport { dest: opts.dest.clone(), written, width, height, channels, labels: has_labels, skipped })
}

fn check_options(opts: &ConvertOptions) -> Result<(), DataError> {
    if opts.dest.as_os_str().is_empty() {
        return Err(DataError::Options("--dest output filename or directory must not be an empty string".into()));
    }
    if opts.max_images == Some(0) {
        return Err(DataError::Options("--max-images must be at least 1".into()));
    }
    if let Some((w, h)) = opts.resolution {
        if w == 0 || h == 0 {
            return Err(DataError::Options(format!("--resolution {w}x{h}: width and height must be at least 1")));
        }
    }
    match (opts.transform, opts.resolution) {
        (Some(t), None) => {
            let name = if t == Transform::CenterCrop { "center-crop" } else { "center-crop-wide" };
            Err(DataError::Options(format!("must specify --resolution=WxH when using the {name} transform")))
        }
        (Some(Transform::CenterCropWide), Some((w, h))) if h > w => {
            Err(DataError::Options(format!("--resolution {w}x{h}: center-crop-wide letterboxes into a {w}x{w} square, so the height cannot exceed the width")))
        }
        _ => Ok(()),
    }
}

/// The official checks: the first image sets the size and channels, which must be a square power
/// of two; every later image must match it.
fn check_shape(img: &Pixels, shown: &str, first: &mut Option<(String, u32, u32, u8)>) -> Result<(), DataError> {
    let (w, h, c) = (img.width, img.height, img.channels);
    let bad = |detail: String| Err(DataError::Shape { path: shown.to_string(), detail });
    match first {
        None => {
            if w != h {
                return bad(format!("is {w}x{h} after scale and crop: dataset images must be square (use --resolution, e.g. with --transform center-crop)"));
            }
            if !w.is_power_of_two() {
                return bad(format!("is {w}x{h} after scale and crop: the width and height must be a power of two (use --resolution)"));
            }
            *first = Some((shown.to_string(), w, h, c));
            Ok(())
        }
        Some((first_name, fw, fh, fc)) => {
            if (w, h) != (*fw, *fh) {
                return bad(format!("is {w}x{h} after scale and crop, but {first_name} is {fw}x{fh}: all images must have the same size (use --resolution)"));
            }
            if c != *fc {
                let kind = |c: u8| if c == 1 { "grayscale" } else { "RGB" };
                return bad(format!("is {}, but {first_name} is {}: a dataset cannot mix grayscale and colour images (--rgb converts the grayscale ones)", kind(c), kind(*fc)));
            }
            Ok(())
        }
    }
}

fn reason_of(e: &DataError) -> String {
    match e {
        DataError::Image { detail, .. } => format!("not a readable image ({detail})"),
        DataError::Io { action, error, .. } => format!("cannot {action}: {error}"),
        DataError::Zip { detail, .. } => format!("cannot read it from the archive: {detail}"),
        other => other.to_string(),
    }
}

/// `json.dumps(metadata)`: `", "` and `": "` separators, non-ASCII escaped.
fn python_json(v: &serde_json::Value) -> Vec<u8> {
    struct Py;
    impl serde_json::ser::Formatter for Py {
        fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
            if first {
                Ok(())
            } else {
                w.write_all(b", ")
            }
        }
        fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
            self.begin_array_value(w, first)
        }
        fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
            w.write_all(b": ")
        }
        fn write_string_fragment<W: ?Sized + Write>(&mut self, w: &mut W, fragment: &str) -> std::io::Result<()> {
            for ch in fragment.chars() {
                if ch.is_ascii() {
                    w.write_all(&[ch as u8])?;
                } else {
                    let mut units = [0u16; 2];
                    for u in ch.encode_utf16(&mut units) {
                        write!(w, "\\u{u:04x}")?;
                    }
                }
            }
            Ok(())
        }
    }
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Py);
    // Serialising a Value into a Vec cannot fail.
    let _ = serde::Serialize::serialize(v, &mut ser);
    out
}

/// Where the dataset goes: a zip written under a temporary name, or a folder.
enum Dest {
    Zip { path: PathBuf, tmp: PathBuf, writer: Option<Box<ZipWriter<BufWriter<File>>>> },
    Dir { root: PathBuf, written: Vec<PathBuf>, created_root: bool, done: bool },
}

impl Dest {
    fn open(path: &Path) -> Result<Self, DataError> {
        let shown = path.display();
        let dest_err = |detail: &str| DataError::Dest { path: shown.to_string(), detail: detail.to_string() };
        if files::is_zip_name(path) {
            if path.is_dir() {
                return Err(dest_err("is a folder; a .zip destination must be a file"));
            }
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| DataError::io(&shown, "create its folder", e))?;
            }
            let mut tmp = path.as_os_str().to_owned();
            tmp.push(".tmp");
            let tmp = PathBuf::from(tmp);
            let file = File::create(&tmp).map_err(|e| DataError::io(&shown, "write", e))?;
            let writer = Box::new(ZipWriter::new(BufWriter::new(file)));
            return Ok(Dest::Zip { path: path.to_path_buf(), tmp, writer: Some(writer) });
        }
        let created_root = !path.exists();
        if path.exists() {
            if !path.is_dir() {
                return Err(dest_err("exists and is not a folder (a .zip destination must end in .zip)"));
            }
            let mut entries = std::fs::read_dir(path).map_err(|e| DataError::io(&shown, "list the folder", e))?;
            if entries.next().is_some() {
                return Err(dest_err("the destination folder must be empty"));
            }
        }
        std::fs::create_dir_all(path).map_err(|e| DataError::io(&shown, "create the folder", e))?;
        Ok(Dest::Dir { root: path.to_path_buf(), written: Vec::new(), created_root, done: false })
    }

    fn write(&mut self, name: &str, bytes: &[u8]) -> Result<(), DataError> {
        match self {
            Dest::Zip { path, writer, .. } => {
                let err = |e: std::io::Error| DataError::io(path.display(), "write", e);
                let w = writer.as_mut().ok_or_else(|| err(std::io::Error::other("archive already closed")))?;
                let options = SimpleFileOptions::default().compression_method(CompressionMethod::Stored).large_file(bytes.len() as u64 >= u32::MAX as u64);
                w.start_file(name, options).map_err(|e| err(e.into()))?;
                w.write_all(bytes).map_err(err)
            }
            Dest::Dir { root, written, .. } => {
                let target = root.join(name);
                let shown = target.display();
                let parent = target.parent().unwrap_or(root);
                std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent.display(), "create the folder", e))?;
                let file_name = target.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
                let tmp = parent.join(format!(".{file_name}.tmp"));
                std::fs::write(&tmp, bytes).map_err(|e| DataError::io(&shown, "write", e))?;
                written.push(target.clone());
                std::fs::rename(&tmp, &target).map_err(|e| {
                    let _ = std::fs::remove_file(&tmp);
                    DataError::io(&shown, "write", e)
                })
            }
        }
    }

    fn finish(mut self) -> Result<(), DataError> {
        match &mut self {
            Dest::Zip { path, tmp, writer } => {
                let err = |e: std::io::Error| DataError::io(path.display(), "write", e);
                let w = writer.take().ok_or_else(|| err(std::io::Error::other("archive already closed")))?;
                let closed = (|| {
                    let file = w.finish()?.into_inner().map_err(|e| e.into_error())?;
                    file.sync_all()?;
                    drop(file);
                    std::fs::rename(&tmp, &path)
                })();
                if closed.is_err() {
                    let _ = std::fs::remove_file(&tmp);
                }
                closed.map_err(err)
            }
            Dest::Dir { done, .. } => {
                *done = true;
                Ok(())
            }
        }
    }
}

impl Drop for Dest {
    /// On failure, take back what was written: the temporary zip, or the files written into the
    /// (previously empty) folder.
    fn drop(&mut self) {
        match self {
            Dest::Zip { tmp, writer, .. } => {
                if writer.is_some() {
                    drop(writer.take());
                    let _ = std::fs::remove_file(tmp);
                }
            }
            Dest::Dir { root, written, created_root, done } => {
                if *done {
                    return;
                }
                for f in written.iter() {
                    let _ = std::fs::remove_file(f);
                    if let Some(parent) = f.parent().filter(|p| p != root) {
                        let _ = std::fs::remove_dir(parent);
                    }
                }
                if *created_root {
                    let _ = std::fs::remove_dir(root);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_json_like_python() {
        assert_eq!(archive_name(0), "00000/img00000000.png");
        assert_eq!(archive_name(1234), "00001/img00001234.png");
        let v = serde_json::json!({"labels": [["00000/img00000000.png", 3], ["é", [0.5, 1]]]});
        // json.dumps(...) in Python
        assert_eq!(String::from_utf8(python_json(&v)).unwrap(), r#"{"labels": [["00000/img00000000.png", 3], ["\u00e9", [0.5, 1]]]}"#);
        assert_eq!(String::from_utf8(python_json(&serde_json::json!({"labels": null}))).unwrap(), r#"{"labels": null}"#);
    }
}
