//! The files of a dataset source, as the official scripts see them: a folder walked recursively
//! or a zip archive, names relative with `/`, the two sort orders (`dataset_tool.py` sorts `Path`s,
//! `training/dataset.py` sorts strings), which names count as images (Pillow's extension list),
//! and the `dataset.json` labels file.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use zip::ZipArchive;

use super::DataError;

/// The extensions Pillow registers (`PIL.Image.init(); PIL.Image.EXTENSION`, Pillow 13): what
/// both official scripts take for an image file. We decode PNG, JPEG and WebP; any other of these
/// is an image we cannot read.
pub const PIL_EXTENSIONS: &[&str] = &[
    "apng", "avif", "avifs", "blp", "bmp", "bufr", "bw", "cur", "dcx", "dds", "dib", "emf", "eps", "fit", "fits", "flc", "fli", "ftc", "ftu", "gbr", "gif",
    "grib", "h5", "hdf", "icb", "icns", "ico", "iim", "im", "j2c", "j2k", "jfif", "jp2", "jpc", "jpe", "jpeg", "jpf", "jpg", "jpx", "mpeg", "mpg", "mpo",
    "msp", "palm", "pbm", "pcd", "pcx", "pdf", "pfm", "pgm", "png", "pnm", "ppm", "ps", "psd", "pxr", "qoi", "ras", "rgb", "rgba", "sgi", "tga", "tif", "tiff",
    "vda", "vst", "webp", "wmf", "xbm", "xpm",
];

/// The labels file at the root of a dataset.
pub const LABELS_FILE: &str = "dataset.json";

fn is_pil_ext(ext: &str) -> bool {
    let ext = ext.to_ascii_lowercase();
    PIL_EXTENSIONS.contains(&ext.as_str())
}

/// `dataset_tool.py`'s `is_image_ext`: the text after the last `.` of the name.
pub fn tool_is_image(name: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(_, ext)| is_pil_ext(ext))
}

/// `training/dataset.py`'s test: `os.path.splitext(name)[1]`, which ignores the leading dots of
/// the last component (`.png` has no extension).
pub fn loader_is_image(name: &str) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name);
    match base.rfind('.') {
        Some(dot) if base[..dot].chars().any(|c| c != '.') => is_pil_ext(&base[dot + 1..]),
        _ => false,
    }
}

/// `dataset_tool.py` order: `sorted(Path(source).rglob('*'))`, which compares paths component by
/// component (`a/b.png` before `a-c.png`, unlike a plain string sort).
pub fn sort_like_tool(names: &mut [String]) {
    names.sort_by(|a, b| a.split('/').cmp(b.split('/')));
}

/// `training/dataset.py` order: `sorted()` of the relative path strings.
pub fn sort_like_loader(names: &mut [String]) {
    names.sort();
}

/// Is the destination name a zip archive (`OUT.zip`), as opposed to a folder?
pub fn is_zip_name(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("zip"))
}

/// A folder or a zip archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Folder,
    Zip,
}

/// An opened dataset source. Reading is thread-safe (a zip is read under a lock; decoding the
/// bytes is up to the caller).
pub struct Store {
    path: PathBuf,
    zip: Option<Mutex<ZipArchive<BufReader<File>>>>,
}

impl Store {
    /// Opens a folder or a `.zip`; anything else is an error naming it.
    pub fn open(path: &Path) -> Result<Self, DataError> {
        let shown = path.display();
        let meta = std::fs::metadata(path).map_err(|e| DataError::io(&shown, "open it", e))?;
        if meta.is_dir() {
            return Ok(Self { path: path.to_path_buf(), zip: None });
        }
        if !is_zip_name(path) {
            return Err(DataError::NotADataset { path: shown.to_string() });
        }
        let file = File::open(path).map_err(|e| DataError::io(&shown, "open it", e))?;
        let archive = ZipArchive::new(BufReader::new(file)).map_err(|e| DataError::Zip { path: shown.to_string(), detail: e.to_string() })?;
        Ok(Self { path: path.to_path_buf(), zip: Some(Mutex::new(archive)) })
    }

