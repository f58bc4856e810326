//! TensorFlow-era StyleGAN pickles (NVlabs/stylegan, stylegan2, stylegan2-ada): a tuple
//! `(G, D, Gs)` of `dnnlib.tflib.network.Network` states, read by the same code-free pickle
//! machine as the PyTorch snapshots. A state holds `static_kwargs`, sub-networks (`components`),
//! the network's own `variables` as numpy values and the source of the module that built it,
//! which is never looked at. This room turns those states into [`NetworkFile`]s:
//! StyleGAN2 / StyleGAN2-ADA onto the official PyTorch names exactly as the official `legacy.py`
//! converts them ([`sg2`]), StyleGAN v1 (`G_style`, `D_basic`) into the `model::sg1` family
//! under its TF variable names ([`sg1`]).

pub mod sg1;
pub mod sg2;

use std::collections::BTreeMap;
use std::path::Path;

use super::pickle::{ArrayData, Value};
use super::snapshot::{to_json, HostTensor};
use super::{NetworkFile, Which};
use crate::error::LoadError;

/// The class every network of a TF pickle is an instance of.
pub const TF_NETWORK_CLASS: &str = "dnnlib.tflib.network.Network";

/// One `dnnlib.tflib.network.Network` state with its components' variables folded in.
#[derive(Clone, Debug)]
pub struct TfNetwork {
    /// `G`, `D`, `Gs`.
    pub name: String,
    /// The state format: 3 (StyleGAN), 4 (StyleGAN2), 5 (StyleGAN2-ADA).
    pub version: i64,
    /// `G_style`, `G_main`, `D_basic`, `D_stylegan2`, `D_main`, ...
    pub build_func_name: String,
    /// The constructor keyword arguments, as JSON.
    pub static_kwargs: serde_json::Value,
    /// Component key (`mapping`, `synthesis`) → its `build_func_name`.
    pub components: BTreeMap<String, String>,
    /// Own variables by local name, components' under `<component key>/` (`synthesis/4x4/Conv/weight`),
    /// as `legacy.py` collects them; 0-d variables have shape `[]`.
    pub vars: BTreeMap<String, HostTensor>,
}

/// Which TF-era family a pickle holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TfFormat {
    /// NVlabs/stylegan (`G_style`, `D_basic`).
    StyleGan1,
    /// NVlabs/stylegan2 (`G_main` + `G_synthesis_stylegan2`, `D_stylegan2`).
    StyleGan2,
    /// NVlabs/stylegan2-ada (`G_main` + `G_synthesis`, `D_main`).
    StyleGan2Ada,
}

impl TfFormat {
    pub fn describe(self) -> &'static str {
        match self {
            Self::StyleGan1 => "StyleGAN (TensorFlow)",
            Self::StyleGan2 => "StyleGAN2 (TensorFlow)",
            Self::StyleGan2Ada => "StyleGAN2-ADA (TensorFlow)",
        }
    }
}

/// Whether a decoded pickle is a TF-era `(G, D, Gs)` tuple.
pub fn is_tf_pickle(value: &Value) -> bool {
    match value {
        Value::Tuple(items) => {
            !items.is_empty() && items.iter().all(|v| matches!(v, Value::Object { class_name, .. } if class_name == TF_NETWORK_CLASS))
        }
        _ => false,
    }
}

