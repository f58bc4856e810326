//! The stack machine itself: what the stack, the memo and the arena hold (`Item`, `Obj`), the
//! allow-list of globals, the opcode loop (`Machine::load`), the generic stack/memo/dict helpers,
//! and the dispatch of REDUCE, NEWOBJ and BUILD to the rooms that interpret torch, numpy and
//! TensorFlow-era objects. Nothing here imports or calls anything.

use std::borrow::Cow;
use std::collections::HashMap;

use super::numpy::Dtype;
use super::text::{latin1_decode, latin1_encode, raw_unicode_unescape, unquote_string};
use super::torch::{le, Elem, Storage};
use super::value::{NdArray, Tensor};
use super::{
    limit, malformed, PickleError, Result, BUDGET_PER_INPUT_BYTE, MAX_MARKS, MAX_MEMO, MAX_NDIM, MAX_SMALL, MAX_STACK,
};

// ------------------------------------------------------------------------------------------------
// The machine's own representation

/// What the stack and the memo hold: small values inline, everything else a handle into the heap.
#[derive(Clone, Copy, Debug)]
pub(super) enum Item {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Ref(usize),
}

pub(super) enum Obj<'a> {
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
    /// A `torch_utils.persistence` object (its state is known when it is made), or a TF-era
    /// `dnnlib.tflib.network.Network` (made empty by NEWOBJ; `state` is `None` until BUILD).
    Persistent {
        class_name: String,
        state: Option<Item>,
    },
}

impl Obj<'_> {
    pub(super) fn type_name(&self) -> &'static str {
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

pub(super) struct Global {
    pub(super) module: String,
    pub(super) name: String,
    pub(super) kind: Callable,
}

/// The allowed globals, by what the machine does with them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Callable {
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
    /// `dnnlib.tflib.network.Network` of TensorFlow-era pickles: NEWOBJ with no arguments, then
    /// BUILD with its state dict.
    TfNetwork,
}

/// The class name a TF-era Network object resolves with.
pub(super) const TF_NETWORK_CLASS: &str = "dnnlib.tflib.network.Network";

/// The allow-list. `in_blob`: inside a legacy torch storage blob only the storage classes exist.
pub(super) fn allowed_global(module: &str, name: &str, in_blob: bool) -> Option<Callable> {
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
        ("dnnlib.tflib.network", "Network") => Callable::TfNetwork,
        _ => return None,
    })
}

// ------------------------------------------------------------------------------------------------
// The machine

pub(super) struct Machine<'a> {
    pub(super) data: &'a [u8],
    /// Offset of `data[0]` in the file (storage blobs are parsed in place).
    pub(super) base: usize,
    pub(super) pos: usize,
    /// Inside a legacy torch storage blob (other globals; persistent ids allowed).
    pub(super) in_blob: bool,
    pub(super) stack: Vec<Item>,
    /// The metastack: stack lengths at each open MARK.
    pub(super) marks: Vec<usize>,
    pub(super) memo: HashMap<u32, Item>,
    pub(super) heap: Vec<Obj<'a>>,
    /// Decoded bytes still allowed, of `budget_total`.
    pub(super) budget: usize,
    pub(super) budget_total: usize,
    /// Inside a storage blob: storage key -> heap index of the storage its persistent id named.
    pub(super) storages: HashMap<String, usize>,
}

impl<'a> Machine<'a> {
    pub(super) fn new(data: &'a [u8], base: usize, in_blob: bool, budget: usize) -> Self {
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
    pub(super) fn at(&self) -> usize {
        self.base.saturating_add(self.pos)
    }

    pub(super) fn charge(&mut self, bytes: usize, at: usize) -> Result<()> {
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

    pub(super) fn alloc(&mut self, obj: Obj<'a>, at: usize) -> Result<Item> {
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

    pub(super) fn obj(&self, item: Item) -> Option<&Obj<'a>> {
        match item {
            Item::Ref(i) => self.heap.get(i),
            _ => None,
        }
    }

    pub(super) fn describe(&self, item: Item) -> &'static str {
        match item {
            Item::None => "None",
            Item::Bool(_) => "a bool",
            Item::Int(_) => "an int",
            Item::Float(_) => "a float",
            Item::Ref(_) => self.obj(item).map_or("nothing", Obj::type_name),
        }
    }

    pub(super) fn str_of(&self, item: Item) -> Option<&str> {
        match self.obj(item) {
            Some(Obj::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// Bytes, or a str holding bytes as latin-1 (how Python 2 pickled them).
    pub(super) fn bytes_of(&self, item: Item) -> Option<Cow<'_, [u8]>> {
        match self.obj(item) {
            Some(Obj::Bytes { data, .. }) => Some(Cow::Borrowed(data.as_ref())),
            Some(Obj::Str(s)) => latin1_encode(s).map(Cow::Owned),
            _ => None,
        }
    }

    // -- reading the input --

    pub(super) fn take(&mut self, n: u64) -> Result<&'a [u8]> {
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

    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(le(self.take(N as u64)?))
    }

    pub(super) fn byte(&mut self) -> Result<u8> {
        Ok(u8::from_le_bytes(self.array()?))
    }

    pub(super) fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub(super) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(super) fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_le_bytes(self.array()?))
    }

