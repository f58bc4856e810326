//! numpy: dtypes (numbers and bools), `numpy.core.multiarray.scalar` and the state of an
//! `ndarray` (C or Fortran order) — what the allowed numpy globals would compute, decoded here.

use super::machine::{Item, Machine, Obj};
use super::torch::{checked_numel, f16_to_f32, gather};
use super::value::{ArrayData, NdArray};
use super::{limit, malformed, Result};

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Kind {
    Float,
    Int,
    UInt,
    Bool,
}

/// A numpy dtype (numbers and bools only).
#[derive(Clone, Copy, Debug)]
pub(super) struct Dtype {
    pub(super) kind: Kind,
    pub(super) size: usize,
    pub(super) big_endian: bool,
}

impl Dtype {
    /// From a descriptor such as `f8`, `<i4`, `|b1`, `u1`.
    pub(super) fn parse(descr: &str) -> Option<Self> {
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

    pub(super) fn descr(&self) -> String {
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
    pub(super) fn decode(&self, raw: &[u8]) -> ArrayData {
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

impl Machine<'_> {
    /// `numpy.core.multiarray.scalar(dtype, raw)`: a number.
    pub(super) fn numpy_scalar(&mut self, args: &[Item], at: usize) -> Result<Item> {
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

    /// The state of `numpy.ndarray`: `(version, shape, dtype, is_fortran, raw)` (or without version).
    pub(super) fn ndarray(&mut self, state: Item, at: usize) -> Result<NdArray> {
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
