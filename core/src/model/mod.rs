//! Models on disk: ONNX inspection and the model bundle (ONNX + labels + nvinfer config).
