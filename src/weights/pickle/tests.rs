//! Unit tests of the pickle machine: Python's own pickles of every protocol, the text opcodes,
//! torch tensors and numpy values, identity through the memo, refusals and bounds, and the
//! TensorFlow-era Network objects.

use super::torch::TORCH_MAGIC;
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

fn tf_network(state: Value) -> Value {
    Value::Object { class_name: "dnnlib.tflib.network.Network".into(), state: Box::new(state) }
}

#[test]
fn tf_networks_keep_their_state_dicts() {
    // Protocol 4 as the StyleGAN/StyleGAN2 TF releases write it: STACK_GLOBAL, MEMOIZE, NEWOBJ of
    // (), BUILD with the state dict; a sub-Network inside `components`, pickled the same way and
    // reusing the memoized class; `variables` of (name, numpy array or numpy scalar) pairs.
    let mut w = W::new();
    w.global("dnnlib.tflib.network", "Network").op(&[0x94]).op(b")").op(&[0x81, 0x94]); // memo 0 class, 1 G
    w.op(b"}\x94(").str("version").int(4).str("name").str("G");
    w.str("static_kwargs").op(b"}(").str("resolution").int(32).op(b"u");
    w.str("components").op(b"}(").str("synthesis");
    w.op(b"h\x00)").op(&[0x81]).op(b"}(").str("version").int(4).str("name").str("G_synthesis");
    w.str("static_kwargs").op(b"}").str("components").op(b"}");
    w.str("build_module_src").str("import os\nos.system('rm -rf /')\n");
    w.str("build_func_name").str("G_synthesis_stylegan2").str("variables").op(b"]").op(b"ub"); // BUILD synthesis
    w.op(b"u"); // components
    w.str("build_module_src").str("def G_main(): pass").str("build_func_name").str("G_main");
    w.str("variables").op(b"](");
    w.str("dlatent_avg");
    w.np_array("f4", &[2], false, &f32_bytes(&[0.5, -1.0])).op(&[0x86]);
    w.str("lod");
    w.np_scalar("f4", &0.25f32.to_le_bytes()).op(&[0x86]);
    w.op(b"e"); // APPENDS
    w.op(b"ub"); // SETITEMS of the state, BUILD G
    w.op(b"h\x00)").op(&[0x81]); // a Network that never receives a state
    w.op(&[0x86]);
    let synthesis = Value::Dict(vec![
        (s("version"), Value::Int(4)),
        (s("name"), s("G_synthesis")),
        (s("static_kwargs"), Value::Dict(vec![])),
        (s("components"), Value::Dict(vec![])),
        (s("build_module_src"), s("import os\nos.system('rm -rf /')\n")),
        (s("build_func_name"), s("G_synthesis_stylegan2")),
        (s("variables"), Value::List(vec![])),
    ]);
    let g = Value::Dict(vec![
        (s("version"), Value::Int(4)),
        (s("name"), s("G")),
        (s("static_kwargs"), Value::Dict(vec![(s("resolution"), Value::Int(32))])),
        (s("components"), Value::Dict(vec![(s("synthesis"), tf_network(synthesis))])),
        (s("build_module_src"), s("def G_main(): pass")),
        (s("build_func_name"), s("G_main")),
        (
            s("variables"),
            Value::List(vec![
                Value::Tuple(vec![
                    s("dlatent_avg"),
                    Value::Array(NdArray { shape: vec![2], data: ArrayData::Float(vec![0.5, -1.0]) }),
                ]),
                Value::Tuple(vec![s("lod"), Value::Float(0.25)]),
            ]),
        ),
    ]);
    assert_eq!(parse(&w.finish()).unwrap(), Value::Tuple(vec![tf_network(g), tf_network(Value::None)]));

    // Protocol 3 as StyleGAN2-ADA TF writes it: GLOBAL, BINPUT, BINUNICODE, BINGET of the class and
    // of a repeated key string.
    let x = |text: &str| {
        let mut b = vec![b'X'];
        b.extend_from_slice(&(text.len() as u32).to_le_bytes());
        b.extend_from_slice(text.as_bytes());
        b
    };
    let mut b = b"\x80\x03cdnnlib.tflib.network\nNetwork\nq\x00)\x81q\x01}q\x02(".to_vec();
    b.extend(x("version"));
    b.extend(b"q\x03K\x05");
    b.extend(x("name"));
    b.extend(b"q\x04");
    b.extend(x("D"));
    b.extend(b"q\x05");
    b.extend(x("components"));
    b.extend(b"q\x06}q\x07");
    b.extend(x("variables"));
    b.extend(b"q\x08]q\x09ubh\x00)\x81q\x0a}q\x0b(h\x04");
    b.extend(x("Gs"));
    b.extend(b"ub\x86.");
    let d = Value::Dict(vec![
        (s("version"), Value::Int(5)),
        (s("name"), s("D")),
        (s("components"), Value::Dict(vec![])),
        (s("variables"), Value::List(vec![])),
    ]);
    let gs = Value::Dict(vec![(s("name"), s("Gs"))]);
    assert_eq!(parse(&b).unwrap(), Value::Tuple(vec![tf_network(d), tf_network(gs)]));
}

