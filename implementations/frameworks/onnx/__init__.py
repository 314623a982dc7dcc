"""ONNX between frameworks: export from PyTorch (both exporters) and Keras (`export`), ONNX to
TensorFlow / PyTorch (`convert`), optimum-style output parity (`parity`), and the small Keras twin
of the cnn area's CNN (`keras_twin`)."""
