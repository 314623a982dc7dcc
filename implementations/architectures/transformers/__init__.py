"""Attention, positional encodings, a small transformer and BERT fine-tuning, in PyTorch."""
