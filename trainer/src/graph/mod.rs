//! ONNX graphs executed by burn: load, forward (train and eval), freeze, export.
