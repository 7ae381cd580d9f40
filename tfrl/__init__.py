"""tfrl: reinforcement learning on TensorFlow, tf-agents and Reverb, wired by gin."""

import contextlib
import io
import os

# TensorFlow's C++ INFO lines at import (oneDNN, CPU instructions) are not
# for tfrl's users; its warnings and errors still show. Read once, when
# TensorFlow loads: effective when tfrl is imported first. A value the user
# set is kept.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

# tf-agents 0.19 imports the old `gym`, which prints a deprecation notice on
# import. tfrl uses gymnasium; keep the notice off the user's console.
with contextlib.redirect_stderr(io.StringIO()):
  try:
    import gym  # noqa: F401
  except ImportError:
    pass

from tfrl import agents, distributed, drivers, envs, networks, replay, rudder, train  # noqa: E402
from tfrl.errors import ConfigError  # noqa: E402

__version__ = "0.1.0"


def __getattr__(name):
  # tfrl.experiments (plots, grids, videos) pulls in matplotlib and pandas:
  # imported on first use, so training scripts do not pay for it.
  if name == "experiments":
    import importlib  # pylint: disable=import-outside-toplevel
    return importlib.import_module("tfrl.experiments")
  raise AttributeError(f"module 'tfrl' has no attribute {name!r}")
