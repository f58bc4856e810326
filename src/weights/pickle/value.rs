//! The decoded result: an owned tree of [`Value`]s, and the `Resolver` that copies it out of the
//! machine's arena once the pickle has stopped (bounded depth, reference cycles rejected, Python's
//! last-value-wins rule for repeated dict keys). Everything the rest of StyleScope sees of a
//! pickle is defined here.

use std::collections::HashMap;
use std::rc::Rc;

use super::machine::{Item, Obj};
use super::{limit, malformed, Result, MAX_DEPTH};

// ------------------------------------------------------------------------------------------------
// Decoded values

/// A decoded pickle: an owned tree.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer beyond `i64`: little-endian two's complement bytes, as LONG1/LONG4 store it.
    BigInt(Vec<u8>),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    /// Insertion order; a key stored twice keeps its first place and its last value, as in Python.
    Dict(Vec<(Value, Value)>),
    Set(Vec<Value>),
    /// A torch tensor or Parameter (or a bare storage, as 1-D), contiguous, converted to f32.
    Tensor(Tensor),
    /// A numpy ndarray.
    Array(NdArray),
    /// A numpy dtype, e.g. `<f8`.
    Dtype(String),
    /// A `torch_utils.persistence` object: its class name and `__dict__` (the module source is
    /// dropped unread). Also a TF-era Network: class name `dnnlib.tflib.network.Network`, state
    /// the dict its `__getstate__` wrote (`None` if the pickle never gave it one).
    Object {
        class_name: String,
        state: Box<Value>,
    },
    /// An allowed global that was named but never called (e.g. `numpy.ndarray`).
    Global {
        module: String,
        name: String,
    },
}

impl Value {
    /// "a dict", "a list", ... for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "a bool",
            Value::Int(_) | Value::BigInt(_) => "an int",
            Value::Float(_) => "a float",
            Value::Str(_) => "a str",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "a tuple",
            Value::List(_) => "a list",
            Value::Dict(_) => "a dict",
            Value::Set(_) => "a set",
            Value::Tensor(_) => "a tensor",
            Value::Array(_) => "a numpy array",
            Value::Dtype(_) => "a numpy dtype",
            Value::Object { .. } => "a persistent object",
            Value::Global { .. } => "a global",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_dict(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// The value stored under the string `key` of a dict.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_dict()?.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v)
    }
}

/// A tensor, row-major and contiguous; `shape == []` is a scalar. The data is shared with the
/// storage it was cut from when it covers all of it (no copy).
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Rc<Vec<f32>>,
}

impl Tensor {
    /// The elements, copied only if another value still shares them.
    pub fn into_vec(self) -> Vec<f32> {
        Rc::try_unwrap(self.data).unwrap_or_else(|shared| shared.as_ref().clone())
    }
}

/// A numpy array, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct NdArray {
    pub shape: Vec<usize>,
    pub data: ArrayData,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ArrayData {
    Float(Vec<f64>),
    Int(Vec<i64>),
    Bool(Vec<bool>),
}

impl ArrayData {
    pub(super) fn len(&self) -> usize {
        match self {
            ArrayData::Float(v) => v.len(),
            ArrayData::Int(v) => v.len(),
            ArrayData::Bool(v) => v.len(),
        }
    }
}

// ------------------------------------------------------------------------------------------------
// From the arena to an owned tree

pub(super) struct Resolver<'h, 'a> {
    pub(super) heap: &'h [Obj<'a>],
    pub(super) budget: usize,
    pub(super) budget_total: usize,
    pub(super) at: usize,
}

/// Dict keys that Python would consider equal (for the last-value-wins rule).
#[derive(Hash, PartialEq, Eq)]
enum KeyId {
    None,
    Int(i64),
    Str(String),
}

impl Resolver<'_, '_> {
    fn charge(&mut self, bytes: usize) -> Result<()> {
        self.budget = self.budget.checked_sub(bytes).ok_or_else(|| {
            limit(self.at, format!("decoded value would exceed {} bytes (shared parts are copied)", self.budget_total))
        })?;
        Ok(())
    }

    pub(super) fn value(&mut self, item: Item, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(limit(self.at, format!("nesting deeper than {MAX_DEPTH} levels (or a reference cycle)")));
        }
        self.charge(std::mem::size_of::<Value>())?;
        let heap = self.heap;
        let obj = match item {
            Item::None => return Ok(Value::None),
            Item::Bool(b) => return Ok(Value::Bool(b)),
            Item::Int(v) => return Ok(Value::Int(v)),
            Item::Float(v) => return Ok(Value::Float(v)),
            Item::Ref(i) => heap.get(i).ok_or_else(|| malformed("pickle", self.at, "dangling reference"))?,
        };
        Ok(match obj {
            Obj::BigInt(b) => {
                self.charge(b.len())?;
                Value::BigInt(b.clone())
            }
            Obj::Str(s) => {
                self.charge(s.len())?;
                Value::Str(s.clone())
            }
            Obj::Bytes { data, .. } => {
                self.charge(data.len())?;
                Value::Bytes(data.to_vec())
            }
            Obj::Tuple(items) => Value::Tuple(self.values(items, depth)?),
            Obj::List(items) => Value::List(self.values(items, depth)?),
            Obj::Set(items) => Value::Set(self.values(items, depth)?),
            Obj::Dict(entries) => self.dict(entries, depth)?,
            Obj::Global(g) => Value::Global { module: g.module.clone(), name: g.name.clone() },
            Obj::Storage(s) => {
                let data = s.data.clone().unwrap_or_default();
                Value::Tensor(Tensor { shape: vec![data.len()], data })
            }
            Obj::Tensor(t) => Value::Tensor(t.clone()),
            Obj::Dtype(d) => Value::Dtype(d.descr()),
            Obj::Array(Some(a)) => {
                self.charge(a.data.len().saturating_mul(8))?;
                Value::Array(a.clone())
            }
            Obj::Array(None) => {
                return Err(malformed("numpy array", self.at, "never received its contents (BUILD)"));
            }
            Obj::Persistent { class_name, state } => {
                // A TF-era Network that never received its state (BUILD) has none.
                let state = match state {
                    Some(state) => self.value(*state, depth + 1)?,
                    None => Value::None,
                };
                Value::Object { class_name: class_name.clone(), state: Box::new(state) }
            }
        })
    }

    fn values(&mut self, items: &[Item], depth: usize) -> Result<Vec<Value>> {
        items.iter().map(|item| self.value(*item, depth + 1)).collect()
    }

    fn dict(&mut self, entries: &[(Item, Item)], depth: usize) -> Result<Value> {
        let mut out: Vec<(Value, Value)> = Vec::with_capacity(entries.len());
        let mut seen: HashMap<KeyId, usize> = HashMap::new();
        for (k, v) in entries {
            let key = self.value(*k, depth + 1)?;
            let value = self.value(*v, depth + 1)?;
            let id = match &key {
                Value::None => Some(KeyId::None),
                Value::Bool(b) => Some(KeyId::Int(*b as i64)),
                Value::Int(i) => Some(KeyId::Int(*i)),
                Value::Str(s) => {
                    self.charge(s.len())?;
                    Some(KeyId::Str(s.clone()))
                }
                _ => None,
            };
            match id {
                Some(id) => match seen.get(&id) {
                    Some(&position) => {
                        if let Some(slot) = out.get_mut(position) {
                            slot.1 = value;
                        }
                    }
                    None => {
                        seen.insert(id, out.len());
                        out.push((key, value));
                    }
                },
                None => out.push((key, value)),
            }
        }
        Ok(Value::Dict(out))
    }
}
