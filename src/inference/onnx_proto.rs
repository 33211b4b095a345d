//! A minimal ONNX model writer (protobuf by hand) for tiny built-in graphs.
//!
//! The CUDA probe needs a model that exists whatever is installed, and tests need small
//! models with known outputs; neither justifies a protobuf dependency. Only the fields used
//! here are written: `ModelProto { ir_version, producer_name, graph, opset_import }`,
//! `GraphProto { node, name, initializer, input, output }` with float tensors.

/// A tensor dimension: fixed or symbolic.
#[derive(Debug, Clone)]
pub(crate) enum Dim {
    Fixed(i64),
    /// Only test graphs use symbolic sizes so far.
    #[cfg_attr(not(test), allow(dead_code))]
    Named(&'static str),
}

/// A graph input or output: a float tensor.
#[derive(Debug, Clone)]
pub(crate) struct Value {
    pub name: &'static str,
    pub dims: Vec<Dim>,
}

/// A node: `op_type(inputs) -> outputs`, default domain.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub op: &'static str,
    pub inputs: Vec<&'static str>,
    pub outputs: Vec<&'static str>,
}

/// A float constant.
#[derive(Debug, Clone)]
pub(crate) struct Initializer {
    pub name: &'static str,
    pub dims: Vec<i64>,
    pub data: Vec<f32>,
}

/// A whole graph.
#[derive(Debug, Clone, Default)]
pub(crate) struct Graph {
    pub nodes: Vec<Node>,
    pub inputs: Vec<Value>,
    pub outputs: Vec<Value>,
    pub initializers: Vec<Initializer>,
}

const FLOAT: u64 = 1;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(out: &mut Vec<u8>, field: u64, wire: u64) {
    varint(out, (field << 3) | wire);
}

fn int_field(out: &mut Vec<u8>, field: u64, v: u64) {
    key(out, field, 0);
    varint(out, v);
}

fn bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    key(out, field, 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn value_info(v: &Value) -> Vec<u8> {
    let mut shape = Vec::new();
    for d in &v.dims {
        let mut dim = Vec::new();
        match d {
            Dim::Fixed(n) => int_field(&mut dim, 1, *n as u64),
            Dim::Named(s) => bytes_field(&mut dim, 2, s.as_bytes()),
        }
        bytes_field(&mut shape, 1, &dim);
    }
    let mut tensor_type = Vec::new();
    int_field(&mut tensor_type, 1, FLOAT);
    bytes_field(&mut tensor_type, 2, &shape);
    let mut type_proto = Vec::new();
    bytes_field(&mut type_proto, 1, &tensor_type);
    let mut out = Vec::new();
    bytes_field(&mut out, 1, v.name.as_bytes());
    bytes_field(&mut out, 2, &type_proto);
    out
}

fn node(n: &Node) -> Vec<u8> {
    let mut out = Vec::new();
    for i in &n.inputs {
        bytes_field(&mut out, 1, i.as_bytes());
    }
    for o in &n.outputs {
        bytes_field(&mut out, 2, o.as_bytes());
    }
    bytes_field(&mut out, 4, n.op.as_bytes());
    out
}

fn initializer(t: &Initializer) -> Vec<u8> {
    let mut out = Vec::new();
    for &d in &t.dims {
        int_field(&mut out, 1, d as u64);
    }
    int_field(&mut out, 2, FLOAT);
    bytes_field(&mut out, 8, t.name.as_bytes());
    let raw: Vec<u8> = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
    bytes_field(&mut out, 9, &raw);
    out
}

/// Serialises `graph` as an ONNX model (IR version 8, default-domain opset 13).
pub(crate) fn encode(graph: &Graph) -> Vec<u8> {
    let mut g = Vec::new();
    for n in &graph.nodes {
        bytes_field(&mut g, 1, &node(n));
    }
    bytes_field(&mut g, 2, b"image-layered");
    for t in &graph.initializers {
        bytes_field(&mut g, 5, &initializer(t));
    }
    for v in &graph.inputs {
        bytes_field(&mut g, 11, &value_info(v));
    }
    for v in &graph.outputs {
        bytes_field(&mut g, 12, &value_info(v));
    }
    let mut opset = Vec::new();
    int_field(&mut opset, 2, 13);
    let mut model = Vec::new();
    int_field(&mut model, 1, 8);
    bytes_field(&mut model, 2, b"image-layered");
    bytes_field(&mut model, 7, &g);
    bytes_field(&mut model, 8, &opset);
    model
}

/// `y = Relu(x)` on a float tensor of shape `[1]`: the execution-provider probe.
pub(crate) fn probe_model() -> Vec<u8> {
    encode(&Graph {
        nodes: vec![Node {
            op: "Relu",
            inputs: vec!["x"],
            outputs: vec!["y"],
        }],
        inputs: vec![Value {
            name: "x",
            dims: vec![Dim::Fixed(1)],
        }],
        outputs: vec![Value {
            name: "y",
            dims: vec![Dim::Fixed(1)],
        }],
        initializers: vec![],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_fields_encode_like_protobuf() {
        let mut out = Vec::new();
        varint(&mut out, 300);
        assert_eq!(out, vec![0xAC, 0x02]);
        let mut out = Vec::new();
        bytes_field(&mut out, 1, b"x");
        assert_eq!(out, vec![0x0A, 0x01, b'x']);
        let mut out = Vec::new();
        int_field(&mut out, 2, 13);
        assert_eq!(out, vec![0x10, 13]);
    }

    #[test]
    fn probe_model_is_stable() {
        let model = probe_model();
        // ir_version 8 first, then producer name, graph and opset.
        assert_eq!(&model[..2], &[0x08, 0x08]);
        assert!(model.windows(4).any(|w| w == b"Relu"));
        assert_eq!(&model[model.len() - 4..], &[0x42, 0x02, 0x10, 13]);
    }
}
