//! `.safetensors` networks: the official state_dict names and raw values, plus the constructor
//! arguments that rebuild the architecture.
//!
//! The config travels twice so nothing is lost: as JSON in the file's metadata (key
//! `stylescope`) and as a small sidecar `model.json` beside `model.safetensors`. A sidecar in the
//! fixtures' format (`G_init_kwargs` / `D_init_kwargs`, named after the file's stem, e.g.
//! `net.json` for `net.G_ema.safetensors`) is accepted too.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use super::{HostTensor, NetworkFile, Which};
use crate::error::{LoadError, SaveError};

/// The config stored beside the tensors.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredConfig {
    pub format: String,
    pub network: String,
    pub class_name: String,
    pub init_kwargs: serde_json::Value,
    /// What the network is, in a sentence (shown by the explorer); `stylescope convert --description`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

const METADATA_KEY: &str = "stylescope";
const FORMAT: &str = "stylescope-network-v1";

fn bad(path: &Path, detail: impl Into<String>) -> LoadError {
    LoadError::Safetensors { path: path.into(), detail: detail.into() }
}

/// Every tensor of a safetensors file converted to f64 (f32, f64, f16, bf16, integer and bool
/// dtypes), with its shape.
pub fn read_all_f64(path: &Path) -> Result<BTreeMap<String, (Vec<usize>, Vec<f64>)>, LoadError> {
    let bytes = std::fs::read(path).map_err(|error| LoadError::Io { path: path.into(), error })?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(path, e.to_string()))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let data = decode(view.dtype(), view.data()).ok_or_else(|| bad(path, format!("tensor '{name}' has unsupported dtype {:?}", view.dtype())))?;
        out.insert(name, (view.shape().to_vec(), data));
    }
    Ok(out)
}

fn decode(dtype: Dtype, b: &[u8]) -> Option<Vec<f64>> {
    Some(match dtype {
        Dtype::F32 => b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64).collect(),
        Dtype::F64 => b
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect(),
        Dtype::F16 => b.chunks_exact(2).map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])) as f64).collect(),
        Dtype::BF16 => b
            .chunks_exact(2)
            .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16) as f64)
            .collect(),
        Dtype::U8 | Dtype::BOOL => b.iter().map(|&v| v as f64).collect(),
        Dtype::I8 => b.iter().map(|&v| v as i8 as f64).collect(),
        Dtype::I32 => b.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64).collect(),
        Dtype::I64 => b
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f64)
            .collect(),
        _ => return None,
    })
}

/// IEEE half → single.
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // Subnormal: renormalise.
            let mut e = 127 - 15 + 1;
            let mut f = f;
            while f & 0x400 == 0 {
                f <<= 1;
                e -= 1;
            }
            sign | ((e as u32) << 23) | ((f & 0x3ff) << 13)
        }
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 127 - 15) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

/// A training snapshot's metadata: every network's config and the training state (opaque
/// here). Its tensors are stored under `{network}/` prefixes (`G/`, `D/`, `G_ema/`, and the
/// optimiser's `opt_G/...`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub format: String,
    pub networks: BTreeMap<String, StoredConfig>,
    pub training: serde_json::Value,
}

const SNAPSHOT_KEY: &str = "stylescope-snapshot";
const SNAPSHOT_FORMAT: &str = "stylescope-snapshot-v1";

fn snapshot_meta(path: &Path, bytes: &[u8]) -> Result<Option<SnapshotMeta>, LoadError> {
    let Ok((_, meta)) = SafeTensors::read_metadata(bytes) else { return Ok(None) };
    match meta.metadata().as_ref().and_then(|m| m.get(SNAPSHOT_KEY)) {
        Some(json) => serde_json::from_str(json).map(Some).map_err(|e| bad(path, format!("metadata '{SNAPSHOT_KEY}' is not a valid snapshot: {e}"))),
        None => Ok(None),
    }
}

