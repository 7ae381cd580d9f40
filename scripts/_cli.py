"""Bad input to a script is one line, `<script>: error: <message>` on stderr,
and exit status 2, before anything is written or started.

Imports neither tfrl nor TensorFlow, so the checks here run before a script's
heavy imports. absl scripts replace `app.run(main)` with `_cli.run(main)`;
argparse scripts build their parser with `_cli.ArgumentParser` and the
`positive_int`-style types.
"""

import argparse
import os
import sys
from typing import Callable, Iterable, NoReturn, Optional, Sequence


def script_name() -> str:
  return os.path.basename(sys.argv[0]) or "script"


def fail(message: str, code: int = 2, prog: Optional[str] = None) -> NoReturn:
  """Prints `<prog>: error: <first line of message>` and exits with `code`."""
  lines = str(message).strip().splitlines()
  print(f"{prog or script_name()}: error: {lines[0] if lines else 'bad input'}", file=sys.stderr)
  sys.exit(code)


def is_config_error(error: BaseException) -> bool:
  """tfrl's ConfigError, without importing tfrl (and TF) to test for it."""
  errors = sys.modules.get("tfrl.errors")
  return errors is not None and isinstance(error, errors.ConfigError)


def run(main: Callable, *, positional_args: bool = False) -> None:
  """`app.run(main)` where an unknown flag, a flag value its parser, bounds or
  validators refuse, an unexpected positional argument (unless
  `positional_args`), and an `app.UsageError` or tfrl `ConfigError` out of
  `main` are each one line and exit status 2 (absl: usage text, status 1)."""
  from absl import app, flags  # pylint: disable=import-outside-toplevel

  def parse(argv):
    try:
      rest = flags.FLAGS(argv)
    except flags.Error as e:
      fail(str(e))
    if len(rest) > 1 and not positional_args:
      fail(f"unexpected arguments {rest[1:]}")
    return rest

  def checked_main(argv):
    try:
      return main(argv)
    except app.UsageError as e:
      fail(str(e))
    except ValueError as e:
      if not is_config_error(e):
        raise
      fail(str(e))

  app.run(checked_main, flags_parser=parse)


# Values. Each check raises ValueError with what is wrong; absl flag parsers
# and argparse types turn that into their flag's error.

def int_at_least(text, lower_bound: int) -> int:
  try:
    value = int(text)
  except (TypeError, ValueError):
    raise ValueError(f"{text!r} is not an integer") from None
  if value < lower_bound:
    raise ValueError(f"{value} is not >= {lower_bound}")
  return value


def _argparse_type(check, name):
  def parse(text):
    try:
      return check(text)
    except ValueError as e:
      raise argparse.ArgumentTypeError(str(e)) from None
  parse.__name__ = name
  return parse


positive_int = _argparse_type(lambda text: int_at_least(text, 1), "positive_int")
non_negative_int = _argparse_type(lambda text: int_at_least(text, 0), "non_negative_int")


class ArgumentParser(argparse.ArgumentParser):
  """argparse whose errors are one line and exit 2 (argparse: usage line too)."""

  def error(self, message):
    fail(message, prog=self.prog)


def _absl_list_parser(convert, flag_type_text, allow_empty):
  from absl import flags  # pylint: disable=import-outside-toplevel

  class Parser(flags.ListParser):

    def parse(self, argument):
      items = super().parse(argument)
      if not items and not allow_empty:
        raise ValueError("give at least one value")
      return [convert(item) for item in items]

    def flag_type(self):
      return flag_type_text

  return Parser()


def require_positive(*names: str) -> None:
  """absl flags (floats, say) that must be > 0 when given."""
  from absl import flags  # pylint: disable=import-outside-toplevel
  for name in names:
    flags.register_validator(name, lambda value: value is None or value > 0,
                             message="must be > 0")


def _calling_script() -> str:
  """The module defining the flag, as absl names it (so --helpshort lists it)."""
  name = sys._getframe(2).f_globals.get("__name__", "")  # pylint: disable=protected-access
  return sys.argv[0] if name == "__main__" else name


def define_int_list(name: str, default: Sequence, help_text: str, lower_bound: int = 0,
                    words: Iterable[str] = (), allow_empty: bool = False) -> None:
  """A comma-separated absl list flag of integers >= `lower_bound` (or one of
  `words`), at least one unless `allow_empty`; FLAGS.<name> holds ints."""
  from absl import flags  # pylint: disable=import-outside-toplevel
  words = tuple(words)

  def convert(item):
    return item if item in words else int_at_least(str(item).strip(), lower_bound)

  kind = f"integers >= {lower_bound}" + "".join(f" or {w!r}" for w in words)
  flags.DEFINE(_absl_list_parser(convert, f"comma separated list of {kind}", allow_empty), name,
               [str(v) for v in default], help_text, serializer=flags.CsvListSerializer(","),
               module_name=_calling_script())


