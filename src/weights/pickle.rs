//! A pickle virtual machine that executes no code.
//!
//! Official StyleGAN2/StyleGAN3 training snapshots (`network-snapshot-*.pkl`) are Python pickles:
//! programs for a small stack machine which, run by Python, import modules and call functions.
//! StyleScope must read them without Python and without trusting them. This machine runs the
//! stack program itself but never imports or calls anything: each global a snapshot refers to is
//! checked against a short allow-list (`shared/reference/stylegan3.md` §7) the moment it is named,
//! and the few functions a snapshot applies (rebuild a tensor from a legacy torch storage blob,
//! numpy scalars, dtypes and arrays, `OrderedDict`, `EasyDict`, persistent objects) are
//! *interpreted* here. Anything else is refused with [`PickleError::UnknownGlobal`]. The Python
//! module source a persistent object carries is dropped unread.
//!
//! No input can make it panic. Every length read from the file is checked against the bytes that
//! remain before anything is allocated; the stack, the memo, the nesting depth of the result and
//! the total amount of decoded data (a small multiple of the input size) are bounded.
//!
//! Python object identity matters (a dict is memoized while empty and filled afterwards; a numpy
//! dtype is memoized before `BUILD` sets its byte order), so objects live in an arena (`heap`)
//! and the stack and memo hold `Item` handles. When the pickle stops, the result is copied out of
//! the arena into an owned tree of [`Value`]s of bounded depth (reference cycles are rejected).

use std::borrow::Cow;
use std::collections::HashMap;
use std::rc::Rc;

/// Most items on the stack at once.
const MAX_STACK: usize = 1 << 20;
/// Most MARKs open at once.
const MAX_MARKS: usize = 1 << 16;
/// Most memo entries.
const MAX_MEMO: usize = 1 << 22;
/// Deepest nesting of the decoded value (a snapshot needs about 30).
const MAX_DEPTH: usize = 200;
/// Most dimensions of a tensor or numpy array.
const MAX_NDIM: usize = 32;
/// Longest decimal integer in a text opcode (Python's own int/str conversion limit).
const MAX_DECIMAL_DIGITS: usize = 4300;
/// Most arguments of a call, and most entries of a dict the machine itself looks into.
const MAX_SMALL: usize = 64;
/// Decoded data (arena, storages, tensors, arrays, result tree) may take this many bytes per input
/// byte ...
const BUDGET_PER_INPUT_BYTE: usize = 16;
/// ... plus this many.
const BUDGET_BASE: usize = 64 << 20;

/// The integer that opens a legacy `torch.save` stream (0x1950a86a20f9469cfc6c), little-endian.
const TORCH_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
/// The legacy `torch.save` protocol version.
const TORCH_PROTOCOL_VERSION: i64 = 1001;

/// Why a pickle could not be read. Every message is one line.
#[derive(Debug, thiserror::Error)]
pub enum PickleError {
    #[error("not a pickle ({}): expected 0x80, the PROTO opcode of a protocol 2-5 pickle", describe_first_byte(.first_byte))]
    NotAPickle { first_byte: Option<u8> },
    #[error("unsupported pickle protocol {protocol} at byte {at} (supported: 2 to 5)")]
    UnsupportedProtocol { protocol: u8, at: usize },
    #[error("truncated at byte {at}: {needed} more bytes needed, {available} left")]
    Truncated { at: usize, needed: u64, available: usize },
    #[error("unknown opcode 0x{opcode:02x} at byte {at}")]
    UnknownOpcode { opcode: u8, at: usize },
    #[error("unsupported opcode {name} (0x{opcode:02x}) at byte {at}: official snapshots never use it")]
    UnsupportedOpcode { name: &'static str, opcode: u8, at: usize },
    #[error("unknown global '{module}.{name}': not something an official snapshot contains")]
    UnknownGlobal { module: String, name: String },
    #[error("malformed {what} at byte {at}: {detail}")]
    Malformed { what: &'static str, at: usize, detail: String },
    #[error("limit exceeded at byte {at}: {detail}")]
    LimitExceeded { at: usize, detail: String },
    #[error("not an official StyleGAN snapshot: {0}")]
    NotASnapshot(String),
}

fn describe_first_byte(first: &Option<u8>) -> String {
    match first {
        None => "empty input".to_string(),
        Some(b) => format!("first byte 0x{b:02x}"),
    }
}

fn malformed(what: &'static str, at: usize, detail: impl Into<String>) -> PickleError {
    PickleError::Malformed { what, at, detail: detail.into() }
}

fn limit(at: usize, detail: impl Into<String>) -> PickleError {
    PickleError::LimitExceeded { at, detail: detail.into() }
}

type Result<T> = std::result::Result<T, PickleError>;

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
    /// dropped unread).
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
    fn len(&self) -> usize {
        match self {
            ArrayData::Float(v) => v.len(),
            ArrayData::Int(v) => v.len(),
            ArrayData::Bool(v) => v.len(),
        }
    }
}

/// Runs the pickle in `bytes` (protocol 2 to 5) and returns the value it builds.
pub fn parse(bytes: &[u8]) -> Result<Value> {
    match bytes.first() {
        Some(0x80) => {}
        first => return Err(PickleError::NotAPickle { first_byte: first.copied() }),
    }
    let budget = bytes.len().saturating_mul(BUDGET_PER_INPUT_BYTE).saturating_add(BUDGET_BASE);
    let mut machine = Machine::new(bytes, 0, false, budget);
    let root = machine.load()?;
    let mut resolver =
        Resolver { heap: &machine.heap, budget: machine.budget, budget_total: machine.budget_total, at: machine.at() };
    resolver.value(root, 0)
}

// ------------------------------------------------------------------------------------------------
// The machine's own representation

/// What the stack and the memo hold: small values inline, everything else a handle into the heap.
#[derive(Clone, Copy, Debug)]
enum Item {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Ref(usize),
}

enum Obj<'a> {
    BigInt(Vec<u8>),
    Str(String),
    /// `at`: where the bytes start in the file (for messages about storage blobs).
    Bytes {
        data: Cow<'a, [u8]>,
        at: usize,
    },
    Tuple(Vec<Item>),
    List(Vec<Item>),
    Dict(Vec<(Item, Item)>),
    Set(Vec<Item>),
    Global(Global),
    Storage(Storage),
    Tensor(Tensor),
    Dtype(Dtype),
    /// `numpy.core.multiarray._reconstruct` made it; BUILD fills it.
    Array(Option<NdArray>),
    Persistent {
        class_name: String,
        state: Item,
    },
}

impl Obj<'_> {
    fn type_name(&self) -> &'static str {
        match self {
            Obj::BigInt(_) => "an int",
            Obj::Str(_) => "a str",
            Obj::Bytes { .. } => "bytes",
            Obj::Tuple(_) => "a tuple",
            Obj::List(_) => "a list",
            Obj::Dict(_) => "a dict",
            Obj::Set(_) => "a set",
            Obj::Global(_) => "a global",
            Obj::Storage(_) => "a torch storage",
            Obj::Tensor(_) => "a tensor",
            Obj::Dtype(_) => "a numpy dtype",
            Obj::Array(_) => "a numpy array",
            Obj::Persistent { .. } => "a persistent object",
        }
    }
}

struct Global {
    module: String,
    name: String,
    kind: Callable,
}

/// The allowed globals, by what the machine does with them.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Callable {
    PersistentObject,
    OrderedDict,
    EasyDict,
    RebuildParameter,
    RebuildTensorV2,
    LoadFromBytes,
    NumpyScalar,
    NumpyDtype,
    NumpyReconstruct,
    NumpyNdarray,
    Set,
    /// `_codecs.encode(str, 'latin1')`: how protocol 2 writes `bytes`.
    CodecsEncode,
    /// `torch.FloatStorage` etc., only inside storage blobs.
    StorageClass(Elem),
}

/// The allow-list. `in_blob`: inside a legacy torch storage blob only the storage classes exist.
fn allowed_global(module: &str, name: &str, in_blob: bool) -> Option<Callable> {
    if in_blob {
        return if module == "torch" { Elem::from_storage_class(name).map(Callable::StorageClass) } else { None };
    }
    Some(match (module, name) {
        ("torch_utils.persistence", "_reconstruct_persistent_obj") => Callable::PersistentObject,
        ("collections", "OrderedDict") => Callable::OrderedDict,
        ("dnnlib.util", "EasyDict") => Callable::EasyDict,
        ("torch._utils", "_rebuild_parameter") => Callable::RebuildParameter,
        ("torch._utils", "_rebuild_tensor_v2") => Callable::RebuildTensorV2,
        ("torch.storage", "_load_from_bytes") => Callable::LoadFromBytes,
        ("numpy.core.multiarray" | "numpy._core.multiarray", "scalar") => Callable::NumpyScalar,
        ("numpy.core.multiarray" | "numpy._core.multiarray", "_reconstruct") => Callable::NumpyReconstruct,
        ("numpy", "dtype") => Callable::NumpyDtype,
        ("numpy", "ndarray") => Callable::NumpyNdarray,
        ("builtins" | "__builtin__", "set") => Callable::Set,
        ("_codecs", "encode") => Callable::CodecsEncode,
        _ => return None,
    })
}