#[test]
fn tf_networks_are_only_made_by_newobj_and_built_once_with_a_dict() {
    let network = |w: &mut W| {
        w.global("dnnlib.tflib.network", "Network");
    };
    // REDUCE (calling the class) is refused.
    let mut w = W::new();
    network(&mut w);
    w.op(b")R");
    let err = parse(&w.finish()).unwrap_err();
    assert!(matches!(err, PickleError::Malformed { what: "REDUCE", .. }), "{err}");
    // NEWOBJ with arguments, or with arguments that are not a tuple, is refused.
    let mut w = W::new();
    network(&mut w);
    w.int(1).op(&[0x85, 0x81]);
    let err = parse(&w.finish()).unwrap_err();
    assert!(matches!(err, PickleError::Malformed { what: "NEWOBJ", .. }), "{err}");
    assert!(err.to_string().contains("takes no arguments, found 1 arguments"), "{err}");
    let mut w = W::new();
    network(&mut w);
    w.op(b"N").op(&[0x81]);
    let err = parse(&w.finish()).unwrap_err();
    assert!(matches!(err, PickleError::Malformed { what: "NEWOBJ", .. }), "{err}");
    // NEWOBJ_EX with keyword arguments is refused; with none it is NEWOBJ.
    let mut w = W::new();
    network(&mut w);
    w.op(b")}").str("name").str("G").op(b"s").op(&[0x92]);
    assert!(matches!(parse(&w.finish()), Err(PickleError::Malformed { what: "NEWOBJ_EX", .. })));
    let mut w = W::new();
    network(&mut w);
    w.op(b")}").op(&[0x92]);
    assert_eq!(parse(&w.finish()).unwrap(), tf_network(Value::None));
    // BUILD twice, or with a state that is not a dict, is refused.
    for state in [&b"}b}b"[..], b"Nb", b"]b", b")b"] {
        let mut w = W::new();
        network(&mut w);
        w.op(b")").op(&[0x81]).op(state);
        let err = parse(&w.finish()).unwrap_err();
        assert!(matches!(err, PickleError::Malformed { what: "BUILD", .. }), "{err}");
    }
    // The class itself, never instantiated, stays a global; inside a storage blob it is unknown.
    let mut w = W::new();
    network(&mut w);
    assert_eq!(
        parse(&w.finish()).unwrap(),
        Value::Global { module: "dnnlib.tflib.network".into(), name: "Network".into() }
    );
    // A torch_utils persistent object still cannot be BUILT.
    let mut w = W::new();
    w.global("torch_utils.persistence", "_reconstruct_persistent_obj").op(b"}(");
    w.str("type").str("class").str("class_name").str("Network").str("state").op(b"}u").op(&[0x85]).op(b"R");
    w.op(b"}b");
    let err = parse(&w.finish()).unwrap_err();
    assert!(err.to_string().contains("cannot set the state of a persistent object"), "{err}");
}