/// Every tensor of a file (f32) and, for a training snapshot, its metadata.
pub fn read_raw(path: &Path) -> Result<(BTreeMap<String, HostTensor>, Option<SnapshotMeta>), LoadError> {
    let bytes = std::fs::read(path).map_err(|error| LoadError::Io { path: path.into(), error })?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(path, e.to_string()))?;
    let mut tensors = BTreeMap::new();
    for (name, view) in st.tensors() {
        let data = decode(view.dtype(), view.data()).ok_or_else(|| bad(path, format!("tensor '{name}' has unsupported dtype {:?}", view.dtype())))?;
        tensors.insert(name, HostTensor { shape: view.shape().to_vec(), data: data.into_iter().map(|v| v as f32).collect() });
    }
    Ok((tensors, snapshot_meta(path, &bytes)?))
}

/// Writes a training snapshot atomically: `tensors` (already prefixed) plus the metadata.
pub fn write_snapshot(path: &Path, tensors: &BTreeMap<String, HostTensor>, networks: BTreeMap<String, StoredConfig>, training: serde_json::Value) -> Result<(), SaveError> {
    let meta = SnapshotMeta { format: SNAPSHOT_FORMAT.into(), networks, training };
    let json = serde_json::to_string(&meta).map_err(|e| SaveError::Encode { path: path.into(), detail: e.to_string() })?;
    let bytes = encode(path, tensors, [(SNAPSHOT_KEY.to_string(), json)].into())?;
    write_atomic(path, &bytes)
}

/// A network's config in a snapshot.
pub fn stored_config(net: &NetworkFile) -> StoredConfig {
    StoredConfig { format: FORMAT.into(), network: net.which.key().into(), class_name: net.class_name.clone(), init_kwargs: net.init_kwargs.clone(), description: net.description.clone() }
}

/// Writes `bytes` to `path` through a temporary file in the same folder, flushed to disk and
/// renamed over the target: a reader sees the old file or the whole new one, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SaveError> {
    use std::io::Write;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    let io = |error| SaveError::Io { path: path.into(), error };
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

fn encode(path: &Path, tensors: &BTreeMap<String, HostTensor>, meta: HashMap<String, String>) -> Result<Vec<u8>, SaveError> {
    let bufs: Vec<(String, Vec<usize>, Vec<u8>)> = tensors.iter().map(|(k, t)| (k.clone(), t.shape.clone(), t.data.iter().flat_map(|v| v.to_le_bytes()).collect())).collect();
    let mut views = Vec::with_capacity(bufs.len());
    for (k, shape, data) in &bufs {
        let view = safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), data).map_err(|e| SaveError::Encode { path: path.into(), detail: format!("{k}: {e}") })?;
        views.push((k.clone(), view));
    }
    safetensors::serialize(views, Some(meta)).map_err(|e| SaveError::Encode { path: path.into(), detail: e.to_string() })
}

fn find_config(path: &Path, bytes: &[u8], which: Which) -> Result<StoredConfig, LoadError> {
    if let Ok((_, meta)) = SafeTensors::read_metadata(bytes) {
        if let Some(json) = meta.metadata().as_ref().and_then(|m| m.get(METADATA_KEY)) {
            return serde_json::from_str(json).map_err(|e| bad(path, format!("metadata '{METADATA_KEY}' is not a valid config: {e}")));
        }
    }
    let mut candidates: Vec<PathBuf> = vec![path.with_extension("json")];
    // `net.G_ema.safetensors` → `net.json` (the fixtures' layout).
    if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
        if let Some((base, _)) = stem.rsplit_once('.') {
            candidates.push(path.with_file_name(format!("{base}.json")));
        }
    }
    for cand in &candidates {
        let Ok(text) = std::fs::read_to_string(cand) else { continue };
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(cand, format!("config is not JSON: {e}")))?;
        if let Ok(cfg) = serde_json::from_value::<StoredConfig>(value.clone()) {
            return Ok(cfg);
        }
        let (kw_key, class_key) = match which {
            Which::D => ("D_init_kwargs", "D_class"),
            _ => ("G_init_kwargs", "G_class"),
        };
        if let Some(kwargs) = value.get(kw_key) {
            let class_name = value.get(class_key).and_then(|v| v.as_str()).unwrap_or("").rsplit('.').next().unwrap_or("").to_string();
            return Ok(StoredConfig { format: FORMAT.into(), network: which.key().into(), class_name, init_kwargs: kwargs.clone(), description: None });
        }
    }
    Err(bad(
        path,
        format!(
            "no architecture config: neither '{METADATA_KEY}' metadata nor a sidecar {} (write one with `stylescope convert snapshot.pkl {}`)",
            candidates.first().map(|p| p.display().to_string()).unwrap_or_default(),
            path.display()
        ),
    ))
}

