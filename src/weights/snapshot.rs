//! From an official training snapshot (`network-snapshot-*.pkl`, read by the code-free pickle
//! machine in [`super::pickle`]) to what a loader needs: for every network in it (`G`, `D`,
//! `G_ema`, `augment_pipe`) the class name, the constructor arguments as JSON and exactly torch's
//! `state_dict()` (dotted names, parameters and persistent buffers, raw stored values).
//!
//! The networks are `torch_utils.persistence` objects whose state is the `torch.nn.Module`
//! `__dict__`: `_parameters`, `_buffers`, `_non_persistent_buffers_set`, `_modules` (children,
//! themselves persistent objects), `_init_args`, `_init_kwargs` and plain attributes. See
//! `shared/reference/stylegan3.md` §7.

use std::collections::{BTreeMap, HashSet};

use super::pickle::{self, ArrayData, NdArray, PickleError, Tensor, Value};

/// The networks a snapshot must hold at least one of.
const NETWORK_KEYS: [&str; 3] = ["G", "D", "G_ema"];

/// A tensor in host memory, row-major; `shape == []` is a scalar.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl From<Tensor> for HostTensor {
    fn from(t: Tensor) -> Self {
        HostTensor { shape: t.shape.clone(), data: t.into_vec() }
    }
}

/// One network of a snapshot.
#[derive(Clone, Debug)]
pub struct PickledModule {
    /// E.g. "Generator", "Discriminator", "AugmentPipe" (shared by the StyleGAN2 and StyleGAN3
    /// modules: tell them apart by structure).
    pub class_name: String,
    /// `_init_kwargs` (EasyDict → object, tuples/lists → arrays, numpy scalars → numbers, numpy
    /// arrays → nested arrays, None → null).
    pub init_kwargs: serde_json::Value,
    /// `_init_args`.
    pub init_args: Vec<serde_json::Value>,
    /// Exactly `state_dict()`: parameters and persistent buffers, recursively, dotted names.
    pub state_dict: BTreeMap<String, HostTensor>,
}

/// The networks of a training snapshot.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Top-level keys whose values are persistent torch modules: "G", "D", "G_ema", "augment_pipe".
    pub networks: BTreeMap<String, PickledModule>,
    pub training_set_kwargs: Option<serde_json::Value>,
}

/// Reads an official StyleGAN2-ADA / StyleGAN3 snapshot pickle without executing anything.
pub fn parse_snapshot(bytes: &[u8]) -> Result<Snapshot, PickleError> {
    from_value(pickle::parse(bytes)?)
}

/// The networks of an already decoded snapshot pickle.
pub fn from_value(top: Value) -> Result<Snapshot, PickleError> {
    let entries = match top {
        Value::Dict(entries) => entries,
        other => {
            return Err(PickleError::NotASnapshot(format!(
                "top-level object is {}, expected a dict with G, D, G_ema",
                other.type_name()
            )))
        }
    };
    let mut networks = BTreeMap::new();
    let mut training_set_kwargs = None;
    let mut keys = Vec::new();
    for (key, value) in entries {
        let Value::Str(key) = key else { continue };
        keys.push(key.clone());
        match value {
            Value::Object { class_name, state } => match module(class_name, *state) {
                Ok(m) => {
                    networks.insert(key, m);
                }
                Err(reason) if NETWORK_KEYS.contains(&key.as_str()) => {
                    return Err(PickleError::NotASnapshot(format!("'{key}' {reason}")));
                }
                Err(_) => {} // some other persistent object: not a network
            },
            Value::None => {}
            other if key == "training_set_kwargs" => training_set_kwargs = Some(to_json(&other)),
            _ => {}
        }
    }
    if !NETWORK_KEYS.iter().any(|k| networks.contains_key(*k)) {
        return Err(PickleError::NotASnapshot(format!(
            "the top-level dict has keys [{}] but no network under G, D or G_ema",
            keys.join(", ")
        )));
    }
    Ok(Snapshot { networks, training_set_kwargs })
}

