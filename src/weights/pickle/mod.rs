//! A pickle virtual machine that executes no code.
//!
//! Official StyleGAN2/StyleGAN3 training snapshots (`network-snapshot-*.pkl`) are Python pickles:
//! programs for a small stack machine which, run by Python, import modules and call functions.
//! StyleScope must read them without Python and without trusting them. This machine runs the
//! stack program itself but never imports or calls anything: each global a snapshot refers to is
//! checked against a short allow-list (`shared/reference/stylegan3.md` §7) the moment it is named,
//! and the few functions a snapshot applies (rebuild a tensor from a legacy torch storage blob,
//! numpy scalars, dtypes and arrays, `OrderedDict`, `EasyDict`, persistent objects, and the
//! `dnnlib.tflib.network.Network` objects of TensorFlow-era pickles) are *interpreted* here.
//! Anything else is refused with [`PickleError::UnknownGlobal`]. The Python module source a
//! persistent object carries is dropped unread; the one a TF Network carries is kept as a string
//! and never looked into.
//!
//! No input can make it panic. Every length read from the file is checked against the bytes that
//! remain before anything is allocated; the stack, the memo, the nesting depth of the result and
//! the total amount of decoded data (a small multiple of the input size) are bounded.
//!
//! Python object identity matters (a dict is memoized while empty and filled afterwards; a numpy
//! dtype is memoized before `BUILD` sets its byte order), so objects live in an arena (`heap`)
//! and the stack and memo hold `Item` handles. When the pickle stops, the result is copied out of
//! the arena into an owned tree of [`Value`]s of bounded depth (reference cycles are rejected).
//!
//! Rooms: `machine` (the opcode loop, the arena, the allow-list and the dispatch of calls and
//! BUILD), `torch` (storages, legacy storage blobs, tensors), `numpy` (dtypes, scalars, arrays),
//! `text` (the text encodings of the protocol-0 opcodes and of integers), `value` (the owned
//! result tree and the copy out of the arena); `writer` and `tests` exist only under test.

mod machine;
mod numpy;
mod text;
mod torch;
mod value;

/// A tiny pickle writer for tests: hand-made snapshots, storage blobs and hostile inputs.
#[cfg(test)]
pub(crate) mod writer;

#[cfg(test)]
mod tests;

pub use value::{ArrayData, NdArray, Tensor, Value};

use machine::Machine;
use value::Resolver;

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
