"""Hugging Face & advanced tools: Trainer fine-tuning, a custom pipeline, ONNX conversion, inference speed."""