/// The parts of a `torch.nn.Module` state that make its state_dict and constructor call.
struct ModuleState {
    parameters: Vec<(String, Value)>,
    buffers: Vec<(String, Value)>,
    modules: Vec<(String, Value)>,
    non_persistent: HashSet<String>,
    init_args: Option<Value>,
    init_kwargs: Option<Value>,
}

fn module(class_name: String, state: Value) -> Result<PickledModule, String> {
    let parts = module_state(&class_name, state)?;
    let init_kwargs = match &parts.init_kwargs {
        Some(v) => to_json(v),
        None => serde_json::Value::Object(serde_json::Map::new()),
    };
    let init_args = match &parts.init_args {
        Some(Value::Tuple(items) | Value::List(items)) => items.iter().map(to_json).collect(),
        Some(Value::None) | None => Vec::new(),
        Some(other) => vec![to_json(other)],
    };
    let mut state_dict = BTreeMap::new();
    collect_state_dict("", parts, &mut state_dict)?;
    Ok(PickledModule { class_name, init_kwargs, init_args, state_dict })
}

fn module_state(class_name: &str, state: Value) -> Result<ModuleState, String> {
    let Value::Dict(entries) = state else {
        return Err(format!("is a {class_name} whose state is {}, not a torch module", state.type_name()));
    };
    let mut parameters = None;
    let mut buffers = None;
    let mut modules = None;
    let mut non_persistent = HashSet::new();
    let mut init_args = None;
    let mut init_kwargs = None;
    for (key, value) in entries {
        let Value::Str(key) = key else { continue };
        match key.as_str() {
            "_parameters" => parameters = Some(named(value, "_parameters")?),
            "_buffers" => buffers = Some(named(value, "_buffers")?),
            "_modules" => modules = Some(named(value, "_modules")?),
            "_non_persistent_buffers_set" => {
                if let Value::Set(items) | Value::List(items) | Value::Tuple(items) = value {
                    non_persistent =
                        items.into_iter().filter_map(|v| if let Value::Str(s) = v { Some(s) } else { None }).collect();
                }
            }
            "_init_args" => init_args = Some(value),
            "_init_kwargs" => init_kwargs = Some(value),
            _ => {}
        }
    }
    match (parameters, buffers, modules) {
        (Some(parameters), Some(buffers), Some(modules)) => {
            Ok(ModuleState { parameters, buffers, modules, non_persistent, init_args, init_kwargs })
        }
        _ => Err(format!("is a {class_name} that is not a torch module (no _parameters/_buffers/_modules)")),
    }
}

/// The entries of a dict with string keys (`_parameters`, `_buffers`, `_modules`).
fn named(value: Value, what: &str) -> Result<Vec<(String, Value)>, String> {
    let Value::Dict(entries) = value else {
        return Err(format!("has {what} that is {}, not a dict", value.type_name()));
    };
    entries
        .into_iter()
        .map(|(k, v)| match k {
            Value::Str(k) => Ok((k, v)),
            other => Err(format!("has a {what} key that is {}", other.type_name())),
        })
        .collect()
}

/// torch's `state_dict()`: own parameters, own persistent buffers, then every child under
/// `name.`; None entries are skipped.
fn collect_state_dict(prefix: &str, parts: ModuleState, out: &mut BTreeMap<String, HostTensor>) -> Result<(), String> {
    let buffers = parts.buffers.into_iter().filter(|(name, _)| !parts.non_persistent.contains(name));
    for (kind, (name, value)) in
        parts.parameters.into_iter().map(|p| ("parameter", p)).chain(buffers.map(|b| ("buffer", b)))
    {
        match value {
            Value::Tensor(t) => {
                out.insert(format!("{prefix}{name}"), t.into());
            }
            Value::None => {}
            other => return Err(format!("has {kind} '{prefix}{name}' that is {}, not a tensor", other.type_name())),
        }
    }
    for (name, child) in parts.modules {
        match child {
            Value::Object { class_name, state } => {
                let child_prefix = format!("{prefix}{name}.");
                let parts =
                    module_state(&class_name, *state).map_err(|e| format!("has a child '{prefix}{name}' that {e}"))?;
                collect_state_dict(&child_prefix, parts, out)?;
            }
            Value::None => {}
            other => return Err(format!("has a child '{prefix}{name}' that is {}, not a module", other.type_name())),
        }
    }
    Ok(())
}

