//! torch: `torch_utils.persistence` objects (class name and state kept, module source dropped),
//! the element types of torch storages, legacy `torch.save` storage blobs (the bytes
//! `torch.storage._load_from_bytes` receives, read by a second machine that knows only the storage
//! classes), the persistent ids inside them, and tensors rebuilt from a storage with an offset
//! and strides. Interpreted, never run.

use std::borrow::Cow;
use std::rc::Rc;

use super::machine::{Callable, Item, Machine, Obj};
use super::value::Tensor;
use super::{limit, malformed, Result};

/// The integer that opens a legacy `torch.save` stream (0x1950a86a20f9469cfc6c), little-endian.
pub(super) const TORCH_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
/// The legacy `torch.save` protocol version.
pub(super) const TORCH_PROTOCOL_VERSION: i64 = 1001;

/// Element types of torch storages.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Elem {
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    U8,
    Bool,
}

impl Elem {
    pub(super) fn from_storage_class(name: &str) -> Option<Self> {
        Some(match name {
            "FloatStorage" => Elem::F32,
            "DoubleStorage" => Elem::F64,
            "HalfStorage" => Elem::F16,
            "BFloat16Storage" => Elem::BF16,
            "LongStorage" => Elem::I64,
            "IntStorage" => Elem::I32,
            "ByteStorage" => Elem::U8,
            "BoolStorage" => Elem::Bool,
            _ => return None,
        })
    }

    pub(super) fn size(self) -> usize {
        match self {
            Elem::F64 | Elem::I64 => 8,
            Elem::F32 | Elem::I32 => 4,
            Elem::F16 | Elem::BF16 => 2,
            Elem::U8 | Elem::Bool => 1,
        }
    }

    /// Little-endian raw elements to f32.
    pub(super) fn decode(self, raw: &[u8]) -> Vec<f32> {
        match self {
            Elem::F32 => raw.chunks_exact(4).map(|c| f32::from_le_bytes(le(c))).collect(),
            Elem::F64 => raw.chunks_exact(8).map(|c| f64::from_le_bytes(le(c)) as f32).collect(),
            Elem::F16 => raw.chunks_exact(2).map(|c| f16_to_f32(u16::from_le_bytes(le(c)))).collect(),
            Elem::BF16 => {
                raw.chunks_exact(2).map(|c| f32::from_bits((u16::from_le_bytes(le(c)) as u32) << 16)).collect()
            }
            Elem::I64 => raw.chunks_exact(8).map(|c| i64::from_le_bytes(le(c)) as f32).collect(),
            Elem::I32 => raw.chunks_exact(4).map(|c| i32::from_le_bytes(le(c)) as f32).collect(),
            Elem::U8 => raw.iter().map(|&b| b as f32).collect(),
            Elem::Bool => raw.iter().map(|&b| if b != 0 { 1.0 } else { 0.0 }).collect(),
        }
    }
}

/// A fixed-size array from a slice of that size (zeros if it is not; callers pass exact chunks).
pub(super) fn le<const N: usize>(chunk: &[u8]) -> [u8; N] {
    chunk.try_into().unwrap_or([0; N])
}

pub(super) fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exponent = ((h >> 10) & 0x1f) as u32;
    let mantissa = (h & 0x3ff) as u32;
    match exponent {
        0 => {
            // Zero or subnormal: mantissa * 2^-24, exact in f32.
            let magnitude = mantissa as f32 * (1.0 / 16_777_216.0);
            if sign != 0 {
                -magnitude
            } else {
                magnitude
            }
        }
        0x1f => f32::from_bits(sign | 0x7f80_0000 | (mantissa << 13)),
        _ => f32::from_bits(sign | ((exponent + 112) << 23) | (mantissa << 13)),
    }
}

/// A torch storage: `data` arrives after the pickles of a legacy blob, so it starts empty there.
pub(super) struct Storage {
    pub(super) elem: Elem,
    pub(super) numel: usize,
    pub(super) data: Option<Rc<Vec<f32>>>,
}