def define_choice_list(name: str, default: Sequence[str], choices: Sequence[str],
                       help_text: str, allow_empty: bool = False) -> None:
  """A comma-separated absl list flag whose items are each one of `choices`,
  at least one unless `allow_empty`."""
  from absl import flags  # pylint: disable=import-outside-toplevel

  def convert(item):
    if item not in choices:
      raise ValueError(f"{item!r} is not one of {', '.join(choices)}")
    return item

  flags.DEFINE(_absl_list_parser(convert, f"comma separated list of {'|'.join(choices)}",
                                 allow_empty), name,
               list(default), help_text, serializer=flags.CsvListSerializer(","),
               module_name=_calling_script())


# Paths: checked before anything is created.

def check_existing_dir(path: str, what: str, prog: Optional[str] = None) -> None:
  if not os.path.exists(path):
    fail(f"{what} {path!r} does not exist", prog=prog)
  if not os.path.isdir(path):
    fail(f"{what} {path!r} is a file, not a directory", prog=prog)


def check_creatable_dir(path: str, what: str, prog: Optional[str] = None) -> None:
  """`path` is a directory or can be made one (its nearest existing ancestor
  is a writable directory)."""
  if not path:
    fail(f"{what} is empty", prog=prog)
  if os.path.exists(path) and not os.path.isdir(path):
    fail(f"{what} {path!r} is a file, not a directory", prog=prog)
  _check_nearest_ancestor(path, what, prog=prog)


def check_creatable_file(path: str, what: str, prog: Optional[str] = None,
                         makes_parents: bool = True) -> None:
  """`path` can be written as a file: not a directory; its directory exists
  (or, if the script `makes_parents`, can be made) and is writable."""
  if not path:
    fail(f"{what} is empty", prog=prog)
  if os.path.isdir(path):
    fail(f"{what} {path!r} is a directory", prog=prog)
  directory = os.path.dirname(os.path.abspath(path))
  if not makes_parents and not os.path.isdir(directory):
    fail(f"{what} {path!r}: no directory {directory!r}", prog=prog)
  _check_nearest_ancestor(directory, what, path, prog)


def _check_nearest_ancestor(directory: str, what: str, path: Optional[str] = None,
                            prog: Optional[str] = None) -> None:
  path = directory if path is None else path
  ancestor = os.path.abspath(directory)
  while not os.path.exists(ancestor):
    ancestor = os.path.dirname(ancestor)
  if not os.path.isdir(ancestor):
    fail(f"{what} {path!r} cannot be created: {ancestor!r} is a file", prog=prog)
  if not os.access(ancestor, os.W_OK | os.X_OK):
    fail(f"{what} {path!r} cannot be created: {ancestor!r} is not writable", prog=prog)


def check_address(address: Optional[str], what: str, prog: Optional[str] = None) -> None:
  """"host:port" with a port in 1..65535."""
  if not address:
    fail(f"give the Reverb server's address explicitly: {what}=host:port", prog=prog)
  host, _, port = address.rpartition(":")
  if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
    fail(f"{what}={address!r} is not host:port with a port in 1..65535", prog=prog)


def check_port_free(port: int, what: str, prog: Optional[str] = None) -> None:
  """Nothing listens on `port` yet (Reverb would bind all interfaces there)."""
  import socket  # pylint: disable=import-outside-toplevel
  with socket.socket() as probe:
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free
    try:
      probe.bind(("", port))
    except OSError as e:
      fail(f"{what}={port}: cannot listen there ({e.strerror or e})", prog=prog)


def check_ray_address(address: str, what: str, prog: Optional[str] = None) -> None:
  """`auto`, `ray://host:port` or `host:port`, and something listens there
  (ray.init would retry an unreachable address for minutes)."""
  import socket  # pylint: disable=import-outside-toplevel
  target = address
  if address == "auto":
    from ray._private import services  # pylint: disable=import-outside-toplevel  (no TF)
    try:
      target = services.canonicalize_bootstrap_address_or_die("auto")
    except ConnectionError:
      fail(f"{what}=auto: no Ray cluster is running on this machine (start one with "
           "`ray start --head`, or drop the flag for a local Ray)", prog=prog)
  elif address.startswith("ray://"):
    target = address[len("ray://"):]
  host, _, port = target.rpartition(":")
  if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
    fail(f"{what}={address!r} is not auto, ray://host:port or host:port", prog=prog)
  try:
    socket.create_connection((host, int(port)), timeout=5).close()
  except OSError as e:
    fail(f"{what}={address!r}: cannot reach a Ray cluster there ({e.strerror or e})", prog=prog)