/// A pickled value as JSON: dicts → objects (keys as strings), tuples/lists/sets → arrays, numpy
/// scalars → numbers, tensors and numpy arrays → nested arrays, None → null, non-finite floats →
/// null, persistent objects → `{"class_name": ...}`, globals and dtypes → strings.
pub fn to_json(value: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        Value::None => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::BigInt(bytes) => float(bigint_to_f64(bytes)),
        Value::Float(f) => float(*f),
        Value::Str(s) => J::String(s.clone()),
        Value::Bytes(b) => J::Array(b.iter().map(|&b| J::from(b)).collect()),
        Value::Tuple(items) | Value::List(items) | Value::Set(items) => J::Array(items.iter().map(to_json).collect()),
        Value::Dict(entries) => J::Object(entries.iter().map(|(k, v)| (json_key(k), to_json(v))).collect()),
        Value::Tensor(t) => nested(&t.shape, t.data.iter().map(|&x| float(x as f64))),
        Value::Array(NdArray { shape, data }) => match data {
            ArrayData::Float(v) => nested(shape, v.iter().map(|&x| float(x))),
            ArrayData::Int(v) => nested(shape, v.iter().map(|&x| J::from(x))),
            ArrayData::Bool(v) => nested(shape, v.iter().map(|&x| J::Bool(x))),
        },
        Value::Dtype(d) => J::String(d.clone()),
        Value::Object { class_name, .. } => {
            let mut map = serde_json::Map::new();
            map.insert("class_name".to_string(), J::String(class_name.clone()));
            J::Object(map)
        }
        Value::Global { module, name } => J::String(format!("{module}.{name}")),
    }
}

