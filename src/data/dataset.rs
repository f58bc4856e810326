//! The training loader: the official `ImageFolderDataset` (`training/dataset.py`). It opens a
//! folder or zip — the layout `stylescope dataset` writes, or any folder/zip of images — and serves
//! uint8 CHW images and float32 labels by index, with the official `max_size` subset and `xflip`
//! (`--mirror`) doubling.
//!
//! Unlike the official loader, which reads only the first image's header and fails later, opening
//! checks every image's header, so a dataset with an odd size or channel count is refused at once
//! with the odd file named. Alpha is composited onto white as `stylescope dataset` does.

use std::collections::HashMap;
use std::path::Path;

use super::files::{self, Store, StoreKind};
use super::pixels::{self, Pixels};
use super::sampler::shuffle;
use super::DataError;
use crate::rng::RandomState;

/// The official `ImageFolderDataset` / `Dataset` constructor arguments.
#[derive(Clone, Debug, Default)]
pub struct DatasetOptions {
    /// Require this resolution (`None`: whatever the images have).
    pub resolution: Option<u32>,
    /// Read the labels of `dataset.json` (`--cond`); without it the label dimension is 0.
    pub use_labels: bool,
    /// Use only this many images, a random subset chosen with `random_seed` (applied before xflip).
    pub max_size: Option<usize>,
    /// Double the dataset with horizontally mirrored copies (`--mirror`).
    pub xflip: bool,
    /// Seed of the `max_size` subset (the official default is 0).
    pub random_seed: u32,
}

/// The official `_get_raw_labels`: integer labels are class indices (one-hot over `max + 1`
/// classes), lists are float vectors used as they are.
#[derive(Clone, Debug, PartialEq)]
pub enum RawLabels {
    None,
    Classes { classes: Vec<usize>, dim: usize },
    Vectors { values: Vec<f32>, dim: usize },
}

impl RawLabels {
    pub fn dim(&self) -> usize {
        match self {
            RawLabels::None => 0,
            RawLabels::Classes { dim, .. } | RawLabels::Vectors { dim, .. } => *dim,
        }
    }

    /// The label of raw image `raw` as the network takes it.
    pub fn get(&self, raw: usize) -> Vec<f32> {
        match self {
            RawLabels::None => Vec::new(),
            RawLabels::Classes { classes, dim } => {
                let mut v = vec![0.0; *dim];
                v[classes[raw]] = 1.0;
                v
            }
            RawLabels::Vectors { values, dim } => values[raw * dim..(raw + 1) * dim].to_vec(),
        }
    }
}

/// One label as numpy reads it: a number (→ int64 class) or a list of numbers (→ float32 row).
fn number(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::Bool(b) => Some(*b as u8 as f64),
        _ => None,
    }
}

/// `_load_raw_labels`: the label of every image (in `names` order) from the `dataset.json` pairs.
/// `shown` names dataset.json in errors.
pub fn raw_labels(map: &HashMap<String, serde_json::Value>, names: &[String], shown: &str) -> Result<RawLabels, DataError> {
    let bad = |detail: String| DataError::Labels { path: shown.to_string(), detail };
    let mut labels = Vec::with_capacity(names.len());
    for name in names {
        labels.push(map.get(name).ok_or_else(|| bad(format!("has no label for {name} (every image needs one)")))?);
    }
    let Some(first) = labels.first() else { return Ok(RawLabels::None) };
    if first.is_array() {
        let dim = first.as_array().map_or(0, Vec::len);
        let mut values = Vec::with_capacity(labels.len() * dim);
        for (name, l) in names.iter().zip(&labels) {
            let row =
                l.as_array().filter(|r| r.len() == dim).ok_or_else(|| bad(format!("the label of {name} is not a list of {dim} numbers like the others")))?;
            for v in row {
                values.push(number(v).ok_or_else(|| bad(format!("the label of {name} holds {v}, not a number")))? as f32);
            }
        }
        return Ok(RawLabels::Vectors { values, dim });
    }
    let mut classes = Vec::with_capacity(labels.len());
    for (name, l) in names.iter().zip(&labels) {
        // numpy casts to int64, truncating toward zero; classes must then be >= 0.
        let v = number(l).ok_or_else(|| bad(format!("the label of {name} is {l}: expected a class number or a list of numbers")))?.trunc();
        if !(0.0..=(u32::MAX as f64)).contains(&v) {
            return Err(bad(format!("the label of {name} is {l}: classes must be 0 or more")));
        }
        classes.push(v as usize);
    }
    let dim = classes.iter().max().map_or(0, |m| m + 1);
    Ok(RawLabels::Classes { classes, dim })
}