/// The TF-era fixtures (`shared/fixtures-tf`, with a JSON inventory each): `(G, D, Gs)` Networks
/// whose states, components and variables match the inventory.
#[test]
fn tf_fixture_pickles_parse() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures-tf");
    let ada = format!("{dir}/tf_sg2ada_32_cond3.pkl");
    let Ok(bytes) = std::fs::read(&ada) else {
        eprintln!("skipping: {ada} is missing");
        return;
    };
    let value = parse(&bytes).unwrap();
    let Value::Tuple(nets) = &value else { panic!("expected a tuple, got {}", value.type_name()) };
    assert_eq!(nets.len(), 3);
    for net in nets {
        assert!(matches!(net, Value::Object { class_name, state }
            if class_name == "dnnlib.tflib.network.Network" && matches!(**state, Value::Dict(_))));
    }
    let Value::Object { state, .. } = &nets[0] else { unreachable!() };
    assert_eq!(state.get("build_func_name").and_then(Value::as_str), Some("G_main"));

    for name in ["tf_sg2ada_32_cond3", "tf_sg2_32", "tf_sg1_32"] {
        let (Ok(bytes), Ok(json)) =
            (std::fs::read(format!("{dir}/{name}.pkl")), std::fs::read(format!("{dir}/{name}.json")))
        else {
            eprintln!("skipping {name}: missing");
            continue;
        };
        let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let Value::Tuple(nets) = parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}")) else {
            panic!("{name}: not a tuple")
        };
        assert_eq!(nets.len(), 3, "{name}");
        for (net, key) in nets.iter().zip(["G", "D", "Gs"]) {
            let Value::Object { class_name, state } = net else { panic!("{name} {key}: {}", net.type_name()) };
            assert_eq!(class_name, "dnnlib.tflib.network.Network");
            let want = &json["networks"][key];
            assert_eq!(state.get("name").and_then(Value::as_str), want["name"].as_str(), "{name} {key}");
            assert_eq!(state.get("version"), Some(&Value::Int(want["version"].as_i64().unwrap())), "{name} {key}");
            assert_eq!(state.get("build_func_name").and_then(Value::as_str), want["build_func_name"].as_str());
            assert!(matches!(state.get("build_module_src"), Some(Value::Str(_))), "{name} {key}");
            // Own variables: names, shapes, arrays or numpy scalars, in order.
            let Some(Value::List(vars)) = state.get("variables") else { panic!("{name} {key}: no variables") };
            let own = json["variables"][key]["own"].as_array().unwrap();
            assert_eq!(vars.len(), own.len(), "{name} {key}");
            for (var, want) in vars.iter().zip(own) {
                let Value::Tuple(pair) = var else { panic!("{name} {key}: {}", var.type_name()) };
                assert_eq!(pair[0].as_str(), want[0].as_str(), "{name} {key}");
                let shape: Vec<usize> =
                    want[1].as_array().unwrap().iter().map(|n| n.as_u64().unwrap() as usize).collect();
                match (&pair[1], want[3].as_str()) {
                    (Value::Array(a), Some("ndarray")) => {
                        assert_eq!(a.shape, shape, "{name} {key} {}", want[0]);
                        assert!(
                            matches!(a.data, ArrayData::Float(ref v) if v.len() == shape.iter().product::<usize>())
                        );
                    }
                    (Value::Float(_), Some("float32")) => assert!(shape.is_empty()),
                    (other, kind) => panic!("{name} {key} {}: {} for {kind:?}", want[0], other.type_name()),
                }
            }
            // Components: sub-Networks with their own variables.
            let Some(Value::Dict(components)) = state.get("components") else { panic!("{name} {key}: no components") };
            let want_components = want["components"].as_object().unwrap();
            assert_eq!(components.len(), want_components.len(), "{name} {key}");
            for (ckey, component) in components {
                let want = &want_components[ckey.as_str().unwrap()];
                let Value::Object { class_name, state } = component else { panic!("{name} {key}: component") };
                assert_eq!(class_name, "dnnlib.tflib.network.Network");
                assert_eq!(state.get("name").and_then(Value::as_str), want["name"].as_str());
                assert_eq!(state.get("build_func_name").and_then(Value::as_str), want["build_func_name"].as_str());
                let Some(Value::List(vars)) = state.get("variables") else { panic!("{name} {key}: component vars") };
                assert_eq!(vars.len() as u64, want["num_variables"].as_u64().unwrap(), "{name} {key} {ckey:?}");
            }
            if want.get("input_names").is_some() {
                assert!(matches!(state.get("input_names"), Some(Value::List(_))), "{name} {key}");
            }
        }
    }
}
