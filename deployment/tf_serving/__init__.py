"""TensorFlow Serving: export in its layout (export.py), models.config (config.py), a REST client
(client.py), and a stand-in REST server for where `tensorflow_model_server` is absent (server.py,
started with `python -m deployment.tf_serving --rest_api_port=PORT --model_config_file=FILE`).
"""
