"""`KERAS_BACKEND=<backend> python -m assessments.keras._backend_parity [--quick] [--without-tensorflow]`:
the custom layers' and models' parity and round-trip checks on that backend, printed as one JSON
line on stdout.

Keras fixes its backend when it is first imported, so a test on another backend than the running
process's starts this module in a subprocess (assessments/keras/test_backends.py).
`--without-tensorflow` runs as where TensorFlow is not installed (the keras-torch and keras-jax
tox envs): Keras' saving code imports TensorFlow, when present, only for an isinstance check.
"""
import json
import sys
import tempfile

if __name__ == "__main__":
    if "--without-tensorflow" in sys.argv:
        sys.modules["tensorflow"] = None  # makes `import tensorflow` raise ImportError
    from assessments.keras._helpers import parity_report

    with tempfile.TemporaryDirectory() as tmp:
        report = parity_report(tmp, quick="--quick" in sys.argv)
    sys.stdout.write("PARITY " + json.dumps(report) + "\n")