fn float(f: f64) -> serde_json::Value {
    serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

fn json_key(key: &Value) -> String {
    match key {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        Value::None => "None".to_string(),
        other => to_json(other).to_string(),
    }
}

/// Row-major elements as nested arrays of `shape` (an empty array when there are no elements).
fn nested(shape: &[usize], items: impl Iterator<Item = serde_json::Value>) -> serde_json::Value {
    fn build(shape: &[usize], items: &mut dyn Iterator<Item = serde_json::Value>) -> serde_json::Value {
        match shape.split_first() {
            None => items.next().unwrap_or(serde_json::Value::Null),
            Some((&n, rest)) => serde_json::Value::Array((0..n).map(|_| build(rest, items)).collect()),
        }
    }
    if shape.contains(&0) {
        return serde_json::Value::Array(Vec::new());
    }
    let mut items = items;
    build(shape, &mut items)
}

/// Approximate value of a little-endian two's complement integer.
fn bigint_to_f64(bytes: &[u8]) -> f64 {
    let negative = bytes.last().is_some_and(|&b| b & 0x80 != 0);
    let mut magnitude = 0.0f64;
    for &b in bytes.iter().rev() {
        let b = if negative { !b } else { b };
        magnitude = magnitude * 256.0 + b as f64;
    }
    if negative {
        -(magnitude + 1.0)
    } else {
        magnitude
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    use super::*;
    use crate::weights::pickle::writer::{blob, f32_bytes, W};

    const FIXTURES: [&str; 4] = ["sg3t_64", "sg3r_64", "sg2_64", "sg3t_64_cond4"];

    /// `$STYLESCOPE_FIXTURES`, else `../shared/fixtures` beside the crate, else `/work/shared/fixtures`.
    fn fixtures() -> PathBuf {
        if let Ok(p) = std::env::var("STYLESCOPE_FIXTURES") {
            return PathBuf::from(p);
        }
        let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures");
        if beside.is_dir() {
            return beside;
        }
        PathBuf::from("/work/shared/fixtures")
    }

    fn read(file: &str) -> Vec<u8> {
        let path = fixtures().join(file);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// A minimal safetensors reader (F32 tensors), for comparison only.
    fn safetensors(file: &str) -> BTreeMap<String, HostTensor> {
        let bytes = read(file);
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        let data = &bytes[8 + n..];
        header
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.as_str() != "__metadata__")
            .map(|(k, v)| {
                assert_eq!(v["dtype"], "F32", "{file}: {k}");
                let shape = v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
                let (a, b) =
                    (v["data_offsets"][0].as_u64().unwrap() as usize, v["data_offsets"][1].as_u64().unwrap() as usize);
                let values = data[a..b].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
                (k.clone(), HostTensor { shape, data: values })
            })
            .collect()
    }

    fn assert_bit_identical(got: &BTreeMap<String, HostTensor>, want: &BTreeMap<String, HostTensor>, what: &str) {
        let got_keys: Vec<_> = got.keys().collect();
        let want_keys: Vec<_> = want.keys().collect();
        assert_eq!(got_keys, want_keys, "{what}: key sets differ");
        for (key, w) in want {
            let g = &got[key];
            assert_eq!(g.shape, w.shape, "{what}: {key} shape");
            assert_eq!(g.data.len(), w.data.len(), "{what}: {key} length");
            let same = g.data.iter().zip(&w.data).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{what}: {key} values differ");
        }
    }

    /// JSON equality with numbers compared as f64 (1e-12 relative tolerance).
    fn json_close(a: &serde_json::Value, b: &serde_json::Value) -> bool {
        use serde_json::Value as J;
        match (a, b) {
            (J::Number(x), J::Number(y)) => {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                (x - y).abs() <= 1e-12 * x.abs().max(y.abs()).max(1.0)
            }
            (J::Array(x), J::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_close(x, y)),
            (J::Object(x), J::Object(y)) => {
                x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_close(v, w)))
            }
            _ => a == b,
        }
    }

    #[test]
    fn fixtures_match_their_safetensors_and_json() {
        for name in FIXTURES {
            let start = Instant::now();
            let snap = parse_snapshot(&read(&format!("{name}.pkl"))).unwrap_or_else(|e| panic!("{name}: {e}"));
            let elapsed = start.elapsed();
            let keys: Vec<_> = snap.networks.keys().map(String::as_str).collect();
            assert_eq!(keys, ["D", "G", "G_ema", "augment_pipe"], "{name}");
            let g_ema = &snap.networks["G_ema"];
            let d = &snap.networks["D"];
            assert_eq!(g_ema.class_name, "Generator");
            assert_eq!(snap.networks["G"].class_name, "Generator");
            assert_eq!(d.class_name, "Discriminator");
            assert_eq!(snap.networks["augment_pipe"].class_name, "AugmentPipe");
            assert_bit_identical(&g_ema.state_dict, &safetensors(&format!("{name}.G_ema.safetensors")), name);
            assert_bit_identical(&d.state_dict, &safetensors(&format!("{name}.D.safetensors")), name);

            // G is G_ema with every parameter perturbed by ~1%: same layout, values close but not equal.
            let g = &snap.networks["G"].state_dict;
            assert_eq!(g.keys().collect::<Vec<_>>(), g_ema.state_dict.keys().collect::<Vec<_>>());
            let mut differing = 0;
            for (key, t) in g {
                let e = &g_ema.state_dict[key];
                assert_eq!(t.shape, e.shape, "{name}: G {key}");
                for (a, b) in t.data.iter().zip(&e.data) {
                    assert!((a - b).abs() <= 0.1 * b.abs() + 1e-6, "{name}: G {key} far from G_ema");
                }
                differing += (t.data != e.data) as usize;
            }
            assert!(differing > 0, "{name}: G equals G_ema");

            let json: serde_json::Value = serde_json::from_slice(&read(&format!("{name}.json"))).unwrap();
            for (net, kwargs) in [
                ("G_ema", "G_init_kwargs"),
                ("G", "G_init_kwargs"),
                ("D", "D_init_kwargs"),
                ("augment_pipe", "augment_init_kwargs"),
            ] {
                let got = &snap.networks[net].init_kwargs;
                assert!(json_close(got, &json[kwargs]), "{name}: {net} init_kwargs\n got {got}\nwant {}", json[kwargs]);
                assert!(snap.networks[net].init_args.is_empty(), "{name}: {net} init_args");
            }
            let tsk = snap.training_set_kwargs.as_ref().expect("training_set_kwargs");
            assert!(json_close(tsk, &json["training_set_kwargs"]), "{name}: training_set_kwargs {tsk}");
            eprintln!("{name}: parsed in {elapsed:?}");
        }
    }

    #[test]
    fn state_dict_follows_torch_rules() {
        // A hand-made snapshot: a parameter that is a transposed view, a None parameter, a
        // non-persistent buffer, a child module (dotted names), a None child, EasyDict kwargs
        // with numpy values, positional init args, `augment_pipe: None`.
        let weight = blob("FloatStorage", "10", 6, &f32_bytes(&[1., 2., 3., 4., 5., 6.]));
        let filter = blob("HalfStorage", "11", 2, &[0x00, 0x3c, 0x00, 0xc0]);
        let obj = |w: &mut W, class: &str, body: &dyn Fn(&mut W)| {
            w.global("torch_utils.persistence", "_reconstruct_persistent_obj").op(b"}(");
            w.str("type").str("class").str("version").int(6).str("module_src").str("raise SystemExit");
            w.str("class_name").str(class).str("state").op(b"}(");
            body(w);
            w.op(b"u").op(b"u").op(&[0x85]).op(b"R");
        };
        let mut w = W::new();
        w.op(b"}(").str("G_ema");
        obj(&mut w, "Generator", &|w| {
            w.str("training").op(&[0x89]);
            w.str("_parameters").op(b"}(").str("w").tensor(&weight, 0, &[3, 2], &[1, 3]).str("b").op(b"N").op(b"u");
            w.str("_buffers")
                .op(b"}(")
                .str("f")
                .tensor(&filter, 0, &[2], &[1])
                .str("tmp")
                .tensor(&filter, 1, &[], &[])
                .op(b"u");
            w.str("_non_persistent_buffers_set").op(&[0x8f]).op(b"(").str("tmp").op(&[0x90]);
            w.str("_modules").op(b"}(").str("mapping");
            obj(w, "MappingNetwork", &|w| {
                w.str("_parameters").op(b"}(").str("fc0").tensor(&weight, 4, &[2], &[1]).op(b"u");
                w.str("_buffers").op(b"}").str("_modules").op(b"}");
            });
            w.str("gone").op(b"N").op(b"u");
            w.str("_init_args").op(b"(").int(64).int(4).op(b"t");
            w.str("_init_kwargs").op(b"}(").str("z_dim").int(64).str("mapping_kwargs");
            w.global("dnnlib.util", "EasyDict").op(b")").op(&[0x81]).str("num_layers").int(2).op(b"s");
            w.str("cutoff").np_scalar("f8", &2.5f64.to_le_bytes());
            w.str("size").np_array(
                "i8",
                &[2],
                false,
                &[36i64, 36].iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>(),
            );
            w.str("bias_init").op(b"(").int(1).int(0).op(b"l").str("none").op(b"N").op(b"u");
            w.str("w_dim").int(64);
        });
        w.str("augment_pipe").op(b"N");
        w.str("training_set_kwargs").op(b"}(").str("resolution").int(64).str("xflip").op(&[0x89]).op(b"u");
        w.op(b"u");
        let snap = parse_snapshot(&w.finish()).unwrap();
        assert_eq!(snap.networks.keys().collect::<Vec<_>>(), ["G_ema"]);
        let m = &snap.networks["G_ema"];
        assert_eq!(m.class_name, "Generator");
        let sd: Vec<(&str, &[usize], &[f32])> =
            m.state_dict.iter().map(|(k, t)| (k.as_str(), t.shape.as_slice(), t.data.as_slice())).collect();
        assert_eq!(
            sd,
            vec![
                ("f", &[2][..], &[1.0, -2.0][..]),
                ("mapping.fc0", &[2][..], &[5.0, 6.0][..]),
                ("w", &[3, 2][..], &[1., 4., 2., 5., 3., 6.][..]),
            ]
        );
        assert_eq!(m.init_args, vec![serde_json::json!(64), serde_json::json!(4)]);
        assert_eq!(
            m.init_kwargs,
            serde_json::json!({"z_dim": 64, "mapping_kwargs": {"num_layers": 2}, "cutoff": 2.5, "size": [36, 36],
                               "bias_init": [1, 0], "none": null})
        );
        assert_eq!(snap.training_set_kwargs, Some(serde_json::json!({"resolution": 64, "xflip": false})));
    }

    #[test]
    fn not_snapshots() {
        let err = |bytes: &[u8]| parse_snapshot(bytes).map(|_| ()).unwrap_err();
        assert!(matches!(err(b""), PickleError::NotAPickle { first_byte: None }));
        let e = err(b"\x80\x04]\x94.");
        assert_eq!(
            e.to_string(),
            "not an official StyleGAN snapshot: top-level object is a list, expected a dict with G, D, G_ema"
        );
        let e = err(b"\x80\x04}(\x8c\x01GN\x8c\x01DNu.");
        assert!(matches!(&e, PickleError::NotASnapshot(m) if m.contains("[G, D]")), "{e}");
        // A persistent object under G_ema that is not a module.
        let mut w = W::new();
        w.op(b"}").str("G_ema").global("torch_utils.persistence", "_reconstruct_persistent_obj").op(b"}(");
        w.str("type").str("class").str("class_name").str("Thing").str("state").op(b"}u").op(&[0x85]).op(b"Rs");
        let e = err(&w.finish());
        assert!(e.to_string().contains("'G_ema' is a Thing that is not a torch module"), "{e}");
        // The TF Network class alone is allowed (TF-era pickles go to `weights::tf`), but is no snapshot.
        let e = err(b"\x80\x02cdnnlib.tflib.network\nNetwork\n.");
        assert!(e.to_string().contains("top-level object is a global"), "{e}");
        let e = err(b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R.");
        assert_eq!(e.to_string(), "unknown global 'os.system': not something an official snapshot contains");
    }

    /// xorshift64*, enough for fuzzing.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn garbage_and_truncations_are_errors() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for len in [1, 2, 10, 1000, 100_000] {
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            assert!(parse_snapshot(&bytes).is_err());
            bytes[0] = 0x80; // pass the header check, then run garbage
            if len > 1 {
                bytes[1] = 4;
            }
            assert!(parse_snapshot(&bytes).is_err());
        }
        let pkl = read("sg3t_64.pkl");
        for percent in [10, 50, 99] {
            let cut = pkl.len() * percent / 100;
            let e = parse_snapshot(&pkl[..cut]).map(|_| ()).unwrap_err();
            assert!(matches!(e, PickleError::Truncated { .. }), "{percent}%: {e}");
        }
        assert!(parse_snapshot(&pkl[..pkl.len() - 1]).is_err());
    }

    #[test]
    fn fuzzed_fixture_never_panics() {
        let pkl = read("sg3t_64.pkl");
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let (mut ok, mut errors) = (0, std::collections::BTreeMap::<String, usize>::new());
        let mut slowest = Duration::ZERO;
        for round in 0..300 {
            let mut bytes = pkl.clone();
            for _ in 0..1 + rng.below(8) {
                // Flips mostly in the opcode-dense regions, sometimes anywhere.
                let i = if rng.below(2) == 0 { rng.below(bytes.len()) } else { rng.below(4096.min(bytes.len())) };
                bytes[i] ^= 1 << rng.below(8);
                if rng.below(4) == 0 {
                    bytes[i] = rng.next() as u8;
                }
            }
            let start = Instant::now();
            let result = std::panic::catch_unwind(|| parse_snapshot(&bytes).map(|_| ()));
            let elapsed = start.elapsed();
            slowest = slowest.max(elapsed);
            match result {
                Ok(Ok(())) => ok += 1,
                Ok(Err(e)) => {
                    let kind = format!("{e:?}").split([' ', '(', '{']).next().unwrap_or("").to_string();
                    *errors.entry(kind).or_default() += 1;
                }
                Err(_) => panic!("round {round}: parse panicked"),
            }
            assert!(elapsed < Duration::from_secs(2), "round {round}: took {elapsed:?}");
        }
        eprintln!("fuzz: {ok} parsed, errors {errors:?}, slowest {slowest:?}");
    }
}