impl TfNetwork {
    /// Reads one Network state (recursively through its components).
    pub fn from_value(value: &Value) -> Result<Self, String> {
        let state = match value {
            Value::Object { class_name, state } if class_name == TF_NETWORK_CLASS => state.as_ref(),
            other => return Err(format!("expected a dnnlib.tflib.network.Network, found {}", other.type_name())),
        };
        if state.as_dict().is_none() {
            return Err("a Network without its state".to_string());
        }
        let name = state.get("name").and_then(Value::as_str).ok_or_else(|| "a Network without a name".to_string())?.to_string();
        let version = match state.get("version") {
            Some(Value::Int(v)) => *v,
            _ => return Err(format!("Network '{name}' has no state version")),
        };
        if !(2..=5).contains(&version) {
            return Err(format!("Network '{name}' has state version {version} (known: 2 to 5)"));
        }
        let build_func_name = state.get("build_func_name").and_then(Value::as_str).unwrap_or_default().to_string();
        let static_kwargs = match state.get("static_kwargs") {
            Some(v @ Value::Dict(_)) => to_json(v),
            Some(Value::None) | None => serde_json::json!({}),
            Some(other) => return Err(format!("Network '{name}': static_kwargs is {}", other.type_name())),
        };
        let mut vars = BTreeMap::new();
        collect_vars(&name, state, "", &mut vars, 0)?;
        let mut components = BTreeMap::new();
        if let Some(Value::Dict(entries)) = state.get("components") {
            for (key, comp) in entries {
                let key = key.as_str().ok_or_else(|| format!("Network '{name}': a component key is not a str"))?;
                let func = match comp {
                    Value::Object { state, .. } => state.get("build_func_name").and_then(Value::as_str).unwrap_or_default(),
                    _ => "",
                };
                components.insert(key.to_string(), func.to_string());
            }
        }
        Ok(Self { name, version, build_func_name, static_kwargs, components, vars })
    }

    /// A one-line reason naming this network (the caller adds the file name).
    pub fn fail(&self, detail: impl std::fmt::Display) -> String {
        format!("{}: {detail}", self.name)
    }

    /// The variable `name` with `rank` dimensions.
    pub fn var(&self, name: &str, rank: usize) -> Result<&HostTensor, String> {
        let t = self.vars.get(name).ok_or_else(|| self.fail(format!("variable '{name}' is missing")))?;
        if t.shape.len() != rank {
            return Err(self.fail(format!("variable '{name}' has shape {:?}, expected {rank} dimensions", t.shape)));
        }
        Ok(t)
    }

    /// A static kwarg as JSON (absent → `None`).
    pub fn kwarg(&self, key: &str) -> Option<&serde_json::Value> {
        self.static_kwargs.get(key).filter(|v| !v.is_null())
    }

    pub fn kwarg_usize(&self, key: &str, default: usize) -> usize {
        self.kwarg(key).and_then(serde_json::Value::as_u64).map_or(default, |v| v as usize)
    }

    /// Which family built it: version, build functions, variable names.
    pub fn format(&self) -> Result<TfFormat, String> {
        let func = self.build_func_name.as_str();
        let synthesis = self.components.get("synthesis").map(String::as_str).unwrap_or_default();
        let v1_vars = self.vars.keys().any(|k| k.contains("/StyleMod/") || k.starts_with("FromRGB_lod"));
        Ok(match func {
            "G_style" => TfFormat::StyleGan1,
            "D_basic" => TfFormat::StyleGan1,
            "D_stylegan2" => TfFormat::StyleGan2,
            "D_main" => TfFormat::StyleGan2Ada,
            "G_main" if synthesis == "G_synthesis_stylegan2" => TfFormat::StyleGan2,
            "G_main" if synthesis == "G_synthesis" && !v1_vars => TfFormat::StyleGan2Ada,
            _ if v1_vars && self.version <= 3 => TfFormat::StyleGan1,
            _ => {
                return Err(format!(
                    "{}: unknown TensorFlow network '{func}' (synthesis '{synthesis}', state version {}); \
                     known: StyleGAN G_style/D_basic, StyleGAN2 G_main/D_stylegan2, StyleGAN2-ADA G_main/D_main",
                    self.name, self.version
                ))
            }
        })
    }
}