    pub fn kind(&self) -> StoreKind {
        if self.zip.is_some() {
            StoreKind::Zip
        } else {
            StoreKind::Folder
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How a member is named in messages: `folder/sub/a.png` or `data.zip/sub/a.png`.
    pub fn display(&self, name: &str) -> String {
        format!("{}/{}", self.path.display().to_string().trim_end_matches('/'), name)
    }

    /// Every file (not folder), relative with `/`, unsorted. A folder is walked without entering
    /// symlinked folders (as `os.walk` and `Path.rglob` do); symlinked files count.
    pub fn files(&self) -> Result<Vec<String>, DataError> {
        match &self.zip {
            Some(zip) => {
                let archive = zip.lock().map_err(|_| self.poisoned())?;
                Ok(archive.file_names().filter(|n| !n.ends_with('/')).map(str::to_owned).collect())
            }
            None => {
                let mut out = Vec::new();
                walk(&self.path, "", &mut out)?;
                Ok(out)
            }
        }
    }

    /// The whole content of a member.
    pub fn read(&self, name: &str) -> Result<Vec<u8>, DataError> {
        Ok(self.read_prefix(name, u64::MAX)?.0)
    }

    /// Up to `limit` bytes of a member, and whether that is all of it.
    pub fn read_prefix(&self, name: &str, limit: u64) -> Result<(Vec<u8>, bool), DataError> {
        let shown = self.display(name);
        let read_err = |e: std::io::Error| DataError::io(&shown, "read it", e);
        let mut buf = Vec::new();
        match &self.zip {
            Some(zip) => {
                let mut archive = zip.lock().map_err(|_| self.poisoned())?;
                let mut f = archive.by_name(name).map_err(|e| DataError::Zip { path: shown.clone(), detail: e.to_string() })?;
                let size = f.size();
                f.by_ref().take(limit).read_to_end(&mut buf).map_err(read_err)?;
                let complete = (buf.len() as u64) >= size;
                Ok((buf, complete))
            }
            None => {
                let f = File::open(self.path.join(name)).map_err(|e| DataError::io(&shown, "open it", e))?;
                let mut take = f.take(limit);
                take.read_to_end(&mut buf).map_err(read_err)?;
                let complete = (buf.len() as u64) < limit || take.into_inner().read(&mut [0u8]).map_err(read_err)? == 0;
                Ok((buf, complete))
            }
        }
    }

    fn poisoned(&self) -> DataError {
        DataError::Zip { path: self.path.display().to_string(), detail: "a reader thread panicked".into() }
    }
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<(), DataError> {
    let shown = dir.display();
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::io(&shown, "list the folder", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| DataError::io(&shown, "list the folder", e))?;
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        let ty = entry.file_type().map_err(|e| DataError::io(entry.path().display(), "read it", e))?;
        if ty.is_dir() {
            walk(&entry.path(), &format!("{name}/"), out)?;
        } else if ty.is_file() || (ty.is_symlink() && entry.path().is_file()) {
            out.push(name);
        }
    }
    Ok(())
}

/// The pairs of a `dataset.json` (`{"labels": [["name", label], ...]}`), or `None` for
/// `{"labels": null}`. Later pairs win over earlier ones with the same name (Python's `dict`).
pub fn parse_labels(bytes: &[u8], shown: &str) -> Result<Option<HashMap<String, serde_json::Value>>, DataError> {
    let bad = |detail: String| DataError::Labels { path: shown.to_string(), detail };
    let root: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    let labels = root.get("labels").ok_or_else(|| bad("has no \"labels\" entry".into()))?;
    if labels.is_null() {
        return Ok(None);
    }
    let list = labels.as_array().ok_or_else(|| bad("\"labels\" must be null or a list of [name, label] pairs".into()))?;
    let mut out = HashMap::with_capacity(list.len());
    for (i, pair) in list.iter().enumerate() {
        match pair.as_array().map(Vec::as_slice) {
            Some([serde_json::Value::String(name), label]) => {
                out.insert(name.clone(), label.clone());
            }
            _ => return Err(bad(format!("label {i} is not a [name, label] pair: {pair}"))),
        }
    }
    Ok(Some(out))
}

/// Reads and parses the store's `dataset.json`, if it has one at its root.
pub fn read_labels(store: &Store, files: &[String]) -> Result<Option<HashMap<String, serde_json::Value>>, DataError> {
    if !files.iter().any(|f| f == LABELS_FILE) {
        return Ok(None);
    }
    let bytes = store.read(LABELS_FILE)?;
    parse_labels(&bytes, &store.display(LABELS_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_like_the_official_scripts() {
        assert!(tool_is_image("a/b.PNG") && tool_is_image("x.jpeg") && tool_is_image("x.webp") && tool_is_image("x.bmp"));
        assert!(!tool_is_image("notes.txt") && !tool_is_image("dataset.json") && !tool_is_image("README"));
        assert!(!tool_is_image("dir.png/README"));
        // splitext ignores leading dots: '.png' has no extension for the loader, but the tool takes it.
        assert!(tool_is_image(".png") && !loader_is_image(".png") && !loader_is_image("a/..png"));
        assert!(loader_is_image("00000/img00000000.png") && loader_is_image("a/.x.png") && !loader_is_image("a.png/b"));
    }

    #[test]
    fn path_order_differs_from_string_order() {
        let mut v: Vec<String> = ["a-c.png", "a/b.png", "B.png", "a.png"].map(String::from).to_vec();
        sort_like_tool(&mut v);
        assert_eq!(v, ["B.png", "a/b.png", "a-c.png", "a.png"]);
        sort_like_loader(&mut v);
        assert_eq!(v, ["B.png", "a-c.png", "a.png", "a/b.png"]);
    }

    #[test]
    fn labels_json() {
        let m = parse_labels(br#"{"labels": [["a.png", 1], ["b.png", [0.5, 2]], ["a.png", 3]]}"#, "d.json").unwrap().unwrap();
        assert_eq!(m["a.png"], serde_json::json!(3));
        assert!(parse_labels(br#"{"labels": null}"#, "d.json").unwrap().is_none());
        let e = parse_labels(br#"{"labels": [["a.png"]]}"#, "d.json").unwrap_err().to_string();
        assert!(e.starts_with("d.json: "), "{e}");
        assert!(parse_labels(b"{", "d.json").is_err());
    }
}
