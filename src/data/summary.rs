//! What a folder or zip holds, before anything is trained on it: how many images, their sizes and
//! channels, the labels, the files that will be skipped and why, and what stops training from
//! using it as it is. Reads only file headers, so it is quick enough for a GUI to call when the
//! user picks a dataset.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::dataset::{probe_member, raw_labels, RawLabels};
use super::files::{self, Store, StoreKind};
use super::DataError;

/// A file that is not used, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub file: String,
    pub reason: String,
}

/// How many images share one size and channel count, and the first of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeCount {
    pub width: u32,
    pub height: u32,
    pub channels: u8,
    pub count: usize,
    pub example: String,
}

/// The labels of `dataset.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelSummary {
    /// No dataset.json, or `"labels": null`.
    None,
    /// Integer classes: one-hot vectors over `classes` classes.
    Classes { classes: usize },
    /// Float vectors of `dim` numbers.
    Vectors { dim: usize },
    /// A dataset.json that the loader would refuse (the message says why).
    Invalid(String),
}

#[derive(Clone, Debug)]
pub struct DatasetSummary {
    pub path: PathBuf,
    pub kind: StoreKind,
    /// Images whose header could be read.
    pub images: usize,
    /// Sizes and channels, most common first.
    pub shapes: Vec<ShapeCount>,
    pub labels: LabelSummary,
    /// Files the loader ignores (not images) and images it cannot read (`stylescope dataset` skips
    /// those too, with a warning).
    pub skipped: Vec<Skipped>,
    /// What keeps training from using the dataset as it is; empty when it can.
    pub problems: Vec<String>,
}

impl DatasetSummary {
    /// Training can open this dataset as it is.
    pub fn ready(&self) -> bool {
        self.problems.is_empty()
    }

    /// The resolution when every image has the same square size.
    pub fn resolution(&self) -> Option<u32> {
        match self.shapes.as_slice() {
            [s] if s.width == s.height => Some(s.width),
            _ => None,
        }
    }
}

impl fmt::Display for DatasetSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            StoreKind::Folder => "folder",
            StoreKind::Zip => "zip",
        };
        writeln!(f, "{} ({kind}): {} images", self.path.display(), self.images)?;
        for s in &self.shapes {
            writeln!(f, "  {} x {}x{}x{} (e.g. {})", s.count, s.width, s.height, s.channels, s.example)?;
        }
        match &self.labels {
            LabelSummary::None => writeln!(f, "  labels: none")?,
            LabelSummary::Classes { classes } => writeln!(f, "  labels: {classes} classes")?,
            LabelSummary::Vectors { dim } => writeln!(f, "  labels: vectors of {dim}")?,
            LabelSummary::Invalid(why) => writeln!(f, "  labels: unusable ({why})")?,
        }
        for s in &self.skipped {
            writeln!(f, "  skipped {}: {}", s.file, s.reason)?;
        }
        for p in &self.problems {
            writeln!(f, "  problem: {p}")?;
        }
        Ok(())
    }
}

/// Summarises the dataset at `path` as the training loader would see it. Fails only when `path`
/// itself cannot be read (missing, not a folder or zip, a broken zip).
pub fn summarize(path: &Path) -> Result<DatasetSummary, DataError> {
    let store = Store::open(path)?;
    let all = store.files()?;
    let mut names = all.clone();
    files::sort_like_loader(&mut names);

    let mut skipped = Vec::new();
    let mut readable = Vec::new();
    let mut shapes: BTreeMap<(u32, u32, u8), ShapeCount> = BTreeMap::new();
    for name in &names {
        if !files::loader_is_image(name) {
            if name != files::LABELS_FILE {
                skipped.push(Skipped { file: store.display(name), reason: "not an image file (ignored)".into() });
            }
            continue;
        }
        match probe_member(&store, name) {
            Ok((width, height, channels)) => {
                readable.push(name.clone());
                shapes
                    .entry((width, height, channels))
                    .or_insert_with(|| ShapeCount { width, height, channels, count: 0, example: store.display(name) })
                    .count += 1;
            }
            Err(e) => skipped.push(Skipped { file: store.display(name), reason: reason_of(&e) }),
        }
    }
    let mut shapes: Vec<ShapeCount> = shapes.into_values().collect();
    shapes.sort_by_key(|s| std::cmp::Reverse(s.count));

    let labels = match files::read_labels(&store, &all) {
        Err(e) => LabelSummary::Invalid(e.to_string()),
        Ok(None) => LabelSummary::None,
        Ok(Some(map)) => match raw_labels(&map, &readable, &store.display(files::LABELS_FILE)) {
            Err(e) => LabelSummary::Invalid(e.to_string()),
            Ok(RawLabels::None) => LabelSummary::None,
            Ok(RawLabels::Classes { dim, .. }) => LabelSummary::Classes { classes: dim },
            Ok(RawLabels::Vectors { dim, .. }) => LabelSummary::Vectors { dim },
        },
    };

    let mut problems = Vec::new();
    let unreadable = skipped.iter().filter(|s| !s.reason.starts_with("not an image")).count();
    if readable.is_empty() {
        problems.push("no readable PNG, JPEG or WebP images".to_string());
    }
    if unreadable > 0 {
        problems.push(format!("{unreadable} image file(s) cannot be read; `stylescope dataset` skips them, training refuses them"));
    }
    if shapes.len() > 1 {
        problems.push(format!("images differ in size or channels ({} kinds): convert with `stylescope dataset --resolution WxH`", shapes.len()));
    }
    if let [s] = shapes.as_slice() {
        if s.width != s.height {
            problems
                .push(format!("images are {}x{}: training needs square images (`stylescope dataset --transform center-crop --resolution`)", s.width, s.height));
        } else if !s.width.is_power_of_two() {
            problems.push(format!("{}x{} is not a power of two: the networks need 2^n resolutions", s.width, s.height));
        }
    }
    if let LabelSummary::Invalid(why) = &labels {
        problems.push(format!("labels: {why}"));
    }
    Ok(DatasetSummary { path: path.to_path_buf(), kind: store.kind(), images: readable.len(), shapes, labels, skipped, problems })
}

/// The reason part of an error about one file (its message without the leading path).
fn reason_of(e: &DataError) -> String {
    match e {
        DataError::Image { detail, .. } => format!("cannot decode: {detail}"),
        DataError::Io { action, error, .. } => format!("cannot {action}: {error}"),
        other => other.to_string(),
    }
}