/// Folds a state's `variables` (and its components', recursively) into `out` under `prefix`.
fn collect_vars(net: &str, state: &Value, prefix: &str, out: &mut BTreeMap<String, HostTensor>, depth: usize) -> Result<(), String> {
    if depth > 8 {
        return Err(format!("Network '{net}': components nested too deeply"));
    }
    match state.get("variables") {
        Some(Value::List(items) | Value::Tuple(items)) => {
            for item in items {
                let (name, value) = match item {
                    Value::Tuple(pair) | Value::List(pair) if pair.len() == 2 => (&pair[0], &pair[1]),
                    _ => return Err(format!("Network '{net}': a variable is not a (name, value) pair")),
                };
                let name = name.as_str().ok_or_else(|| format!("Network '{net}': a variable name is not a str"))?;
                let tensor = host_tensor(value).ok_or_else(|| {
                    format!("Network '{net}': variable '{prefix}{name}' is {}, not a number array", value.type_name())
                })?;
                out.insert(format!("{prefix}{name}"), tensor);
            }
        }
        Some(Value::None) | None => {}
        Some(other) => return Err(format!("Network '{net}': variables is {}", other.type_name())),
    }
    if let Some(Value::Dict(entries)) = state.get("components") {
        for (key, comp) in entries {
            let key = key.as_str().unwrap_or_default();
            match comp {
                Value::Object { class_name, state } if class_name == TF_NETWORK_CLASS => {
                    collect_vars(net, state, &format!("{prefix}{key}/"), out, depth + 1)?
                }
                other => return Err(format!("Network '{net}': component '{key}' is {}", other.type_name())),
            }
        }
    }
    Ok(())
}

/// A numpy array or numpy scalar as f32.
fn host_tensor(value: &Value) -> Option<HostTensor> {
    match value {
        Value::Array(a) => {
            let data: Vec<f32> = match &a.data {
                ArrayData::Float(v) => v.iter().map(|&x| x as f32).collect(),
                ArrayData::Int(v) => v.iter().map(|&x| x as f32).collect(),
                ArrayData::Bool(v) => v.iter().map(|&x| f32::from(u8::from(x))).collect(),
            };
            Some(HostTensor { shape: a.shape.clone(), data })
        }
        Value::Float(f) => Some(HostTensor { shape: vec![], data: vec![*f as f32] }),
        Value::Int(i) => Some(HostTensor { shape: vec![], data: vec![*i as f32] }),
        _ => None,
    }
}

/// The three networks of a TF pickle, in file order `(G, D, Gs)`.
pub fn networks(value: &Value) -> Result<Vec<TfNetwork>, String> {
    let Value::Tuple(items) = value else { return Err("not a TensorFlow (G, D, Gs) tuple".into()) };
    if items.len() != 3 {
        return Err(format!("a TensorFlow pickle holds (G, D, Gs); this tuple has {} networks", items.len()));
    }
    items.iter().map(TfNetwork::from_value).collect()
}

/// `which` of a TF pickle as a [`NetworkFile`]: `G_ema` is `Gs`, `G` the raw training generator.
pub fn network_file(path: &Path, value: &Value, which: Which) -> Result<NetworkFile, LoadError> {
    let unsupported = |detail: String| LoadError::Unsupported { path: path.into(), detail };
    let nets = networks(value).map_err(unsupported)?;
    let index = match which {
        Which::G => 0,
        Which::D => 1,
        Which::GEma => 2,
    };
    let net = &nets[index];
    let format = net.format().map_err(unsupported)?;
    let converted = match (format, which) {
        (TfFormat::StyleGan1, Which::D) => sg1::discriminator(net),
        (TfFormat::StyleGan1, _) => sg1::generator(net),
        (_, Which::D) => sg2::discriminator(net, format),
        _ => sg2::generator(net, format),
    }
    .map_err(unsupported)?;
    Ok(NetworkFile {
        path: path.into(),
        which,
        class_name: converted.class_name,
        init_kwargs: converted.init_kwargs,
        tensors: converted.tensors,
        description: None,
    })
}

/// A network converted from its TF state.
pub struct Converted {
    pub class_name: String,
    pub init_kwargs: serde_json::Value,
    pub tensors: BTreeMap<String, HostTensor>,
}

