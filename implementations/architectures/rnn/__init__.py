"""Recurrent networks in plain PyTorch: an LSTM from tensor ops, a sequence tagger with
packing and masking, a character language model, and an LSTM forecaster with baselines."""