/// Reads only the header of `name` → width, height, channels. Tries the first 4 KiB (a PNG or
/// WebP header), then 256 KiB (a JPEG after its EXIF block), then the whole file.
pub(crate) fn probe_member(store: &Store, name: &str) -> Result<(u32, u32, u8), DataError> {
    for limit in [4 << 10, 256 << 10, u64::MAX] {
        let (bytes, complete) = store.read_prefix(name, limit)?;
        match pixels::probe(&bytes, name) {
            Ok(shape) => return Ok(shape),
            Err(detail) if complete => return Err(DataError::Image { path: store.display(name), detail }),
            Err(_) => {}
        }
    }
    Err(DataError::Image { path: store.display(name), detail: "unreadable header".into() })
}

fn describe(w: u32, h: u32, c: u8) -> String {
    format!("{w}x{h} with {c} channel{}", if c == 1 { "" } else { "s" })
}

/// `training/dataset.py`'s `ImageFolderDataset`.
pub struct ImageFolderDataset {
    store: Store,
    name: String,
    /// Every image of the store, sorted as the official loader sorts them.
    fnames: Vec<String>,
    raw_idx: Vec<usize>,
    xflip: Vec<bool>,
    width: u32,
    height: u32,
    channels: u8,
    labels: RawLabels,
}

impl ImageFolderDataset {
    /// Opens a folder or `.zip` and checks that every image has the same size and channels.
    pub fn open(path: &Path, opts: &DatasetOptions) -> Result<Self, DataError> {
        let store = Store::open(path)?;
        let all = store.files()?;
        let mut fnames: Vec<String> = all.iter().filter(|n| files::loader_is_image(n)).cloned().collect();
        files::sort_like_loader(&mut fnames);
        if fnames.is_empty() {
            return Err(DataError::NoImages { path: path.display().to_string(), detail: String::new() });
        }

        let (width, height, channels) = probe_member(&store, &fnames[0])?;
        let first = store.display(&fnames[0]);
        if width != height {
            return Err(DataError::Shape {
                path: first,
                detail: format!("is {width}x{height}: training needs square images (convert with `stylescope dataset --resolution`)"),
            });
        }
        if let Some(r) = opts.resolution.filter(|r| *r != width) {
            return Err(DataError::Shape { path: first, detail: format!("is {width}x{height}, not the required {r}x{r}") });
        }
        for name in &fnames[1..] {
            let (w, h, c) = probe_member(&store, name)?;
            if (w, h, c) != (width, height, channels) {
                return Err(DataError::Shape {
                    path: store.display(name),
                    detail: format!(
                        "is {}, but {first} is {}: all images of a dataset must match (convert with `stylescope dataset --resolution`)",
                        describe(w, h, c),
                        describe(width, height, channels)
                    ),
                });
            }
        }

        let labels = match opts.use_labels {
            false => RawLabels::None,
            true => match files::read_labels(&store, &all)? {
                None => RawLabels::None,
                Some(map) => raw_labels(&map, &fnames, &store.display(files::LABELS_FILE))?,
            },
        };

        let mut raw_idx: Vec<usize> = (0..fnames.len()).collect();
        if let Some(max) = opts.max_size.filter(|m| *m < raw_idx.len()) {
            shuffle(&mut RandomState::new(opts.random_seed), &mut raw_idx);
            raw_idx.truncate(max);
            raw_idx.sort_unstable();
        }
        let mut xflip = vec![false; raw_idx.len()];
        if opts.xflip {
            raw_idx.extend_from_within(..);
            xflip.extend(std::iter::repeat_n(true, xflip.len()));
        }
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(Self { store, name, fnames, raw_idx, xflip, width, height, channels, labels })
    }