/// Reads a network from `.safetensors` (+ config).
pub fn read(path: &Path, which: Which) -> Result<NetworkFile, LoadError> {
    let bytes = std::fs::read(path).map_err(|error| LoadError::Io { path: path.into(), error })?;
    if let Some(meta) = snapshot_meta(path, &bytes)? {
        return read_from_snapshot(path, &bytes, meta, which);
    }
    let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(path, e.to_string()))?;
    let cfg = find_config(path, &bytes, which)?;
    let mut tensors = BTreeMap::new();
    for (name, view) in st.tensors() {
        let data = decode(view.dtype(), view.data()).ok_or_else(|| bad(path, format!("tensor '{name}' has unsupported dtype {:?}", view.dtype())))?;
        tensors.insert(name, HostTensor { shape: view.shape().to_vec(), data: data.into_iter().map(|v| v as f32).collect() });
    }
    let which = match cfg.network.as_str() {
        "D" => Which::D,
        "G" => Which::G,
        _ => Which::GEma,
    };
    Ok(NetworkFile { path: path.into(), which, class_name: cfg.class_name, init_kwargs: cfg.init_kwargs, tensors, description: cfg.description })
}

/// One network (`which`) of a training snapshot.
fn read_from_snapshot(path: &Path, bytes: &[u8], meta: SnapshotMeta, which: Which) -> Result<NetworkFile, LoadError> {
    let cfg = meta.networks.get(which.key()).cloned().ok_or_else(|| LoadError::MissingNetwork {
        path: path.into(),
        wanted: which.key().into(),
        available: meta.networks.keys().cloned().collect::<Vec<_>>().join(", "),
    })?;
    let st = SafeTensors::deserialize(bytes).map_err(|e| bad(path, e.to_string()))?;
    let prefix = format!("{}/", which.key());
    let mut tensors = BTreeMap::new();
    for (name, view) in st.tensors() {
        let Some(key) = name.strip_prefix(&prefix) else { continue };
        let data = decode(view.dtype(), view.data()).ok_or_else(|| bad(path, format!("tensor '{name}' has unsupported dtype {:?}", view.dtype())))?;
        tensors.insert(key.to_string(), HostTensor { shape: view.shape().to_vec(), data: data.into_iter().map(|v| v as f32).collect() });
    }
    Ok(NetworkFile { path: path.into(), which, class_name: cfg.class_name, init_kwargs: cfg.init_kwargs, tensors, description: cfg.description })
}

/// Writes `net` as `path` (float32, official names) and the sidecar config beside it.
pub fn write(net: &NetworkFile, path: &Path) -> Result<(), SaveError> {
    let cfg = stored_config(net);
    let json = serde_json::to_string_pretty(&cfg).map_err(|e| SaveError::Encode { path: path.into(), detail: e.to_string() })?;
    let meta: HashMap<String, String> = [(METADATA_KEY.to_string(), json.clone()), ("class_name".to_string(), net.class_name.clone())].into();
    write_atomic(path, &encode(path, &net.tensors, meta)?)?;
    write_atomic(&path.with_extension("json"), json.as_bytes())?;
    Ok(())
}
