"""TorchServe deployment of the Fashion-MNIST SmallCNN.

- handler.py: the custom handler (validation, preprocess, inference, postprocess, batching);
  runs inside TorchServe's worker and imports nothing from this project;
- archive.py: train or load the model, pack it with torch-model-archiver, in-process reference;
- server.py: private TorchServe instances (127.0.0.1, free ports, PID-based stop);
- client.py: REST client and a bounded concurrent load generator;
- __main__.py: `python -m deployment.torchserve archive|start|stop`.
"""