    pub(super) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A 4-byte signed length (BINSTRING, LONG4).
    pub(super) fn len_i32(&mut self, what: &'static str, at: usize) -> Result<u64> {
        let n = self.i32()?;
        u64::try_from(n).map_err(|_| malformed(what, at, format!("negative length {n}")))
    }

    /// The text up to the next newline (which is consumed, not returned).
    pub(super) fn line(&mut self) -> Result<&'a [u8]> {
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

    pub(super) fn text_line(&mut self, what: &'static str, at: usize) -> Result<&'a str> {
        let line = self.line()?;
        std::str::from_utf8(line).map_err(|_| malformed(what, at, "text is not UTF-8"))
    }

    // -- stack, metastack, memo --

    pub(super) fn push(&mut self, item: Item) -> Result<()> {
        if self.stack.len() >= MAX_STACK {
            return Err(limit(self.at(), format!("more than {MAX_STACK} items on the stack")));
        }
        self.stack.push(item);
        Ok(())
    }

    /// The index of the first stack item above the innermost MARK.
    pub(super) fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    pub(super) fn pop(&mut self, at: usize) -> Result<Item> {
        if self.stack.len() <= self.floor() {
            return Err(malformed("pickle", at, "stack underflow"));
        }
        self.stack.pop().ok_or_else(|| malformed("pickle", at, "stack underflow"))
    }

    pub(super) fn top(&self, at: usize) -> Result<Item> {
        if self.stack.len() <= self.floor() {
            return Err(malformed("pickle", at, "stack underflow"));
        }
        self.stack.last().copied().ok_or_else(|| malformed("pickle", at, "stack underflow"))
    }

    /// The items pushed since the innermost MARK, which is closed.
    pub(super) fn pop_mark(&mut self, at: usize) -> Result<Vec<Item>> {
        let mark = self.marks.pop().ok_or_else(|| malformed("pickle", at, "no MARK to close"))?;
        if mark > self.stack.len() {
            return Err(malformed("pickle", at, "MARK above the stack"));
        }
        Ok(self.stack.split_off(mark))
    }

    pub(super) fn memo_put(&mut self, index: u32, at: usize) -> Result<()> {
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

    pub(super) fn memo_get(&mut self, index: u32, at: usize) -> Result<()> {
        let item = self
            .memo
            .get(&index)
            .copied()
            .ok_or_else(|| malformed("memo reference", at, format!("entry {index} was never stored")))?;
        self.push(item)
    }

    pub(super) fn memo_index(text: &str, at: usize) -> Result<u32> {
        text.trim().parse().map_err(|_| malformed("memo index", at, format!("'{text}' is not an index")))
    }

    // -- the program --

    /// Runs one pickle, from the current position to its STOP, with a fresh stack and memo.
    pub(super) fn load(&mut self) -> Result<Item> {
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

    pub(super) fn push_obj(&mut self, obj: Obj<'a>, at: usize) -> Result<()> {
        let item = self.alloc(obj, at)?;
        self.push(item)
    }

    pub(super) fn push_str(&mut self, text: String, at: usize) -> Result<()> {
        self.push_obj(Obj::Str(text), at)
    }

    pub(super) fn push_global(&mut self, module: &str, name: &str, at: usize) -> Result<()> {
        let kind = allowed_global(module, name, self.in_blob)
            .ok_or_else(|| PickleError::UnknownGlobal { module: module.to_string(), name: name.to_string() })?;
        self.push_obj(Obj::Global(Global { module: module.to_string(), name: name.to_string(), kind }), at)
    }

    /// APPEND(S) to a list, ADDITEMS to a set.
    pub(super) fn extend(&mut self, items: Vec<Item>, op: &'static str, at: usize) -> Result<()> {
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
    pub(super) fn set_items(&mut self, pairs: Vec<(Item, Item)>, op: &'static str, at: usize) -> Result<()> {
        self.charge(pairs.len().saturating_mul(2 * std::mem::size_of::<Item>()), at)?;
        let target = self.top(at)?;
        let found = self.describe(target);
        match self.obj_mut(target) {
            Some(Obj::Dict(dict)) => dict.extend(pairs),
            _ => return Err(malformed(op, at, format!("cannot set items of {found}"))),
        }
        Ok(())
    }

    pub(super) fn obj_mut(&mut self, item: Item) -> Option<&mut Obj<'a>> {
        match item {
            Item::Ref(i) => self.heap.get_mut(i),
            _ => None,
        }
    }
    // -- interpreting the allowed globals --

    /// The items of a tuple with at most MAX_SMALL entries (call arguments, small records).
    pub(super) fn small_tuple(&self, item: Item, what: &'static str, at: usize) -> Result<Vec<Item>> {
        match self.obj(item) {
            Some(Obj::Tuple(items)) if items.len() <= MAX_SMALL => Ok(items.clone()),
            Some(Obj::Tuple(items)) => Err(malformed(what, at, format!("{} items", items.len()))),
            _ => Err(malformed(what, at, format!("expected a tuple, found {}", self.describe(item)))),
        }
    }

    /// The entries of a dict with at most MAX_SMALL entries.
    pub(super) fn small_dict(&self, item: Item, what: &'static str, at: usize) -> Result<Vec<(Item, Item)>> {
        match self.obj(item) {
            Some(Obj::Dict(entries)) if entries.len() <= MAX_SMALL => Ok(entries.clone()),
            Some(Obj::Dict(entries)) => Err(malformed(what, at, format!("{} entries", entries.len()))),
            _ => Err(malformed(what, at, format!("expected a dict, found {}", self.describe(item)))),
        }
    }

    /// The value of the string key `key` (the last one stored, as in Python).
    pub(super) fn lookup(&self, entries: &[(Item, Item)], key: &str) -> Option<Item> {
        entries.iter().rev().find(|(k, _)| self.str_of(*k) == Some(key)).map(|(_, v)| *v)
    }

    /// Non-negative integers of a tuple or list (sizes, strides, shapes).
    pub(super) fn dims(&self, item: Item, what: &'static str, at: usize) -> Result<Vec<usize>> {
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

    pub(super) fn global_kind(&self, item: Item) -> Option<Callable> {
        match self.obj(item) {
            Some(Obj::Global(g)) => Some(g.kind),
            _ => None,
        }
    }

    /// REDUCE: what the allowed callable would return, computed here.
    pub(super) fn call(&mut self, callable: Item, args: Item, at: usize) -> Result<Item> {
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
            Callable::TfNetwork => Err(malformed(
                "REDUCE",
                at,
                "dnnlib.tflib.network.Network is only ever made by NEWOBJ with no arguments, then BUILD",
            )),
        }
    }

    /// NEWOBJ / NEWOBJ_EX: `cls.__new__(cls, *args)`, only for the dict and set classes and (with no
    /// arguments) a TF-era Network, which BUILD then fills.
    pub(super) fn new_object(&mut self, class: Item, args: Item, kwargs: Option<Item>, at: usize) -> Result<Item> {
        if let Some(kwargs) = kwargs {
            if !matches!(self.obj(kwargs), Some(Obj::Dict(d)) if d.is_empty()) {
                return Err(malformed("NEWOBJ_EX", at, "keyword arguments are not supported"));
            }
        }
        match self.global_kind(class) {
            // `__new__` of a dict (sub)class makes an empty dict whatever the arguments.
            Some(Callable::OrderedDict | Callable::EasyDict) => self.alloc(Obj::Dict(Vec::new()), at),
            Some(Callable::Set) => self.alloc(Obj::Set(Vec::new()), at),
            Some(Callable::TfNetwork) => {
                let found = match self.obj(args) {
                    Some(Obj::Tuple(items)) if items.is_empty() => None,
                    Some(Obj::Tuple(items)) => Some(format!("{} arguments", items.len())),
                    _ => Some(format!("arguments that are {}", self.describe(args))),
                };
                if let Some(found) = found {
                    return Err(malformed(
                        "NEWOBJ",
                        at,
                        format!("dnnlib.tflib.network.Network takes no arguments, found {found}"),
                    ));
                }
                self.alloc(Obj::Persistent { class_name: TF_NETWORK_CLASS.to_string(), state: None }, at)
            }
            _ => Err(malformed("NEWOBJ", at, format!("cannot instantiate {}", self.describe(class)))),
        }
    }

    /// `OrderedDict()`, `OrderedDict([(k, v), ...])`, `EasyDict(dict)`.
    pub(super) fn new_dict(&mut self, args: &[Item], at: usize) -> Result<Item> {
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

    /// BUILD: numpy dtypes get their byte order, numpy arrays their contents; a dict (EasyDict,
    /// OrderedDict) may receive attributes, kept as items; a TF-era Network its state dict (once;
    /// the dict is kept by handle and read out as it is when the pickle stops, `build_module_src`
    /// included, which stays an unread string).
    pub(super) fn build(&mut self, target: Item, state: Item, at: usize) -> Result<()> {
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
            Some(Obj::Persistent { class_name, state: built }) if class_name == TF_NETWORK_CLASS => {
                if built.is_some() {
                    return Err(malformed("BUILD", at, "a dnnlib.tflib.network.Network received its state twice"));
                }
                if !matches!(self.obj(state), Some(Obj::Dict(_))) {
                    return Err(malformed(
                        "BUILD",
                        at,
                        format!(
                            "the state of a dnnlib.tflib.network.Network is {}, expected a dict",
                            self.describe(state)
                        ),
                    ));
                }
                if let Some(Obj::Persistent { state: slot, .. }) = self.obj_mut(target) {
                    *slot = Some(state);
                }
                Ok(())
            }
            _ => Err(malformed("BUILD", at, format!("cannot set the state of {target_name}"))),
        }
    }
}

/// Items pushed after a MARK as (key, value) pairs.
pub(super) fn pairs(items: Vec<Item>) -> Option<Vec<(Item, Item)>> {
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