    /// The dataset's name: the file or folder name without extension.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn path(&self) -> &Path {
        self.store.path()
    }

    pub fn kind(&self) -> StoreKind {
        self.store.kind()
    }

    /// Number of items: the images (or the `max_size` subset), doubled with xflip.
    pub fn len(&self) -> usize {
        self.raw_idx.len()
    }

    pub fn is_empty(&self) -> bool {
        self.raw_idx.is_empty()
    }

    /// Number of image files (before max_size and xflip).
    pub fn raw_len(&self) -> usize {
        self.fnames.len()
    }

    /// The image files, in the loader's order (raw index → name).
    pub fn image_names(&self) -> &[String] {
        &self.fnames
    }

    /// Width = height of every image.
    pub fn resolution(&self) -> u32 {
        self.width
    }

    pub fn num_channels(&self) -> u8 {
        self.channels
    }

    /// `[channels, height, width]`.
    pub fn image_shape(&self) -> [usize; 3] {
        [self.channels as usize, self.height as usize, self.width as usize]
    }

    pub fn has_labels(&self) -> bool {
        self.labels.dim() != 0
    }

    /// Length of a label vector (0 without labels).
    pub fn label_dim(&self) -> usize {
        self.labels.dim()
    }

    /// Integer class labels (one-hot), as opposed to float vectors.
    pub fn has_onehot_labels(&self) -> bool {
        matches!(self.labels, RawLabels::Classes { .. })
    }

    pub fn raw_labels(&self) -> &RawLabels {
        &self.labels
    }

    /// `get_details(i)`: the raw image index and whether item `i` is mirrored.
    pub fn details(&self, i: usize) -> Option<(usize, bool)> {
        Some((*self.raw_idx.get(i)?, self.xflip[i]))
    }

    /// `get_label(i)`: float32, `label_dim()` long (one-hot for class labels).
    pub fn label(&self, i: usize) -> Result<Vec<f32>, DataError> {
        let (raw, _) = self.details(i).ok_or_else(|| self.out_of_range(i))?;
        Ok(self.labels.get(raw))
    }

    /// Item `i` as uint8 CHW (`image_shape()`); items `len()/2..` are the mirrored copies with xflip.
    pub fn image(&self, i: usize) -> Result<Vec<u8>, DataError> {
        let (raw, flip) = self.details(i).ok_or_else(|| self.out_of_range(i))?;
        Ok(self.raw_image(raw)?.to_chw(flip))
    }

    /// `__getitem__(i)`: the image and its label.
    pub fn item(&self, i: usize) -> Result<(Vec<u8>, Vec<f32>), DataError> {
        Ok((self.image(i)?, self.label(i)?))
    }

    /// Raw image `raw` (HWC), checked against the dataset's shape.
    pub fn raw_image(&self, raw: usize) -> Result<Pixels, DataError> {
        let name = self.fnames.get(raw).ok_or_else(|| self.out_of_range(raw))?;
        let shown = || self.store.display(name);
        let bytes = self.store.read(name)?;
        let img = pixels::decode(&bytes, name).map_err(|detail| DataError::Image { path: shown(), detail })?;
        if (img.width, img.height, img.channels) != (self.width, self.height, self.channels) {
            return Err(DataError::Shape {
                path: shown(),
                detail: format!(
                    "decodes to {}, the dataset is {}",
                    describe(img.width, img.height, img.channels),
                    describe(self.width, self.height, self.channels)
                ),
            });
        }
        Ok(img)
    }

    fn out_of_range(&self, i: usize) -> DataError {
        DataError::Options(format!("{}: item {i} out of range (the dataset has {} items)", self.store.path().display(), self.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(pairs: &[(&str, serde_json::Value)]) -> HashMap<String, serde_json::Value> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn labels_like_get_raw_labels() {
        let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let l = raw_labels(&map(&[("a", json!(2)), ("b", json!(0)), ("c", json!(4.7))]), &names, "d.json").unwrap();
        assert_eq!(l, RawLabels::Classes { classes: vec![2, 0, 4], dim: 5 });
        assert_eq!(l.get(0), vec![0.0, 0.0, 1.0, 0.0, 0.0]);
        let l = raw_labels(&map(&[("a", json!([1, 0.5])), ("b", json!([0, 2])), ("c", json!([3, -1]))]), &names, "d.json").unwrap();
        assert_eq!(l.dim(), 2);
        assert_eq!(l.get(2), vec![3.0, -1.0]);
        let e = raw_labels(&map(&[("a", json!(1))]), &names, "d.json").unwrap_err().to_string();
        assert!(e.starts_with("d.json: ") && e.contains(" b "), "{e}");
        assert!(raw_labels(&map(&[("a", json!(1)), ("b", json!(-1)), ("c", json!(0))]), &names, "d.json").is_err());
        assert!(raw_labels(&map(&[("a", json!([1])), ("b", json!([1, 2])), ("c", json!([0]))]), &names, "d.json").is_err());
        assert!(raw_labels(&map(&[("a", json!(1)), ("b", json!("x")), ("c", json!(0))]), &names, "d.json").is_err());
    }
}
