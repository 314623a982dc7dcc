"""The milestone harness: the pytest plugin (`harness.plugin`) that every assessment runs under.

It is installed as a pytest plugin (the `pytest11` entry point in pyproject.toml), so its options
(`--budget`, `--seed`, `--run-dir`) are known before pytest parses the command line.
"""