impl Machine<'_> {
    /// `_reconstruct_persistent_obj(meta)`: keeps `class_name` and `state`; `module_src` is never
    /// looked at.
    pub(super) fn persistent_object(&mut self, args: &[Item], at: usize) -> Result<Item> {
        let [meta] = args else {
            return Err(malformed("persistent object", at, "expected one argument (meta)"));
        };
        let meta = self.small_dict(*meta, "persistent object", at)?;
        let kind = self.lookup(&meta, "type").and_then(|t| self.str_of(t));
        if kind != Some("class") {
            return Err(malformed(
                "persistent object",
                at,
                format!("type {:?}, expected 'class'", kind.unwrap_or("missing")),
            ));
        }
        let class_name = self
            .lookup(&meta, "class_name")
            .and_then(|c| self.str_of(c))
            .ok_or_else(|| malformed("persistent object", at, "no class_name"))?
            .to_string();
        let state = self.lookup(&meta, "state").ok_or_else(|| malformed("persistent object", at, "no state"))?;
        self.alloc(Obj::Persistent { class_name, state: Some(state) }, at)
    }

    /// `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`.
    pub(super) fn rebuild_tensor(&mut self, args: &[Item], at: usize) -> Result<Item> {
        let (storage, offset, size, stride) = match args {
            [storage, offset, size, stride, _requires_grad, _hooks]
            | [storage, offset, size, stride, _requires_grad, _hooks, _] => (*storage, *offset, *size, *stride),
            _ => return Err(malformed("tensor", at, format!("expected 6 or 7 arguments, found {}", args.len()))),
        };
        let data = match self.obj(storage) {
            Some(Obj::Storage(Storage { data: Some(data), .. })) => Rc::clone(data),
            _ => return Err(malformed("tensor", at, format!("expected a storage, found {}", self.describe(storage)))),
        };
        let offset = match offset {
            Item::Int(v) => usize::try_from(v).map_err(|_| malformed("tensor", at, format!("negative offset {v}")))?,
            other => return Err(malformed("tensor", at, format!("offset is {}", self.describe(other)))),
        };
        let shape = self.dims(size, "tensor size", at)?;
        let strides = self.dims(stride, "tensor stride", at)?;
        if shape.len() != strides.len() {
            return Err(malformed("tensor", at, format!("{} sizes but {} strides", shape.len(), strides.len())));
        }
        let numel =
            checked_numel(&shape).ok_or_else(|| limit(at, format!("tensor of shape {shape:?} is too large")))?;
        let tensor = if numel == 0 {
            Tensor { shape, data: Rc::new(Vec::new()) }
        } else {
            // The last element reached must lie inside the storage.
            let last =
                shape.iter().zip(&strides).try_fold(offset, |acc, (&n, &s)| acc.checked_add((n - 1).checked_mul(s)?));
            if last.is_none_or(|last| last >= data.len()) {
                return Err(malformed(
                    "tensor",
                    at,
                    format!(
                        "shape {shape:?}, strides {strides:?} and offset {offset} reach beyond its storage of {} elements",
                        data.len()
                    ),
                ));
            }
            if offset == 0 && numel == data.len() && is_contiguous(&shape, &strides) {
                Tensor { shape, data }
            } else {
                self.charge(numel.saturating_mul(4), at)?;
                let values = gather(&data, offset, &shape, &strides)
                    .ok_or_else(|| malformed("tensor", at, "element outside its storage"))?;
                Tensor { shape, data: Rc::new(values) }
            }
        };
        self.alloc(Obj::Tensor(tensor), at)
    }

    /// `torch.storage._load_from_bytes(blob)`: a legacy `torch.save` stream, read by a second
    /// machine that knows only the storage classes.
    pub(super) fn load_from_bytes(&mut self, args: &[Item], at: usize) -> Result<Item> {
        let (blob, blob_at) = match args {
            [blob] => match self.obj(*blob) {
                Some(Obj::Bytes { data, at }) => (data.clone(), *at),
                _ => {
                    return Err(malformed(
                        "storage blob",
                        at,
                        format!("expected bytes, found {}", self.describe(*blob)),
                    ))
                }
            },
            _ => return Err(malformed("storage blob", at, "expected one argument")),
        };
        if let Cow::Owned(bytes) = &blob {
            self.charge(bytes.len(), at)?;
        }
        let mut inner = Machine::new(&blob, blob_at, true, self.budget);
        inner.budget_total = self.budget_total;
        let storage = inner.storage_stream();
        self.budget = inner.budget;
        let storage = storage?;
        self.alloc(Obj::Storage(storage), at)
    }

    /// The five pickles of a legacy `torch.save` stream and the raw storage data after them.
    pub(super) fn storage_stream(&mut self) -> Result<Storage> {
        let start = self.at();
        let magic = self.load()?;
        if !matches!(self.obj(magic), Some(Obj::BigInt(b)) if b.as_slice() == TORCH_MAGIC.as_slice()) {
            return Err(malformed(
                "storage blob",
                start,
                "no torch.save magic number (not a legacy torch.save stream)",
            ));
        }
        let version_at = self.at();
        match self.load()? {
            Item::Int(TORCH_PROTOCOL_VERSION) => {}
            _ => return Err(malformed("storage blob", version_at, "unsupported torch.save protocol version")),
        }
        let info_at = self.at();
        let sys_info = self.load()?;
        let sys_info = self.small_dict(sys_info, "storage blob sys_info", info_at)?;
        if matches!(self.lookup(&sys_info, "little_endian"), Some(Item::Bool(false))) {
            return Err(malformed("storage blob", info_at, "written on a big-endian machine (not supported)"));
        }
        let object_at = self.at();
        let object = self.load()?;
        let keys_at = self.at();
        let keys = self.load()?;
        let keys: Vec<String> = match self.obj(keys) {
            Some(Obj::List(items)) => items
                .iter()
                .map(|k| self.str_of(*k).map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| malformed("storage blob", keys_at, "storage keys must be strings"))?,
            _ => return Err(malformed("storage blob", keys_at, "expected the list of storage keys")),
        };
        for key in keys {
            let data_at = self.at();
            let index = *self
                .storages
                .get(&key)
                .ok_or_else(|| malformed("storage blob", data_at, format!("data for unknown storage '{key}'")))?;
            let count = i64::from_le_bytes(self.array()?);
            let (elem, numel) = match self.heap.get(index) {
                Some(Obj::Storage(s)) => (s.elem, s.numel),
                _ => return Err(malformed("storage blob", data_at, "storage key does not name a storage")),
            };
            if u64::try_from(count).ok() != Some(numel as u64) {
                return Err(malformed(
                    "storage blob",
                    data_at,
                    format!("storage '{key}' holds {count} elements but was declared with {numel}"),
                ));
            }
            let nbytes =
                (numel as u64).checked_mul(elem.size() as u64).ok_or_else(|| limit(data_at, "storage too large"))?;
            let raw = self.take(nbytes)?;
            self.charge(numel.saturating_mul(4), data_at)?;
            let values = elem.decode(raw);
            if let Some(Obj::Storage(s)) = self.heap.get_mut(index) {
                s.data = Some(Rc::new(values));
            }
        }
        match self.obj_mut(object) {
            Some(Obj::Storage(s)) if s.data.is_some() => {
                Ok(Storage { elem: s.elem, numel: s.numel, data: s.data.take() })
            }
            Some(Obj::Storage(_)) => Err(malformed("storage blob", keys_at, "the storage's data is missing")),
            _ => Err(malformed("storage blob", object_at, "the saved object is not a single storage")),
        }
    }

    /// BINPERSID / PERSID inside a storage blob:
    /// `('storage', <storage class>, key, location, numel, view_metadata)`.
    pub(super) fn persistent_load(&mut self, pid: Item, at: usize) -> Result<Item> {
        if !self.in_blob {
            return Err(malformed("persistent id", at, "persistent ids only occur inside torch storage blobs"));
        }
        let fields = self.small_tuple(pid, "persistent id", at)?;
        let [tag, class, key, _location, numel, view] = fields.as_slice() else {
            return Err(malformed("persistent id", at, format!("expected 6 fields, found {}", fields.len())));
        };
        if self.str_of(*tag) != Some("storage") {
            return Err(malformed("persistent id", at, "not a storage"));
        }
        let Some(Callable::StorageClass(elem)) = self.global_kind(*class) else {
            return Err(malformed("persistent id", at, "no storage class"));
        };
        let key =
            self.str_of(*key).ok_or_else(|| malformed("persistent id", at, "storage key is not a string"))?.to_string();
        let numel = match numel {
            Item::Int(n) => {
                usize::try_from(*n).map_err(|_| malformed("persistent id", at, format!("negative size {n}")))?
            }
            _ => return Err(malformed("persistent id", at, "storage size is not an int")),
        };
        if !matches!(view, Item::None) {
            return Err(malformed("persistent id", at, "storage views (torch < 0.4) are not supported"));
        }
        if let Some(&index) = self.storages.get(&key) {
            return match self.heap.get(index) {
                Some(Obj::Storage(s)) if s.elem == elem && s.numel == numel => Ok(Item::Ref(index)),
                _ => Err(malformed("persistent id", at, format!("storage '{key}' declared twice differently"))),
            };
        }
        let item = self.alloc(Obj::Storage(Storage { elem, numel, data: None }), at)?;
        if let Item::Ref(index) = item {
            self.storages.insert(key, index);
        }
        Ok(item)
    }
}

