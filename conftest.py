"""Loads the harness plugin when milestone is not installed (the plugin lives in harness/plugin.py).

`make`/tox install milestone, whose `pytest11` entry point loads the plugin before pytest parses
the command line (so `pytest --run-dir DIR` works with a space). Without the install, this file
loads it instead; then pass options as `--run-dir=DIR`.
"""
from importlib.metadata import entry_points

if not any(ep.name == "milestone" for ep in entry_points(group="pytest11")):
    pytest_plugins = ["harness.plugin"]
