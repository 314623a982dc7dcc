"""Keras 3 skills: custom layers (layers.py) and models (models.py) on any backend, callbacks
(callbacks.py), the Fashion-MNIST training run (training.py), custom TensorFlow loops (custom_loop.py).

Importing `layers` or `models` registers the custom classes for `.keras` loading.
"""
