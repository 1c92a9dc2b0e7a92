//! The names of the ONNX ops vae-cpu writes: the layers export them (`layers`), the
//! structural check and our own reader know them (`onnx`). Every build has it, the edge
//! build too.

/// The ONNX ops the layer types may write.
pub const LAYER_OPS: [&str; 17] = [
    "Conv",
    "ConvTranspose",
    "DepthToSpace",
    "Slice",
    "Mul",
    "Max",
    "Min",
    "Gemm",
    "BatchNormalization",
    "InstanceNormalization",
    "Relu",
    "LeakyRelu",
    "PRelu",
    "Sigmoid",
    "Tanh",
    "Flatten",
    "Reshape",
];
