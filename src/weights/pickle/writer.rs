//! A tiny pickle writer for tests: hand-made snapshots, storage blobs and hostile inputs. Its own
//! room so that other modules' tests (`crate::weights::pickle::writer`) can build pickles too.

use super::torch::TORCH_MAGIC;

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