/// The number of elements of a shape, if it fits.
pub(super) fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &n| acc.checked_mul(n))
}

/// Row-major contiguous (strides of size-1 dimensions do not matter).
pub(super) fn is_contiguous(shape: &[usize], strides: &[usize]) -> bool {
    let mut expected = 1usize;
    for (&n, &s) in shape.iter().zip(strides).rev() {
        if n != 1 && s != expected {
            return false;
        }
        expected = expected.saturating_mul(n);
    }
    true
}

/// The elements of a strided view, in row-major order (`None` if one falls outside `src`;
/// callers check the extent first). Shapes with no element give an empty vector.
pub(super) fn gather<T: Copy>(src: &[T], offset: usize, shape: &[usize], strides: &[usize]) -> Option<Vec<T>> {
    let numel = checked_numel(shape)?;
    if numel == 0 {
        return Some(Vec::new());
    }
    if is_contiguous(shape, strides) {
        return src.get(offset..offset.checked_add(numel)?).map(<[T]>::to_vec);
    }
    let mut out = Vec::with_capacity(numel);
    let mut index = vec![0usize; shape.len()];
    let mut at = offset;
    for _ in 0..numel {
        out.push(*src.get(at)?);
        // Odometer step; wrapping arithmetic is exact because `at` returns in range.
        for ((i, &n), &s) in index.iter_mut().zip(shape).zip(strides).rev() {
            *i += 1;
            at = at.wrapping_add(s);
            if *i < n {
                break;
            }
            at = at.wrapping_sub(s.wrapping_mul(n));
            *i = 0;
        }
    }
    Some(out)
}
