"""Errors that mean "the user's input is wrong", reported as one line by scripts."""


class ConfigError(ValueError):
  """Bad user input: an unknown environment id, gin file, binding, run directory..."""
