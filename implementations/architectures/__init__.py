"""Specialised architectures in plain PyTorch: cnn/ (rnn/, transformers/, generative/ beside it)."""