/// Element types of torch storages.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Elem {
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
    fn from_storage_class(name: &str) -> Option<Self> {
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

    fn size(self) -> usize {
        match self {
            Elem::F64 | Elem::I64 => 8,
            Elem::F32 | Elem::I32 => 4,
            Elem::F16 | Elem::BF16 => 2,
            Elem::U8 | Elem::Bool => 1,
        }
    }

    /// Little-endian raw elements to f32.
    fn decode(self, raw: &[u8]) -> Vec<f32> {
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
fn le<const N: usize>(chunk: &[u8]) -> [u8; N] {
    chunk.try_into().unwrap_or([0; N])
}

fn f16_to_f32(h: u16) -> f32 {
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
struct Storage {
    elem: Elem,
    numel: usize,
    data: Option<Rc<Vec<f32>>>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Float,
    Int,
    UInt,
    Bool,
}

/// A numpy dtype (numbers and bools only).
#[derive(Clone, Copy, Debug)]
struct Dtype {
    kind: Kind,
    size: usize,
    big_endian: bool,
}

impl Dtype {
    /// From a descriptor such as `f8`, `<i4`, `|b1`, `u1`.
    fn parse(descr: &str) -> Option<Self> {
        let (big_endian, rest) = match descr.as_bytes().first() {
            Some(b'>') => (true, descr.get(1..)?),
            Some(b'<' | b'|' | b'=') => (false, descr.get(1..)?),
            _ => (false, descr),
        };
        let kind = match rest.as_bytes().first()? {
            b'f' => Kind::Float,
            b'i' => Kind::Int,
            b'u' => Kind::UInt,
            b'b' => Kind::Bool,
            _ => return None,
        };
        let size: usize = rest.get(1..)?.parse().ok()?;
        let ok = match kind {
            Kind::Float => matches!(size, 2 | 4 | 8),
            Kind::Int => matches!(size, 1 | 2 | 4 | 8),
            Kind::UInt => matches!(size, 1 | 2 | 4),
            Kind::Bool => size == 1,
        };
        ok.then_some(Dtype { kind, size, big_endian })
    }

    fn descr(&self) -> String {
        let order = if self.size == 1 {
            '|'
        } else if self.big_endian {
            '>'
        } else {
            '<'
        };
        let kind = match self.kind {
            Kind::Float => 'f',
            Kind::Int => 'i',
            Kind::UInt => 'u',
            Kind::Bool => 'b',
        };
        format!("{order}{kind}{}", self.size)
    }

    /// Raw elements to numbers (`raw.len()` must be a multiple of `size`).
    fn decode(&self, raw: &[u8]) -> ArrayData {
        let elems = raw.chunks_exact(self.size).map(|c| {
            let mut b = [0u8; 8];
            for (dst, src) in b.iter_mut().zip(c) {
                *dst = *src;
            }
            if self.big_endian {
                if let Some(head) = b.get_mut(..self.size) {
                    head.reverse();
                }
            }
            b // little-endian, zero-padded to 8 bytes
        });
        match (self.kind, self.size) {
            (Kind::Float, 2) => {
                ArrayData::Float(elems.map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])) as f64).collect())
            }
            (Kind::Float, 4) => {
                ArrayData::Float(elems.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64).collect())
            }
            (Kind::Float, _) => ArrayData::Float(elems.map(f64::from_le_bytes).collect()),
            (Kind::Int, n) => ArrayData::Int(
                elems
                    .map(|b| {
                        // Sign-extend from n bytes.
                        let shift = 64 - 8 * n as u32;
                        (i64::from_le_bytes(b) << shift) >> shift
                    })
                    .collect(),
            ),
            (Kind::UInt, _) => ArrayData::Int(elems.map(i64::from_le_bytes).collect()),
            (Kind::Bool, _) => ArrayData::Bool(elems.map(|b| b[0] != 0).collect()),
        }
    }
}

// ------------------------------------------------------------------------------------------------
// The machine

struct Machine<'a> {
    data: &'a [u8],
    /// Offset of `data[0]` in the file (storage blobs are parsed in place).
    base: usize,
    pos: usize,
    /// Inside a legacy torch storage blob (other globals; persistent ids allowed).
    in_blob: bool,
    stack: Vec<Item>,
    /// The metastack: stack lengths at each open MARK.
    marks: Vec<usize>,
    memo: HashMap<u32, Item>,
    heap: Vec<Obj<'a>>,
    /// Decoded bytes still allowed, of `budget_total`.
    budget: usize,
    budget_total: usize,
    /// Inside a storage blob: storage key -> heap index of the storage its persistent id named.
    storages: HashMap<String, usize>,
}

impl<'a> Machine<'a> {
    fn new(data: &'a [u8], base: usize, in_blob: bool, budget: usize) -> Self {
        Machine {
            data,
            base,
            pos: 0,
            in_blob,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            heap: Vec::new(),
            budget,
            budget_total: budget,
            storages: HashMap::new(),
        }
    }

    /// Current position in the file.
    fn at(&self) -> usize {
        self.base.saturating_add(self.pos)
    }

    fn charge(&mut self, bytes: usize, at: usize) -> Result<()> {
        match self.budget.checked_sub(bytes) {
            Some(left) => {
                self.budget = left;
                Ok(())
            }
            None => Err(limit(
                at,
                format!(
                    "decoded data would exceed {} bytes ({BUDGET_PER_INPUT_BYTE}x the file size + 64 MiB)",
                    self.budget_total
                ),
            )),
        }
    }

    fn alloc(&mut self, obj: Obj<'a>, at: usize) -> Result<Item> {
        let payload = match &obj {
            Obj::BigInt(b) => b.len(),
            Obj::Str(s) => s.len(),
            Obj::Bytes { data: Cow::Owned(b), .. } => b.len(),
            _ => 0,
        };
        self.charge(std::mem::size_of::<Obj>().saturating_add(payload), at)?;
        self.heap.push(obj);
        Ok(Item::Ref(self.heap.len() - 1))
    }