/// `t` with its axes permuted: `out.shape[i] = t.shape[perm[i]]`.
pub fn permute(t: &HostTensor, perm: &[usize]) -> HostTensor {
    let rank = t.shape.len();
    let shape: Vec<usize> = perm.iter().map(|&p| t.shape[p]).collect();
    let mut in_strides = vec![1usize; rank];
    for i in (0..rank.saturating_sub(1)).rev() {
        in_strides[i] = in_strides[i + 1] * t.shape[i + 1];
    }
    let strides: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
    let n: usize = shape.iter().product();
    let mut data = Vec::with_capacity(n);
    let mut index = vec![0usize; rank];
    for _ in 0..n {
        let offset: usize = index.iter().zip(&strides).map(|(i, s)| i * s).sum();
        data.push(t.data[offset]);
        for d in (0..rank).rev() {
            index[d] += 1;
            if index[d] < shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    HostTensor { shape, data }
}

/// A `[kh, kw, ...]` tensor flipped along its first two axes (`w[::-1, ::-1]`).
pub fn flip_spatial(t: &HostTensor) -> HostTensor {
    let (kh, kw) = (t.shape[0], t.shape[1]);
    let inner: usize = t.shape[2..].iter().product();
    let mut data = vec![0f32; t.data.len()];
    for y in 0..kh {
        for x in 0..kw {
            let src = (y * kw + x) * inner;
            let dst = ((kh - 1 - y) * kw + (kw - 1 - x)) * inner;
            data[dst..dst + inner].copy_from_slice(&t.data[src..src + inner]);
        }
    }
    HostTensor { shape: t.shape.clone(), data }
}

/// TF conv weight `[kh, kw, in, out]` → PyTorch `[out, in, kh, kw]`.
pub fn conv_weight(t: &HostTensor) -> HostTensor {
    permute(t, &[3, 2, 0, 1])
}

/// TF dense weight `[in, out]` → PyTorch `[out, in]`.
pub fn dense_weight(t: &HostTensor) -> HostTensor {
    permute(t, &[1, 0])
}

/// What every family must be to load: `lod` 0 ([`check_lod`]), `fmap_decay` 1 and leaky ReLU.
pub fn check_common(net: &TfNetwork) -> Result<(), String> {
    check_lod(net)?;
    if let Some(d) = net.kwarg("fmap_decay").and_then(serde_json::Value::as_f64) {
        if d != 1.0 {
            return Err(net.fail(format!("fmap_decay {d} (only 1.0, the official value, is supported)")));
        }
    }
    for key in ["nonlinearity", "mapping_nonlinearity"] {
        if let Some(act) = net.kwarg(key).and_then(serde_json::Value::as_str) {
            if act != "lrelu" {
                return Err(net.fail(format!("{key} '{act}' (only lrelu is supported)")));
            }
        }
    }
    Ok(())
}

/// `lod` must be 0: a snapshot in the middle of progressive growing blends two resolutions.
fn check_lod(net: &TfNetwork) -> Result<(), String> {
    for (key, t) in &net.vars {
        if (key == "lod" || key.ends_with("/lod")) && t.data.first().is_some_and(|&v| v != 0.0) {
            return Err(net.fail(format!(
                "'{key}' = {} (a snapshot taken during progressive growing; only lod 0, as in released networks, is supported)",
                t.data[0]
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permute_and_flip() {
        let t = HostTensor { shape: vec![2, 3], data: vec![1., 2., 3., 4., 5., 6.] };
        assert_eq!(dense_weight(&t), HostTensor { shape: vec![3, 2], data: vec![1., 4., 2., 5., 3., 6.] });
        let k = HostTensor { shape: vec![2, 2, 1, 1], data: vec![1., 2., 3., 4.] };
        assert_eq!(flip_spatial(&k).data, vec![4., 3., 2., 1.]);
        let c = HostTensor { shape: vec![1, 2, 3, 1], data: (0..6).map(|v| v as f32).collect() };
        let p = conv_weight(&c);
        assert_eq!(p.shape, vec![1, 3, 1, 2]);
        assert_eq!(p.data, vec![0., 3., 1., 4., 2., 5.]);
    }
}
