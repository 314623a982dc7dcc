"""NumPy-only neural-network fundamentals (CS231n-style layers, torch-style names).

Every layer follows one protocol (see `layers.Layer`): `forward(x, training=True)` caches what
`backward(dout)` needs; `backward` returns the input gradient and fills `grads`, parallel to
`params` (dicts of name -> ndarray). Nothing here imports anything but NumPy.
"""