    fn obj(&self, item: Item) -> Option<&Obj<'a>> {
        match item {
            Item::Ref(i) => self.heap.get(i),
            _ => None,
        }
    }

    fn describe(&self, item: Item) -> &'static str {
        match item {
            Item::None => "None",
            Item::Bool(_) => "a bool",
            Item::Int(_) => "an int",
            Item::Float(_) => "a float",
            Item::Ref(_) => self.obj(item).map_or("nothing", Obj::type_name),
        }
    }

    fn str_of(&self, item: Item) -> Option<&str> {
        match self.obj(item) {
            Some(Obj::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// Bytes, or a str holding bytes as latin-1 (how Python 2 pickled them).
    fn bytes_of(&self, item: Item) -> Option<Cow<'_, [u8]>> {
        match self.obj(item) {
            Some(Obj::Bytes { data, .. }) => Some(Cow::Borrowed(data.as_ref())),
            Some(Obj::Str(s)) => latin1_encode(s).map(Cow::Owned),
            _ => None,
        }
    }

    // -- reading the input --

    fn take(&mut self, n: u64) -> Result<&'a [u8]> {
        let at = self.at();
        let data: &'a [u8] = self.data;
        let rest = data.get(self.pos..).unwrap_or(&[]);
        let available = rest.len();
        let chunk = usize::try_from(n).ok().and_then(|n| rest.get(..n));
        match chunk {
            Some(chunk) => {
                self.pos += chunk.len();
                Ok(chunk)
            }
            None => Err(PickleError::Truncated { at, needed: n, available }),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(le(self.take(N as u64)?))
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(u8::from_le_bytes(self.array()?))
    }

    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A 4-byte signed length (BINSTRING, LONG4).
    fn len_i32(&mut self, what: &'static str, at: usize) -> Result<u64> {
        let n = self.i32()?;
        u64::try_from(n).map_err(|_| malformed(what, at, format!("negative length {n}")))
    }

    /// The text up to the next newline (which is consumed, not returned).
    fn line(&mut self) -> Result<&'a [u8]> {
        let at = self.at();
        let data: &'a [u8] = self.data;
        let rest = data.get(self.pos..).unwrap_or(&[]);
        match rest.iter().position(|&b| b == b'\n') {
            Some(n) => {
                self.pos += n + 1;
                Ok(rest.get(..n).unwrap_or(&[]))
            }
            None => Err(PickleError::Truncated { at, needed: rest.len() as u64 + 1, available: rest.len() }),
        }
    }

    fn text_line(&mut self, what: &'static str, at: usize) -> Result<&'a str> {
        let line = self.line()?;
        std::str::from_utf8(line).map_err(|_| malformed(what, at, "text is not UTF-8"))
    }

    // -- stack, metastack, memo --

    fn push(&mut self, item: Item) -> Result<()> {
        if self.stack.len() >= MAX_STACK {
            return Err(limit(self.at(), format!("more than {MAX_STACK} items on the stack")));
        }
        self.stack.push(item);
        Ok(())
    }

    /// The index of the first stack item above the innermost MARK.
    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self, at: usize) -> Result<Item> {
        if self.stack.len() <= self.floor() {
            return Err(malformed("pickle", at, "stack underflow"));
        }
        self.stack.pop().ok_or_else(|| malformed("pickle", at, "stack underflow"))
    }

    fn top(&self, at: usize) -> Result<Item> {
        if self.stack.len() <= self.floor() {
            return Err(malformed("pickle", at, "stack underflow"));
        }
        self.stack.last().copied().ok_or_else(|| malformed("pickle", at, "stack underflow"))
    }

    /// The items pushed since the innermost MARK, which is closed.
    fn pop_mark(&mut self, at: usize) -> Result<Vec<Item>> {
        let mark = self.marks.pop().ok_or_else(|| malformed("pickle", at, "no MARK to close"))?;
        if mark > self.stack.len() {
            return Err(malformed("pickle", at, "MARK above the stack"));
        }
        Ok(self.stack.split_off(mark))
    }

    fn memo_put(&mut self, index: u32, at: usize) -> Result<()> {
        let item = self.top(at)?;
        if !self.memo.contains_key(&index) {
            if self.memo.len() >= MAX_MEMO {
                return Err(limit(at, format!("more than {MAX_MEMO} memo entries")));
            }
            self.charge(32, at)?;
        }
        self.memo.insert(index, item);
        Ok(())
    }

    fn memo_get(&mut self, index: u32, at: usize) -> Result<()> {
        let item = self
            .memo
            .get(&index)
            .copied()
            .ok_or_else(|| malformed("memo reference", at, format!("entry {index} was never stored")))?;
        self.push(item)
    }

    fn memo_index(text: &str, at: usize) -> Result<u32> {
        text.trim().parse().map_err(|_| malformed("memo index", at, format!("'{text}' is not an index")))
    }

    // -- the program --

    /// Runs one pickle, from the current position to its STOP, with a fresh stack and memo.
    fn load(&mut self) -> Result<Item> {
        self.stack.clear();
        self.marks.clear();
        self.memo.clear();
        loop {
            let at = self.at();
            let opcode = self.byte()?;
            match opcode {
                // Framing and control.
                0x80 => {
                    // PROTO
                    let protocol = self.byte()?;
                    if !(2..=5).contains(&protocol) {
                        return Err(PickleError::UnsupportedProtocol { protocol, at });
                    }
                }
                0x95 => {
                    // FRAME: only a hint for buffering; check that the frame is there.
                    let n = self.u64()?;
                    let available = self.data.len().saturating_sub(self.pos);
                    if n > available as u64 {
                        return Err(PickleError::Truncated { at: self.at(), needed: n, available });
                    }
                }
                b'.' => return self.pop(at), // STOP
                b'(' => {
                    // MARK
                    if self.marks.len() >= MAX_MARKS {
                        return Err(limit(at, format!("more than {MAX_MARKS} nested MARKs")));
                    }
                    self.marks.push(self.stack.len());
                }
                b'0' => {
                    // POP (of an empty mark frame: the mark itself, as Python does)
                    if self.stack.len() <= self.floor() && !self.marks.is_empty() {
                        self.pop_mark(at)?;
                    } else {
                        self.pop(at)?;
                    }
                }
                b'1' => {
                    // POP_MARK
                    self.pop_mark(at)?;
                }
                b'2' => {
                    // DUP
                    let item = self.top(at)?;
                    self.push(item)?;
                }

                // Constants and numbers.
                b'N' => self.push(Item::None)?,
                0x88 => self.push(Item::Bool(true))?,
                0x89 => self.push(Item::Bool(false))?,
                b'I' => {
                    // INT (text; 00 and 01 are False and True)
                    let item = match self.line()? {
                        b"00" => Item::Bool(false),
                        b"01" => Item::Bool(true),
                        text => self.decimal(text, at)?,
                    };
                    self.push(item)?;
                }
                b'J' => {
                    let v = self.i32()?;
                    self.push(Item::Int(v as i64))?;
                }
                b'K' => {
                    let v = self.byte()?;
                    self.push(Item::Int(v as i64))?;
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(Item::Int(v as i64))?;
                }
                b'L' => {
                    // LONG (text, optional trailing L)
                    let text = self.line()?;
                    let text = text.strip_suffix(b"L").unwrap_or(text);
                    let item = self.decimal(text, at)?;
                    self.push(item)?;
                }
                0x8a => {
                    // LONG1
                    let n = self.byte()?;
                    let bytes = self.take(n as u64)?;
                    let item = self.int_from_le(bytes, at)?;
                    self.push(item)?;
                }
                0x8b => {
                    // LONG4
                    let n = self.len_i32("LONG4", at)?;
                    let bytes = self.take(n)?;
                    let item = self.int_from_le(bytes, at)?;
                    self.push(item)?;
                }
                b'G' => {
                    // BINFLOAT (big-endian)
                    let v = f64::from_be_bytes(self.array()?);
                    self.push(Item::Float(v))?;
                }
                b'F' => {
                    // FLOAT (text)
                    let text = self.text_line("FLOAT", at)?;
                    let v: f64 =
                        text.trim().parse().map_err(|_| malformed("FLOAT", at, format!("'{text}' is not a number")))?;
                    self.push(Item::Float(v))?;
                }

                // Strings and bytes.
                b'S' => {
                    // STRING (quoted, escaped; Python 2 str, decoded as latin-1)
                    let text = self.line()?;
                    let bytes = unquote_string(text).ok_or_else(|| malformed("STRING", at, "bad quoting or escape"))?;
                    self.push_str(latin1_decode(&bytes), at)?;
                }
                b'T' => {
                    let n = self.len_i32("BINSTRING", at)?;
                    let bytes = self.take(n)?;
                    self.push_str(latin1_decode(bytes), at)?;
                }
                b'U' => {
                    let n = self.byte()?;
                    let bytes = self.take(n as u64)?;
                    self.push_str(latin1_decode(bytes), at)?;
                }
                b'X' | 0x8c | 0x8d => {
                    // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
                    let n = match opcode {
                        b'X' => self.u32()? as u64,
                        0x8c => self.byte()? as u64,
                        _ => self.u64()?,
                    };
                    let bytes = self.take(n)?;
                    let text =
                        std::str::from_utf8(bytes).map_err(|_| malformed("unicode string", at, "invalid UTF-8"))?;
                    self.push_str(text.to_string(), at)?;
                }
                b'V' => {
                    // UNICODE (raw-unicode-escape text)
                    let text = self.line()?;
                    let text = raw_unicode_unescape(text).ok_or_else(|| malformed("UNICODE", at, "bad \\u escape"))?;
                    self.push_str(text, at)?;
                }
                b'B' | b'C' | 0x8e | 0x96 => {
                    // BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8
                    let n = match opcode {
                        b'B' => self.u32()? as u64,
                        b'C' => self.byte()? as u64,
                        _ => self.u64()?,
                    };
                    let data_at = self.at();
                    let bytes = self.take(n)?;
                    let item = self.alloc(Obj::Bytes { data: Cow::Borrowed(bytes), at: data_at }, at)?;
                    self.push(item)?;
                }

                // Containers.
                b'}' => self.push_obj(Obj::Dict(Vec::new()), at)?,
                b']' => self.push_obj(Obj::List(Vec::new()), at)?,
                b')' => self.push_obj(Obj::Tuple(Vec::new()), at)?,
                0x8f => self.push_obj(Obj::Set(Vec::new()), at)?,
                b'd' => {
                    let items = self.pop_mark(at)?;
                    let pairs = pairs(items).ok_or_else(|| malformed("DICT", at, "odd number of items"))?;
                    self.push_obj(Obj::Dict(pairs), at)?;
                }
                b'l' => {
                    let items = self.pop_mark(at)?;
                    self.push_obj(Obj::List(items), at)?;
                }
                b't' => {
                    let items = self.pop_mark(at)?;
                    self.push_obj(Obj::Tuple(items), at)?;
                }
                0x85..=0x87 => {
                    // TUPLE1, TUPLE2, TUPLE3
                    let n = (opcode - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop(at)?);
                    }
                    items.reverse();
                    self.push_obj(Obj::Tuple(items), at)?;
                }
                0x91 => {
                    // FROZENSET
                    let items = self.pop_mark(at)?;
                    self.push_obj(Obj::Set(items), at)?;
                }
                b'a' => {
                    let item = self.pop(at)?;
                    self.extend(vec![item], "APPEND", at)?;
                }
                b'e' => {
                    let items = self.pop_mark(at)?;
                    self.extend(items, "APPENDS", at)?;
                }
                0x90 => {
                    let items = self.pop_mark(at)?;
                    self.extend(items, "ADDITEMS", at)?;
                }
                b's' => {
                    let value = self.pop(at)?;
                    let key = self.pop(at)?;
                    self.set_items(vec![(key, value)], "SETITEM", at)?;
                }
                b'u' => {
                    let items = self.pop_mark(at)?;
                    let pairs = pairs(items).ok_or_else(|| malformed("SETITEMS", at, "odd number of items"))?;
                    self.set_items(pairs, "SETITEMS", at)?;
                }

                // Memo.
                b'g' => {
                    let index = Self::memo_index(self.text_line("GET", at)?, at)?;
                    self.memo_get(index, at)?;
                }
                b'h' => {
                    let index = self.byte()? as u32;
                    self.memo_get(index, at)?;
                }
                b'j' => {
                    let index = self.u32()?;
                    self.memo_get(index, at)?;
                }
                b'p' => {
                    let index = Self::memo_index(self.text_line("PUT", at)?, at)?;
                    self.memo_put(index, at)?;
                }
                b'q' => {
                    let index = self.byte()? as u32;
                    self.memo_put(index, at)?;
                }
                b'r' => {
                    let index = self.u32()?;
                    self.memo_put(index, at)?;
                }
                0x94 => {
                    // MEMOIZE
                    let index = u32::try_from(self.memo.len()).map_err(|_| limit(at, "memo too large"))?;
                    self.memo_put(index, at)?;
                }

                // Globals and calls.
                b'c' => {
                    // GLOBAL
                    let module = self.text_line("GLOBAL", at)?;
                    let name = self.text_line("GLOBAL", at)?;
                    self.push_global(module, name, at)?;
                }
                0x93 => {
                    // STACK_GLOBAL
                    let name = self.pop(at)?;
                    let module = self.pop(at)?;
                    let (Some(module), Some(name)) = (self.str_of(module), self.str_of(name)) else {
                        return Err(malformed("STACK_GLOBAL", at, "module and name must be strings"));
                    };
                    let (module, name) = (module.to_string(), name.to_string());
                    self.push_global(&module, &name, at)?;
                }
                b'R' => {
                    // REDUCE
                    let args = self.pop(at)?;
                    let callable = self.pop(at)?;
                    let result = self.call(callable, args, at)?;
                    self.push(result)?;
                }
                b'b' => {
                    // BUILD
                    let state = self.pop(at)?;
                    let target = self.top(at)?;
                    self.build(target, state, at)?;
                }
                0x81 => {
                    // NEWOBJ
                    let args = self.pop(at)?;
                    let class = self.pop(at)?;
                    let result = self.new_object(class, args, None, at)?;
                    self.push(result)?;
                }
                0x92 => {
                    // NEWOBJ_EX
                    let kwargs = self.pop(at)?;
                    let args = self.pop(at)?;
                    let class = self.pop(at)?;
                    let result = self.new_object(class, args, Some(kwargs), at)?;
                    self.push(result)?;
                }
                b'Q' => {
                    // BINPERSID
                    let pid = self.pop(at)?;
                    let result = self.persistent_load(pid, at)?;
                    self.push(result)?;
                }
                b'P' => {
                    // PERSID (text id)
                    let text = self.text_line("PERSID", at)?.to_string();
                    let pid = self.alloc(Obj::Str(text), at)?;
                    let result = self.persistent_load(pid, at)?;
                    self.push(result)?;
                }

                // Known but never in a snapshot.
                0x82 | 0x83 | 0x84 | b'i' | b'o' | 0x97 | 0x98 => {
                    let name = match opcode {
                        0x82 => "EXT1",
                        0x83 => "EXT2",
                        0x84 => "EXT4",
                        b'i' => "INST",
                        b'o' => "OBJ",
                        0x97 => "NEXT_BUFFER",
                        _ => "READONLY_BUFFER",
                    };
                    return Err(PickleError::UnsupportedOpcode { name, opcode, at });
                }
                _ => return Err(PickleError::UnknownOpcode { opcode, at }),
            }
        }
    }

    fn push_obj(&mut self, obj: Obj<'a>, at: usize) -> Result<()> {
        let item = self.alloc(obj, at)?;
        self.push(item)
    }

    fn push_str(&mut self, text: String, at: usize) -> Result<()> {
        self.push_obj(Obj::Str(text), at)
    }

    fn push_global(&mut self, module: &str, name: &str, at: usize) -> Result<()> {
        let kind = allowed_global(module, name, self.in_blob)
            .ok_or_else(|| PickleError::UnknownGlobal { module: module.to_string(), name: name.to_string() })?;
        self.push_obj(Obj::Global(Global { module: module.to_string(), name: name.to_string(), kind }), at)
    }

    /// APPEND(S) to a list, ADDITEMS to a set.
    fn extend(&mut self, items: Vec<Item>, op: &'static str, at: usize) -> Result<()> {
        self.charge(items.len().saturating_mul(std::mem::size_of::<Item>()), at)?;
        let target = self.top(at)?;
        let found = self.describe(target);
        match (op, self.obj_mut(target)) {
            ("APPEND" | "APPENDS", Some(Obj::List(list))) => list.extend(items),
            ("ADDITEMS", Some(Obj::Set(set))) => set.extend(items),
            _ => return Err(malformed(op, at, format!("cannot add items to {found}"))),
        }
        Ok(())
    }

    /// SETITEM(S) on a dict (duplicate keys are resolved when the result is read out).
    fn set_items(&mut self, pairs: Vec<(Item, Item)>, op: &'static str, at: usize) -> Result<()> {
        self.charge(pairs.len().saturating_mul(2 * std::mem::size_of::<Item>()), at)?;
        let target = self.top(at)?;
        let found = self.describe(target);
        match self.obj_mut(target) {
            Some(Obj::Dict(dict)) => dict.extend(pairs),
            _ => return Err(malformed(op, at, format!("cannot set items of {found}"))),
        }
        Ok(())
    }

    fn obj_mut(&mut self, item: Item) -> Option<&mut Obj<'a>> {
        match item {
            Item::Ref(i) => self.heap.get_mut(i),
            _ => None,
        }
    }

    /// A text integer (INT, LONG): i64 when it fits.
    fn decimal(&mut self, text: &[u8], at: usize) -> Result<Item> {
        let text = std::str::from_utf8(text).map_err(|_| malformed("integer", at, "not ASCII"))?.trim();
        let (negative, digits) = match text.as_bytes().first() {
            Some(b'-') => (true, text.get(1..).unwrap_or("")),
            Some(b'+') => (false, text.get(1..).unwrap_or("")),
            _ => (false, text),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed("integer", at, format!("'{text}' is not an integer")));
        }
        if digits.len() > MAX_DECIMAL_DIGITS {
            return Err(limit(at, format!("integer with more than {MAX_DECIMAL_DIGITS} digits")));
        }
        if let Ok(v) = text.parse::<i64>() {
            return Ok(Item::Int(v));
        }
        let bytes = decimal_to_twos_complement(digits.as_bytes(), negative);
        self.int_from_le(&bytes, at)
    }

    /// A little-endian two's complement integer (LONG1, LONG4): i64 when it fits.
    fn int_from_le(&mut self, bytes: &[u8], at: usize) -> Result<Item> {
        let negative = bytes.last().is_some_and(|&b| b & 0x80 != 0);
        let fill = if negative { 0xff } else { 0 };
        // Drop sign-extension bytes that do not change the value.
        let mut len = bytes.len();
        while len > 1 {
            match (bytes.get(len - 1), bytes.get(len - 2)) {
                (Some(&last), Some(&prev)) if last == fill && (prev & 0x80) == (fill & 0x80) => len -= 1,
                _ => break,
            }
        }
        let bytes = bytes.get(..len).unwrap_or(&[]);
        if bytes.len() <= 8 {
            let mut full = [fill; 8];
            for (dst, src) in full.iter_mut().zip(bytes) {
                *dst = *src;
            }
            return Ok(Item::Int(i64::from_le_bytes(full)));
        }
        self.alloc(Obj::BigInt(bytes.to_vec()), at)
    }

    // -- interpreting the allowed globals --

    /// The items of a tuple with at most MAX_SMALL entries (call arguments, small records).
    fn small_tuple(&self, item: Item, what: &'static str, at: usize) -> Result<Vec<Item>> {
        match self.obj(item) {
            Some(Obj::Tuple(items)) if items.len() <= MAX_SMALL => Ok(items.clone()),
            Some(Obj::Tuple(items)) => Err(malformed(what, at, format!("{} items", items.len()))),
            _ => Err(malformed(what, at, format!("expected a tuple, found {}", self.describe(item)))),
        }
    }

    /// The entries of a dict with at most MAX_SMALL entries.
    fn small_dict(&self, item: Item, what: &'static str, at: usize) -> Result<Vec<(Item, Item)>> {
        match self.obj(item) {
            Some(Obj::Dict(entries)) if entries.len() <= MAX_SMALL => Ok(entries.clone()),
            Some(Obj::Dict(entries)) => Err(malformed(what, at, format!("{} entries", entries.len()))),
            _ => Err(malformed(what, at, format!("expected a dict, found {}", self.describe(item)))),
        }
    }

    /// The value of the string key `key` (the last one stored, as in Python).
    fn lookup(&self, entries: &[(Item, Item)], key: &str) -> Option<Item> {
        entries.iter().rev().find(|(k, _)| self.str_of(*k) == Some(key)).map(|(_, v)| *v)
    }

    /// Non-negative integers of a tuple or list (sizes, strides, shapes).
    fn dims(&self, item: Item, what: &'static str, at: usize) -> Result<Vec<usize>> {
        let items = match self.obj(item) {
            Some(Obj::Tuple(items) | Obj::List(items)) => items,
            _ => return Err(malformed(what, at, format!("expected a tuple of ints, found {}", self.describe(item)))),
        };
        if items.len() > MAX_NDIM {
            return Err(malformed(what, at, format!("{} dimensions (at most {MAX_NDIM})", items.len())));
        }
        items
            .iter()
            .map(|item| match item {
                Item::Int(v) => usize::try_from(*v).map_err(|_| malformed(what, at, format!("negative value {v}"))),
                other => Err(malformed(what, at, format!("expected an int, found {}", self.describe(*other)))),
            })
            .collect()
    }

    fn global_kind(&self, item: Item) -> Option<Callable> {
        match self.obj(item) {
            Some(Obj::Global(g)) => Some(g.kind),
            _ => None,
        }
    }

    /// REDUCE: what the allowed callable would return, computed here.
    fn call(&mut self, callable: Item, args: Item, at: usize) -> Result<Item> {
        let Some(kind) = self.global_kind(callable) else {
            return Err(malformed("REDUCE", at, format!("cannot call {}", self.describe(callable))));
        };
        let args = self.small_tuple(args, "REDUCE arguments", at)?;
        match kind {
            Callable::PersistentObject => self.persistent_object(&args, at),
            Callable::OrderedDict | Callable::EasyDict => self.new_dict(&args, at),
            Callable::RebuildParameter => match args.as_slice() {
                [tensor, ..] if matches!(self.obj(*tensor), Some(Obj::Tensor(_))) => Ok(*tensor),
                _ => Err(malformed("torch Parameter", at, "expected (tensor, requires_grad, hooks)")),
            },
            Callable::RebuildTensorV2 => self.rebuild_tensor(&args, at),
            Callable::LoadFromBytes => self.load_from_bytes(&args, at),
            Callable::NumpyScalar => self.numpy_scalar(&args, at),
            Callable::NumpyDtype => {
                let dtype = match args.as_slice() {
                    [descr, ..] => self.str_of(*descr).and_then(Dtype::parse),
                    [] => None,
                };
                let dtype = dtype.ok_or_else(|| {
                    let descr = args.first().and_then(|d| self.str_of(*d)).unwrap_or("?");
                    malformed("numpy dtype", at, format!("unsupported dtype '{descr}' (numbers and bools only)"))
                })?;
                self.alloc(Obj::Dtype(dtype), at)
            }
            Callable::NumpyReconstruct => match args.as_slice() {
                [class, ..] if self.global_kind(*class) == Some(Callable::NumpyNdarray) => {
                    self.alloc(Obj::Array(None), at)
                }
                _ => Err(malformed("numpy array", at, "_reconstruct of something other than numpy.ndarray")),
            },
            Callable::Set => {
                let items = match args.as_slice() {
                    [] => Vec::new(),
                    [iterable] => match self.obj(*iterable) {
                        Some(Obj::List(items) | Obj::Tuple(items) | Obj::Set(items)) => items.clone(),
                        _ => return Err(malformed("set", at, "expected a list of items")),
                    },
                    _ => return Err(malformed("set", at, "too many arguments")),
                };
                self.charge(items.len().saturating_mul(std::mem::size_of::<Item>()), at)?;
                self.alloc(Obj::Set(items), at)
            }
            Callable::CodecsEncode => {
                let bytes = match args.as_slice() {
                    [text, encoding] if matches!(self.str_of(*encoding), Some("latin1" | "latin-1" | "iso-8859-1")) => {
                        self.str_of(*text).and_then(latin1_encode)
                    }
                    _ => None,
                };
                let bytes =
                    bytes.ok_or_else(|| malformed("bytes", at, "only _codecs.encode(str, 'latin1') is understood"))?;
                self.alloc(Obj::Bytes { data: Cow::Owned(bytes), at }, at)
            }
            Callable::NumpyNdarray | Callable::StorageClass(_) => {
                Err(malformed("REDUCE", at, "this global is never called by a snapshot"))
            }
        }
    }

    /// NEWOBJ / NEWOBJ_EX: `cls.__new__(cls, *args)`, only for the dict and set classes.
    fn new_object(&mut self, class: Item, _args: Item, kwargs: Option<Item>, at: usize) -> Result<Item> {
        if let Some(kwargs) = kwargs {
            if !matches!(self.obj(kwargs), Some(Obj::Dict(d)) if d.is_empty()) {
                return Err(malformed("NEWOBJ_EX", at, "keyword arguments are not supported"));
            }
        }
        match self.global_kind(class) {
            // `__new__` of a dict (sub)class makes an empty dict whatever the arguments.
            Some(Callable::OrderedDict | Callable::EasyDict) => self.alloc(Obj::Dict(Vec::new()), at),
            Some(Callable::Set) => self.alloc(Obj::Set(Vec::new()), at),
            _ => Err(malformed("NEWOBJ", at, format!("cannot instantiate {}", self.describe(class)))),
        }
    }

    /// `OrderedDict()`, `OrderedDict([(k, v), ...])`, `EasyDict(dict)`.
    fn new_dict(&mut self, args: &[Item], at: usize) -> Result<Item> {
        let entries = match args {
            [] => Vec::new(),
            [source] => match self.obj(*source) {
                Some(Obj::Dict(entries)) => entries.clone(),
                Some(Obj::List(items) | Obj::Tuple(items)) => {
                    let mut entries = Vec::with_capacity(items.len());
                    for item in items {
                        match self.obj(*item) {
                            Some(Obj::Tuple(pair) | Obj::List(pair)) => match pair.as_slice() {
                                [k, v] => entries.push((*k, *v)),
                                _ => return Err(malformed("dict", at, "items must be pairs")),
                            },
                            _ => return Err(malformed("dict", at, "items must be pairs")),
                        }
                    }
                    entries
                }
                _ => return Err(malformed("dict", at, "expected a dict or a list of pairs")),
            },
            _ => return Err(malformed("dict", at, "too many arguments")),
        };
        self.charge(entries.len().saturating_mul(2 * std::mem::size_of::<Item>()), at)?;
        self.alloc(Obj::Dict(entries), at)
    }

    /// `_reconstruct_persistent_obj(meta)`: keeps `class_name` and `state`; `module_src` is never
    /// looked at.
    fn persistent_object(&mut self, args: &[Item], at: usize) -> Result<Item> {
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
        self.alloc(Obj::Persistent { class_name, state }, at)
    }

    /// `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`.
    fn rebuild_tensor(&mut self, args: &[Item], at: usize) -> Result<Item> {
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
    fn load_from_bytes(&mut self, args: &[Item], at: usize) -> Result<Item> {
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
    fn storage_stream(&mut self) -> Result<Storage> {
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
    fn persistent_load(&mut self, pid: Item, at: usize) -> Result<Item> {
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

    /// `numpy.core.multiarray.scalar(dtype, raw)`: a number.
    fn numpy_scalar(&mut self, args: &[Item], at: usize) -> Result<Item> {
        let (dtype, raw) = match args {
            [dtype, raw] => match (self.obj(*dtype), self.bytes_of(*raw)) {
                (Some(Obj::Dtype(d)), Some(raw)) => (*d, raw),
                _ => return Err(malformed("numpy scalar", at, "expected (dtype, bytes)")),
            },
            _ => return Err(malformed("numpy scalar", at, "expected (dtype, bytes)")),
        };
        if raw.len() != dtype.size {
            return Err(malformed("numpy scalar", at, format!("{} bytes for a {}", raw.len(), dtype.descr())));
        }
        Ok(match dtype.decode(&raw) {
            ArrayData::Float(v) => Item::Float(v.first().copied().unwrap_or(0.0)),
            ArrayData::Int(v) => Item::Int(v.first().copied().unwrap_or(0)),
            ArrayData::Bool(v) => Item::Bool(v.first().copied().unwrap_or(false)),
        })
    }

    /// BUILD: numpy dtypes get their byte order, numpy arrays their contents; a dict (EasyDict,
    /// OrderedDict) may receive attributes, kept as items.
    fn build(&mut self, target: Item, state: Item, at: usize) -> Result<()> {
        let target_name = self.describe(target);
        match self.obj(target) {
            Some(Obj::Dtype(_)) => {
                // state = (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])
                let fields = self.small_tuple(state, "numpy dtype state", at)?;
                let order = fields.get(1).and_then(|o| self.str_of(*o)).map(str::to_string);
                if let Some(Obj::Dtype(dtype)) = self.obj_mut(target) {
                    match order.as_deref() {
                        Some(">") => dtype.big_endian = true,
                        Some("<") => dtype.big_endian = false,
                        Some("|" | "=") | None => {}
                        Some(other) => return Err(malformed("numpy dtype", at, format!("byte order '{other}'"))),
                    }
                }
                Ok(())
            }
            Some(Obj::Array(None)) => {
                let array = self.ndarray(state, at)?;
                if let Some(slot) = self.obj_mut(target) {
                    *slot = Obj::Array(Some(array));
                }
                Ok(())
            }
            Some(Obj::Dict(_)) => {
                let entries = match (state, self.obj(state)) {
                    (Item::None, _) => Vec::new(),
                    (_, Some(Obj::Dict(entries))) => entries.clone(),
                    _ => {
                        return Err(malformed("BUILD", at, format!("cannot apply {} to a dict", self.describe(state))))
                    }
                };
                self.set_items(entries, "BUILD", at)
            }
            _ => Err(malformed("BUILD", at, format!("cannot set the state of {target_name}"))),
        }
    }

    /// The state of `numpy.ndarray`: `(version, shape, dtype, is_fortran, raw)` (or without version).
    fn ndarray(&mut self, state: Item, at: usize) -> Result<NdArray> {
        let fields = self.small_tuple(state, "numpy array state", at)?;
        let (shape, dtype, fortran, raw) = match fields.as_slice() {
            [_, shape, dtype, fortran, raw] | [shape, dtype, fortran, raw] => (*shape, *dtype, *fortran, *raw),
            _ => return Err(malformed("numpy array", at, "unexpected state")),
        };
        let shape = self.dims(shape, "numpy array shape", at)?;
        let dtype = match self.obj(dtype) {
            Some(Obj::Dtype(d)) => *d,
            _ => return Err(malformed("numpy array", at, format!("dtype is {}", self.describe(dtype)))),
        };
        let fortran = match fortran {
            Item::Bool(b) => b,
            Item::Int(i) => i != 0,
            _ => return Err(malformed("numpy array", at, "is_fortran is not a bool")),
        };
        let numel =
            checked_numel(&shape).ok_or_else(|| limit(at, format!("numpy array of shape {shape:?} is too large")))?;
        let nbytes = numel.checked_mul(dtype.size).ok_or_else(|| limit(at, "numpy array too large"))?;
        let raw_len = self
            .bytes_of(raw)
            .map(|b| b.len())
            .ok_or_else(|| malformed("numpy array", at, "data is not bytes (object arrays are not supported)"))?;
        if raw_len != nbytes {
            return Err(malformed(
                "numpy array",
                at,
                format!("{raw_len} bytes of data for shape {shape:?} of {}", dtype.descr()),
            ));
        }
        self.charge(numel.saturating_mul(8), at)?;
        let data = match self.bytes_of(raw) {
            Some(raw) => dtype.decode(&raw),
            None => return Err(malformed("numpy array", at, "data is not bytes")),
        };
        let data = if fortran && shape.len() > 1 {
            // Column-major to row-major: read with Fortran strides in C order.
            let mut strides = Vec::with_capacity(shape.len());
            let mut step = 1usize;
            for &n in &shape {
                strides.push(step);
                step = step.saturating_mul(n);
            }
            let reorder = |data: ArrayData| -> Option<ArrayData> {
                Some(match data {
                    ArrayData::Float(v) => ArrayData::Float(gather(&v, 0, &shape, &strides)?),
                    ArrayData::Int(v) => ArrayData::Int(gather(&v, 0, &shape, &strides)?),
                    ArrayData::Bool(v) => ArrayData::Bool(gather(&v, 0, &shape, &strides)?),
                })
            };
            if numel == 0 {
                data
            } else {
                reorder(data).ok_or_else(|| malformed("numpy array", at, "bad Fortran layout"))?
            }
        } else {
            data
        };
        Ok(NdArray { shape, data })
    }
}

/// The number of elements of a shape, if it fits.
fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &n| acc.checked_mul(n))
}

/// Row-major contiguous (strides of size-1 dimensions do not matter).
fn is_contiguous(shape: &[usize], strides: &[usize]) -> bool {
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
fn gather<T: Copy>(src: &[T], offset: usize, shape: &[usize], strides: &[usize]) -> Option<Vec<T>> {
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

/// Items pushed after a MARK as (key, value) pairs.
fn pairs(items: Vec<Item>) -> Option<Vec<(Item, Item)>> {
    if !items.len().is_multiple_of(2) {
        return None;
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Some(out)
}

fn latin1_decode(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

fn latin1_encode(text: &str) -> Option<Vec<u8>> {
    text.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

/// Decimal digits to little-endian two's complement bytes (digits checked by the caller; quadratic,
/// so the caller bounds their number).
fn decimal_to_twos_complement(digits: &[u8], negative: bool) -> Vec<u8> {
    let mut magnitude: Vec<u8> = Vec::new();
    for &d in digits {
        let mut carry = d.wrapping_sub(b'0') as u32;
        for byte in magnitude.iter_mut() {
            let v = *byte as u32 * 10 + carry;
            *byte = v as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            magnitude.push(carry as u8);
            carry >>= 8;
        }
    }
    magnitude.push(0); // room for the sign bit
    if negative {
        let mut carry = 1u16;
        for byte in magnitude.iter_mut() {
            let v = (!*byte) as u16 + carry;
            *byte = v as u8;
            carry = v >> 8;
        }
    }
    magnitude
}

/// The argument of STRING: a quoted Python 2 `repr` of a byte string.
fn unquote_string(text: &[u8]) -> Option<Vec<u8>> {
    let (&first, rest) = text.split_first()?;
    let (&last, body) = rest.split_last()?;
    if first != last || !matches!(first, b'\'' | b'"') {
        return None;
    }
    let mut out = Vec::with_capacity(body.len());
    let mut it = body.iter().copied().peekable();
    while let Some(b) = it.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match it.next()? {
            b'\n' => {}
            b'\\' => out.push(b'\\'),
            b'\'' => out.push(b'\''),
            b'"' => out.push(b'"'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'x' => {
                let hi = (it.next()? as char).to_digit(16)?;
                let lo = (it.next()? as char).to_digit(16)?;
                out.push((hi * 16 + lo) as u8);
            }
            d @ b'0'..=b'7' => {
                let mut v = (d - b'0') as u32;
                for _ in 0..2 {
                    match it.peek() {
                        Some(&o @ b'0'..=b'7') => {
                            v = v * 8 + (o - b'0') as u32;
                            it.next();
                        }
                        _ => break,
                    }
                }
                out.push(v as u8);
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

/// The argument of UNICODE: latin-1 text with `\uXXXX` and `\UXXXXXXXX` escapes.
fn raw_unicode_unescape(text: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        let digits = match (b, text.get(i + 1)) {
            (b'\\', Some(b'u')) => 4,
            (b'\\', Some(b'U')) => 8,
            _ => {
                out.push(b as char);
                i += 1;
                continue;
            }
        };
        let hex = std::str::from_utf8(text.get(i + 2..i + 2 + digits)?).ok()?;
        out.push(char::from_u32(u32::from_str_radix(hex, 16).ok()?)?);
        i += 2 + digits;
    }
    Some(out)
}

// ------------------------------------------------------------------------------------------------
// From the arena to an owned tree

struct Resolver<'h, 'a> {
    heap: &'h [Obj<'a>],
    budget: usize,
    budget_total: usize,
    at: usize,
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

    fn value(&mut self, item: Item, depth: usize) -> Result<Value> {
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
                let state = self.value(*state, depth + 1)?;
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

/// A tiny pickle writer for tests: hand-made snapshots, storage blobs and hostile inputs.
#[cfg(test)]
pub(crate) mod writer {
    use super::TORCH_MAGIC;

    /// Opcodes appended to a protocol-4 pickle.
    pub struct W(pub Vec<u8>);

    impl W {
        pub fn new() -> Self {
            W(vec![0x80, 4])
        }
        pub fn op(&mut self, bytes: &[u8]) -> &mut Self {
            self.0.extend_from_slice(bytes);
            self
        }
        pub fn str(&mut self, s: &str) -> &mut Self {
            if s.len() < 256 {
                self.op(&[0x8c, s.len() as u8]).op(s.as_bytes())
            } else {
                self.op(b"X").op(&(s.len() as u32).to_le_bytes()).op(s.as_bytes())
            }
        }
        pub fn int(&mut self, v: i32) -> &mut Self {
            self.op(b"J").op(&v.to_le_bytes())
        }
        pub fn float(&mut self, v: f64) -> &mut Self {
            self.op(b"G").op(&v.to_be_bytes())
        }
        pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
            self.op(b"B").op(&(b.len() as u32).to_le_bytes()).op(b)
        }
        pub fn global(&mut self, module: &str, name: &str) -> &mut Self {
            self.str(module).str(name).op(&[0x93])
        }
        pub fn ints(&mut self, v: &[i32]) -> &mut Self {
            self.op(b"(");
            for &x in v {
                self.int(x);
            }
            self.op(b"t")
        }
        /// `_rebuild_parameter(_rebuild_tensor_v2(_load_from_bytes(blob), offset, size, stride, False, OrderedDict()), False, OrderedDict())`.
        pub fn tensor(&mut self, blob: &[u8], offset: i32, size: &[i32], stride: &[i32]) -> &mut Self {
            self.global("torch._utils", "_rebuild_parameter").op(b"(");
            self.global("torch._utils", "_rebuild_tensor_v2").op(b"(");
            self.global("torch.storage", "_load_from_bytes").bytes(blob).op(&[0x85]).op(b"R");
            self.int(offset).ints(size).ints(stride).op(&[0x89]);
            self.global("collections", "OrderedDict").op(b")R").op(b"t").op(b"R");
            self.op(&[0x89]).global("collections", "OrderedDict").op(b")R").op(b"t").op(b"R")
        }
        /// numpy scalar of dtype `descr` from its raw bytes.
        pub fn np_scalar(&mut self, descr: &str, raw: &[u8]) -> &mut Self {
            self.global("numpy.core.multiarray", "scalar");
            self.np_dtype(descr);
            self.bytes(raw).op(&[0x86]).op(b"R")
        }
        pub fn np_dtype(&mut self, descr: &str) -> &mut Self {
            self.global("numpy", "dtype").str(descr).op(&[0x89, 0x88, 0x87]).op(b"R");
            self.op(b"(").int(3).str("<").op(b"NNN").int(-1).int(-1).int(0).op(b"t").op(b"b")
        }
        /// numpy array: `_reconstruct(ndarray, (0,), b'b')` + BUILD `(1, shape, dtype, fortran, raw)`.
        pub fn np_array(&mut self, descr: &str, shape: &[i32], fortran: bool, raw: &[u8]) -> &mut Self {
            self.global("numpy.core.multiarray", "_reconstruct");
            self.global("numpy", "ndarray").ints(&[0]).op(b"C\x01b").op(&[0x87]).op(b"R");
            self.op(b"(").int(1).ints(shape);
            self.np_dtype(descr);
            self.op(&[if fortran { 0x88 } else { 0x89 }]).bytes(raw).op(b"t").op(b"b")
        }
        pub fn finish(&mut self) -> Vec<u8> {
            self.op(b".");
            std::mem::take(&mut self.0)
        }
    }

    /// A legacy `torch.save` stream of one storage (`class` e.g. "FloatStorage").
    pub fn blob(class: &str, key: &str, numel: usize, raw: &[u8]) -> Vec<u8> {
        let mut b = vec![0x80, 2, 0x8a, 10];
        b.extend_from_slice(&TORCH_MAGIC);
        b.extend_from_slice(b".\x80\x02M\xe9\x03.");
        let s = |b: &mut Vec<u8>, s: &str| {
            b.push(b'X');
            b.extend_from_slice(&(s.len() as u32).to_le_bytes());
            b.extend_from_slice(s.as_bytes());
        };
        b.extend_from_slice(b"\x80\x02}(");
        s(&mut b, "protocol_version");
        b.extend_from_slice(b"M\xe9\x03");
        s(&mut b, "little_endian");
        b.push(0x88);
        b.extend_from_slice(b"u.\x80\x02(");
        s(&mut b, "storage");
        b.extend_from_slice(format!("ctorch\n{class}\n").as_bytes());
        s(&mut b, key);
        s(&mut b, "cpu");
        b.push(b'J');
        b.extend_from_slice(&(numel as i32).to_le_bytes());
        b.extend_from_slice(b"NtQ.\x80\x02]");
        s(&mut b, key);
        b.extend_from_slice(b"a.");
        b.extend_from_slice(&(numel as i64).to_le_bytes());
        b.extend_from_slice(raw);
        b
    }

    pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::writer::{blob, f32_bytes, W};
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn s(v: &str) -> Value {
        Value::Str(v.to_string())
    }

    fn tensor(v: &Value) -> (Vec<usize>, Vec<f32>) {
        match v {
            Value::Tensor(t) => (t.shape.clone(), t.data.as_ref().clone()),
            other => panic!("expected a tensor, got {other:?}"),
        }
    }

    /// `pickle.dumps(obj, protocol=p)` of the same dict by Python 3.11 (2 and 3: GLOBAL, BINPUT,
    /// `_codecs.encode` bytes, `__builtin__.set`; 5: FRAME, MEMOIZE, STACK_GLOBAL, FROZENSET,
    /// BYTEARRAY8).
    const PY_P2: &str = "80027d71002858010000006171015d7102284b014afeffffff4740040000000000004e88895802000000c3a97103635f636f646563730a656e636f64650a71045802000000797a710558060000006c6174696e3171068671075271084b018571094b014b0286710a4b014b024b0387710b284b014b024b034b0474710c4a701101004a90eefeff8a060000000000018a090000000000000000408a090000000000000000c0477e37e43c8800759c65580100000062710d635f5f6275696c74696e5f5f0a7365740a710e5d710f284b014b026585711052711158010000006f711263636f6c6c656374696f6e730a4f726465726564446963740a71132952711458010000006b71154b0173752e";
    const PY_P3: &str = "80037d71002858010000006171015d7102284b014afeffffff4740040000000000004e88895802000000c3a971034302797a71044b018571054b014b028671064b014b024b03877107284b014b024b034b047471084a701101004a90eefeff8a060000000000018a090000000000000000408a090000000000000000c0477e37e43c8800759c655801000000627109636275696c74696e730a7365740a710a5d710b284b014b026585710c52710d58010000006f710e63636f6c6c656374696f6e730a4f726465726564446963740a710f2952711058010000006b71114b0173752e";
    const PY_P5: &str = "800595ca000000000000007d94288c0161945d94284b014afeffffff4740040000000000004e88898c02c3a9944302797a944b0185944b014b0286944b014b024b038794284b014b024b034b0474944a701101004a90eefeff8a060000000000018a090000000000000000408a090000000000000000c0477e37e43c8800759c658c0162948f94284b014b02908c016f948c0b636f6c6c656374696f6e73948c0b4f726465726564446963749493942952948c016b944b01738c016394284b0391948c02626294960200000000000000616294752e";

    fn python_common() -> Vec<(Value, Value)> {
        let i = Value::Int;
        let mut two_70 = vec![0u8; 9];
        two_70[8] = 0x40;
        let mut minus_two_70 = vec![0u8; 9];
        minus_two_70[8] = 0xc0;
        let a = Value::List(vec![
            i(1),
            i(-2),
            Value::Float(2.5),
            Value::None,
            Value::Bool(true),
            Value::Bool(false),
            s("é"),
            Value::Bytes(b"yz".to_vec()),
            Value::Tuple(vec![i(1)]),
            Value::Tuple(vec![i(1), i(2)]),
            Value::Tuple(vec![i(1), i(2), i(3)]),
            Value::Tuple(vec![i(1), i(2), i(3), i(4)]),
            i(70000),
            i(-70000),
            i(1 << 40),
            Value::BigInt(two_70),
            Value::BigInt(minus_two_70),
            Value::Float(1e300),
        ]);
        vec![(s("a"), a), (s("b"), Value::Set(vec![i(1), i(2)])), (s("o"), Value::Dict(vec![(s("k"), i(1))]))]
    }

    #[test]
    fn python_protocols_2_3_5() {
        let common = Value::Dict(python_common());
        assert_eq!(parse(&hex(PY_P2)).unwrap(), common);
        assert_eq!(parse(&hex(PY_P3)).unwrap(), common);
        let mut entries = python_common();
        entries.push((s("c"), Value::Set(vec![Value::Int(3)])));
        entries.push((s("bb"), Value::Bytes(b"ab".to_vec())));
        assert_eq!(parse(&hex(PY_P5)).unwrap(), Value::Dict(entries));
    }

    #[test]
    fn text_opcodes_of_protocol_0() {
        // `pickle.dumps(obj, protocol=0)` behind a PROTO 2 header: INT, LONG, FLOAT, UNICODE,
        // DICT/LIST with MARK, PUT, GLOBAL, SETITEM, APPEND, TUPLE.
        let mut bytes = b"\x80\x02".to_vec();
        bytes.extend_from_slice(
            b"(dp0\nVa\np1\n(lp2\nI1\naI-2\naF2.5\naNaI01\naVq\\u005c\\u000a'\"\xe9\\u1234\np3\na(I1\nI2\ntp4\naL1180591620717411303424L\naI-3\nasVs\np5\nc__builtin__\nset\np6\n((lp7\nI1\natp8\nRp9\nsg1\ng3\ns.",
        );
        let mut two_70 = vec![0u8; 9];
        two_70[8] = 0x40;
        let expected = Value::Dict(vec![
            (
                s("a"),
                Value::List(vec![
                    Value::Int(1),
                    Value::Int(-2),
                    Value::Float(2.5),
                    Value::None,
                    Value::Bool(true),
                    s("q\\\n'\"é\u{1234}"),
                    Value::Tuple(vec![Value::Int(1), Value::Int(2)]),
                    Value::BigInt(two_70),
                    Value::Int(-3),
                ]),
            ),
            (s("s"), Value::Set(vec![Value::Int(1)])),
        ]);
        // The final `g1 g3 s` stores key 'a' again: its value is replaced, its place kept.
        let Value::Dict(mut entries) = expected else { unreachable!() };
        entries[0].1 = s("q\\\n'\"é\u{1234}");
        assert_eq!(parse(&bytes).unwrap(), Value::Dict(entries));
    }

    #[test]
    fn string_escapes_and_binstrings() {
        let mut bytes = b"\x80\x02(S'a\\'b\\x41\\n\\101'\nU\x02hiT\x01\x00\x00\x00\xe9l.".to_vec();
        let v = parse(&bytes).unwrap();
        assert_eq!(v, Value::List(vec![s("a'bA\nA"), s("hi"), s("é")]));
        bytes = b"\x80\x02S'unterminated\n.".to_vec();
        assert!(matches!(parse(&bytes), Err(PickleError::Malformed { what: "STRING", .. })));
    }

    #[test]
    fn big_integers() {
        // LONG1 of the torch magic number stays big; LONG1/LONG4 that fit become i64.
        let mut bytes = vec![0x80, 2, b'(', 0x8a, 10];
        bytes.extend_from_slice(&TORCH_MAGIC);
        bytes.extend_from_slice(&[0x8a, 2, 0xff, 0x7f, 0x8a, 1, 0xff, 0x8a, 0, 0x8b, 3, 0, 0, 0, 1, 0, 0]);
        bytes.extend_from_slice(b"I-123456789012345678901234567890\nl.");
        let v = parse(&bytes).unwrap();
        let Value::List(items) = v else { panic!() };
        assert_eq!(items[0], Value::BigInt(TORCH_MAGIC.to_vec()));
        assert_eq!(items[1], Value::Int(0x7fff));
        assert_eq!(items[2], Value::Int(-1));
        assert_eq!(items[3], Value::Int(0));
        assert_eq!(items[4], Value::Int(1));
        // -123456789012345678901234567890 in two's complement.
        let want: i128 = -123456789012345678901234567890;
        let Value::BigInt(b) = &items[5] else { panic!("{:?}", items[5]) };
        let mut full = [0xffu8; 16];
        full[..b.len()].copy_from_slice(b);
        assert_eq!(i128::from_le_bytes(full), want);
    }

    #[test]
    fn memo_keeps_identity() {
        // A dict memoized while empty, fetched from the memo after being filled; a numpy dtype
        // memoized before BUILD sets it big-endian.
        let mut w = W::new();
        w.op(b"(}\x94").str("k").int(7).op(b"s0h\x00"); // MARK, {} memo0, ['k']=7, POP, GET 0
        w.np_dtype("f4").op(&[0x94]); // memo 1: dtype, then BUILD '<' ... rebuild it big-endian:
        w.op(b"(").int(3).str(">").op(b"NNN").int(-1).int(-1).int(0).op(b"tb0");
        w.global("numpy.core.multiarray", "scalar").op(b"h\x01").op(b"C\x04\x3f\x80\x00\x00").op(&[0x86]).op(b"R");
        w.op(b"l");
        let v = parse(&w.finish()).unwrap();
        assert_eq!(v, Value::List(vec![Value::Dict(vec![(s("k"), Value::Int(7))]), Value::Float(1.0)]));
    }

    #[test]
    fn tensors_honor_offset_strides_and_dtypes() {
        let data: Vec<f32> = (0..12).map(|x| x as f32).collect();
        let b = blob("FloatStorage", "1", 12, &f32_bytes(&data));
        // Transposed 3x4 -> 4x3 view, an offset slice, a scalar, a size-1 dim with a huge stride.
        let mut w = W::new();
        w.op(b"(");
        w.tensor(&b, 0, &[4, 3], &[1, 4]);
        w.tensor(&b, 5, &[2, 2], &[4, 1]);
        w.tensor(&b, 11, &[], &[]);
        w.tensor(&b, 2, &[1, 3], &[1_000_000, 1]);
        w.tensor(&b, 0, &[3, 4], &[4, 1]);
        w.op(b"l");
        let Value::List(items) = parse(&w.finish()).unwrap() else { panic!() };
        assert_eq!(tensor(&items[0]), (vec![4, 3], vec![0., 4., 8., 1., 5., 9., 2., 6., 10., 3., 7., 11.]));
        assert_eq!(tensor(&items[1]), (vec![2, 2], vec![5., 6., 9., 10.]));
        assert_eq!(tensor(&items[2]), (vec![], vec![11.]));
        assert_eq!(tensor(&items[3]), (vec![1, 3], vec![2., 3., 4.]));
        assert_eq!(tensor(&items[4]), (vec![3, 4], data));

        // Other element types become f32.
        let half = [0x3c00u16, 0xc000, 0x0001, 0x7c00].iter().flat_map(|h| h.to_le_bytes()).collect::<Vec<_>>();
        let long = [-3i64, 1 << 40].iter().flat_map(|h| h.to_le_bytes()).collect::<Vec<_>>();
        let bf16 = [0x3f80u16, 0xc040].iter().flat_map(|h| h.to_le_bytes()).collect::<Vec<_>>();
        let double = [0.5f64, -2.25].iter().flat_map(|h| h.to_le_bytes()).collect::<Vec<_>>();
        let int = [7i32, -8].iter().flat_map(|h| h.to_le_bytes()).collect::<Vec<_>>();
        let mut w = W::new();
        w.op(b"(");
        w.tensor(&blob("HalfStorage", "h", 4, &half), 0, &[4], &[1]);
        w.tensor(&blob("LongStorage", "l", 2, &long), 0, &[2], &[1]);
        w.tensor(&blob("BoolStorage", "b", 3, &[1, 0, 5]), 0, &[3], &[1]);
        w.tensor(&blob("ByteStorage", "u", 2, &[200, 3]), 0, &[2], &[1]);
        w.tensor(&blob("BFloat16Storage", "f", 2, &bf16), 0, &[2], &[1]);
        w.tensor(&blob("DoubleStorage", "d", 2, &double), 0, &[2], &[1]);
        w.tensor(&blob("IntStorage", "i", 2, &int), 0, &[2], &[1]);
        w.op(b"l");
        let Value::List(items) = parse(&w.finish()).unwrap() else { panic!() };
        assert_eq!(tensor(&items[0]).1, vec![1.0, -2.0, 2f32.powi(-24), f32::INFINITY]);
        assert_eq!(tensor(&items[1]).1, vec![-3.0, (1u64 << 40) as f32]);
        assert_eq!(tensor(&items[2]).1, vec![1.0, 0.0, 1.0]);
        assert_eq!(tensor(&items[3]).1, vec![200.0, 3.0]);
        assert_eq!(tensor(&items[4]).1, vec![1.0, -3.0]);
        assert_eq!(tensor(&items[5]).1, vec![0.5, -2.25]);
        assert_eq!(tensor(&items[6]).1, vec![7.0, -8.0]);
    }

    #[test]
    fn tensors_outside_their_storage_are_refused() {
        let b = blob("FloatStorage", "1", 4, &f32_bytes(&[1., 2., 3., 4.]));
        for (offset, size, stride) in
            [(0, vec![5], vec![1]), (1, vec![2, 2], vec![2, 1]), (0, vec![2], vec![4]), (4, vec![1], vec![1])]
        {
            let bytes = W::new().tensor(&b, offset, &size, &stride).finish();
            let err = parse(&bytes).unwrap_err();
            assert!(matches!(err, PickleError::Malformed { what: "tensor", .. }), "{err}");
        }
        // Data count disagreeing with the declared size; a storage claiming 2^31-1 elements.
        let mut bad = blob("FloatStorage", "1", 4, &f32_bytes(&[1., 2., 3., 4.]));
        let n = bad.len();
        bad[n - 24] = 3;
        let err = parse(&W::new().tensor(&bad, 0, &[3], &[1]).finish()).unwrap_err();
        assert!(err.to_string().contains("holds 3 elements"), "{err}");
        let huge = blob("FloatStorage", "1", i32::MAX as usize, &[0; 16]);
        let err = parse(&W::new().tensor(&huge, 0, &[1], &[1]).finish()).unwrap_err();
        assert!(matches!(err, PickleError::Malformed { .. } | PickleError::Truncated { .. }), "{err}");
    }

    #[test]
    fn numpy_scalars_and_arrays() {
        let mut w = W::new();
        w.op(b"(");
        w.np_scalar("f8", &1.5f64.to_le_bytes());
        w.np_scalar("i8", &(-7i64).to_le_bytes());
        w.np_scalar("b1", &[1]);
        w.np_array("i8", &[2], false, &[36i64, 36].iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>());
        // Fortran-ordered 2x3 int32: memory holds columns.
        let cols: Vec<u8> = [1i32, 4, 2, 5, 3, 6].iter().flat_map(|x| x.to_le_bytes()).collect();
        w.np_array("i4", &[2, 3], true, &cols);
        w.np_array("f4", &[2], false, &f32_bytes(&[0.25, -1.0]));
        w.np_array("u1", &[0, 5], false, &[]);
        w.op(b"l");
        let Value::List(items) = parse(&w.finish()).unwrap() else { panic!() };
        assert_eq!(items[0], Value::Float(1.5));
        assert_eq!(items[1], Value::Int(-7));
        assert_eq!(items[2], Value::Bool(true));
        assert_eq!(items[3], Value::Array(NdArray { shape: vec![2], data: ArrayData::Int(vec![36, 36]) }));
        assert_eq!(items[4], Value::Array(NdArray { shape: vec![2, 3], data: ArrayData::Int(vec![1, 2, 3, 4, 5, 6]) }));
        assert_eq!(items[5], Value::Array(NdArray { shape: vec![2], data: ArrayData::Float(vec![0.25, -1.0]) }));
        assert_eq!(items[6], Value::Array(NdArray { shape: vec![0, 5], data: ArrayData::Int(vec![]) }));
        // Wrong data length, object dtype.
        let err = parse(&W::new().np_array("f8", &[3], false, &[0; 16]).finish()).unwrap_err();
        assert!(matches!(err, PickleError::Malformed { what: "numpy array", .. }), "{err}");
        let err = parse(&W::new().np_dtype("O8").finish()).unwrap_err();
        assert!(err.to_string().contains("unsupported dtype 'O8'"), "{err}");
    }

    #[test]
    fn unknown_globals_are_refused_before_anything_runs() {
        let err = parse(b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00lsq\x00\x85R.").unwrap_err();
        assert!(matches!(&err, PickleError::UnknownGlobal { module, name } if module == "os" && name == "system"));
        assert_eq!(err.to_string(), "unknown global 'os.system': not something an official snapshot contains");
        let err = parse(&W::new().global("builtins", "eval").finish()).unwrap_err();
        assert_eq!(err.to_string(), "unknown global 'builtins.eval': not something an official snapshot contains");
        // Storage classes exist only inside storage blobs, and torch.FloatStorage is not callable there.
        let err = parse(b"\x80\x02ctorch\nFloatStorage\n.").unwrap_err();
        assert!(matches!(err, PickleError::UnknownGlobal { .. }));
        // Persistent ids outside a blob.
        let err = parse(b"\x80\x02N\x85Q.").unwrap_err();
        assert!(err.to_string().contains("persistent ids only occur inside torch storage blobs"), "{err}");
    }

    #[test]
    fn bad_headers_and_opcodes() {
        assert_eq!(
            parse(b"").unwrap_err().to_string(),
            "not a pickle (empty input): expected 0x80, the PROTO opcode of a protocol 2-5 pickle"
        );
        assert!(parse(b"PK\x03\x04").unwrap_err().to_string().starts_with("not a pickle (first byte 0x50)"));
        assert!(matches!(parse(b"\x80\x01N."), Err(PickleError::UnsupportedProtocol { protocol: 1, at: 0 })));
        assert!(matches!(parse(b"\x80\x04N\xff."), Err(PickleError::UnknownOpcode { opcode: 0xff, at: 3 })));
        let err = parse(b"\x80\x04\x82\x01.").unwrap_err();
        assert_eq!(err.to_string(), "unsupported opcode EXT1 (0x82) at byte 2: official snapshots never use it");
        assert!(matches!(parse(b"\x80\x04i__main__\nX\n."), Err(PickleError::UnsupportedOpcode { name: "INST", .. })));
        assert!(matches!(parse(b"\x80\x05\x97."), Err(PickleError::UnsupportedOpcode { name: "NEXT_BUFFER", .. })));
        assert!(matches!(parse(b"\x80\x04."), Err(PickleError::Malformed { .. })));
        assert!(matches!(parse(b"\x80\x04N"), Err(PickleError::Truncated { at: 3, .. })));
        assert!(matches!(parse(b"\x80\x04h\x05."), Err(PickleError::Malformed { what: "memo reference", .. })));
        assert!(matches!(parse(b"\x80\x04(N."), Err(PickleError::Malformed { .. }) | Ok(_)));
    }

    #[test]
    fn huge_claimed_lengths_fail_fast() {
        for bytes in [
            &b"\x80\x04B\xff\xff\xff\xffabc."[..],
            b"\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\xffabc.",
            b"\x80\x04\x8d\x00\x00\x00\x00\x01\x00\x00\x00abc.",
            b"\x80\x04\x95\x00\x00\x00\x00\x01\x00\x00\x00N.",
            b"\x80\x04\x8b\xff\xff\xff\x7f\x00.",
            b"\x80\x04T\xff\xff\xff\x7fabc.",
        ] {
            let start = std::time::Instant::now();
            let err = parse(bytes).unwrap_err();
            assert!(matches!(err, PickleError::Truncated { .. }), "{err}");
            assert!(start.elapsed().as_millis() < 50);
        }
        assert_eq!(
            parse(b"\x80\x04B\xff\xff\xff\xffabc.").unwrap_err().to_string(),
            "truncated at byte 7: 4294967295 more bytes needed, 4 left"
        );
    }

    #[test]
    fn cycles_deep_nesting_and_blowups_are_bounded() {
        // l = []; l.append(l)
        let err = parse(&hex("80049506000000000000005d946800612e")).map(|_| ()).unwrap_err();
        assert!(matches!(err, PickleError::LimitExceeded { .. }), "{err}");
        // 100k nested lists built through the memo with a stack of one or two items: push an
        // inner list, memoize it, append it to the outer one, pop the outer one, get the inner.
        let mut w = W::new();
        w.op(b"]\x94");
        for i in 0..100_000u32 {
            w.op(b"]\x94a0").op(b"j").op(&(i + 1).to_le_bytes());
        }
        w.op(b"0h\x00"); // the outermost list
        let err = parse(&w.finish()).map(|_| ()).unwrap_err();
        assert!(matches!(err, PickleError::LimitExceeded { .. }), "{err}");
        // Billion laughs: t0 = (); t_{k+1} = (t_k, t_k) for 60 levels.
        let mut w = W::new();
        w.op(b")");
        for _ in 0..60 {
            w.op(b"2\x86");
        }
        let start = std::time::Instant::now();
        let err = parse(&w.finish()).map(|_| ()).unwrap_err();
        assert!(matches!(err, PickleError::LimitExceeded { .. }), "{err}");
        assert!(start.elapsed().as_secs() < 5);
        // Too many stack items.
        let mut bytes = vec![0x80, 4];
        bytes.extend(std::iter::repeat_n(b'N', MAX_STACK + 1));
        assert!(matches!(parse(&bytes), Err(PickleError::LimitExceeded { .. })));
    }

    #[test]
    fn persistent_objects_keep_class_and_state_only() {
        let mut w = W::new();
        w.global("torch_utils.persistence", "_reconstruct_persistent_obj").op(b"}(");
        w.str("type").str("class").str("version").int(6).str("module_src").str("import os; os.system('rm -rf /')");
        w.str("class_name").str("Generator").str("state").op(b"}(").str("w_dim").int(512).str("beta").float(0.5).op(b"uu");
        w.op(&[0x85]).op(b"R");
        let v = parse(&w.finish()).unwrap();
        assert_eq!(
            v,
            Value::Object {
                class_name: "Generator".into(),
                state: Box::new(Value::Dict(vec![(s("w_dim"), Value::Int(512)), (s("beta"), Value::Float(0.5))]))
            }
        );
        // EasyDict via NEWOBJ, then items.
        let mut w = W::new();
        w.global("dnnlib.util", "EasyDict").op(b")").op(&[0x81]).str("num_layers").int(2).op(b"s");
        assert_eq!(parse(&w.finish()).unwrap(), Value::Dict(vec![(s("num_layers"), Value::Int(2))]));
    }
}
