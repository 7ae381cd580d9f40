"""Loading gin configs for the scripts: file lookup and one-line error messages."""

import logging
import os
import re
from typing import Sequence

import gin

from tfrl.errors import ConfigError

# The repository's gin_configs/ (tfrl is installed in editable/development mode).
GIN_CONFIGS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "gin_configs")


def resolve_gin_file(name: str) -> str:
  """A path as given if it exists, else relative to gin_configs/ (".gin" optional)."""
  candidates = [name, os.path.join(GIN_CONFIGS_DIR, name)]
  if not name.endswith(".gin"):
    candidates += [c + ".gin" for c in candidates]
  for path in candidates:
    if os.path.isfile(path):
      return path
  raise ConfigError(f"gin file {name!r} not found (looked in the current directory and "
                    f"{GIN_CONFIGS_DIR})")


def parse_config(gin_files: Sequence[str], bindings: Sequence[str] = ()) -> None:
  """Parses gin files then bindings; any problem becomes one ConfigError line.
  (Every configurable is registered by now: importing this module ran
  tfrl/__init__.py, which imports every subpackage.)"""
  paths = [resolve_gin_file(f) for f in gin_files]
  gin.clear_config()
  gin.add_config_file_search_path(GIN_CONFIGS_DIR)
  root_logger = logging.getLogger()
  level = root_logger.level
  # gin logs an error each time an `include` is not found relative to the
  # current directory before it tries the search path: noise, not a problem.
  root_logger.setLevel(logging.CRITICAL)
  try:
    gin.parse_config_files_and_bindings(paths, list(bindings), finalize_config=False)
  except (ValueError, SyntaxError, KeyError, TypeError, IOError) as e:
    gin.clear_config()
    raise ConfigError(one_line_gin_error(e)) from None
  finally:
    root_logger.setLevel(level)
  undefined = undefined_macros()
  if undefined:
    gin.clear_config()
    raise ConfigError(f"undefined gin macro(s): {', '.join('%' + m for m in undefined)} "
                      "(define them, e.g. NAME = 3, in a gin file or --gin_bindings)")


def undefined_macros():
  """Macros the parsed config references (`%NAME`) but never defines
  (neither a macro nor a `gin.constant`, e.g. `%tfrl.networks.NATURE_DQN_CONV`)."""
  referenced = sorted(set(re.findall(r"%([A-Za-z_][\w./]*)", gin.config_str())))
  return [name for name in referenced if not _defined(name)]


def _defined(name: str) -> bool:
  for query in (f"%{name}", name):  # a macro; a constant (gin queries those by bare name)
    try:
      gin.query_parameter(query)
      return True
    except ValueError:
      pass
  return False


def one_line_gin_error(e: BaseException) -> str:
  """gin's multi-line messages, folded: 'what is wrong (where)'."""
  if isinstance(e, SyntaxError) and e.filename:
    return f"gin syntax error: {e.msg} ({e.filename}, line {e.lineno})"
  lines = [l.strip() for l in str(e).splitlines() if l.strip()]
  what = lines[0] if lines else type(e).__name__
  where = next((l for l in lines if l.startswith("In file") or l.startswith("In bindings")), "")
  match = re.match(r'In file "(.*)", line (\d+)', where)
  if match:
    where = f"{match.group(1)}, line {match.group(2)}"
  elif where.startswith("In bindings"):
    binding = lines[lines.index(where) + 1] if lines.index(where) + 1 < len(lines) else ""
    where = f"binding {binding!r}"
  return f"{what} ({where})" if where else what


def run_script(name: str, argv, gin_files: Sequence[str], bindings: Sequence[str], job) -> None:
  """A role script's main: parse the gin files, run `job()`; bad input is one
  line on stderr and exit 2, Ctrl-C exit 130 (the distributed roles)."""
  import sys  # pylint: disable=import-outside-toplevel
  from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel

  def fail(message, code=2):
    print(f"{name}: error: {message}", file=sys.stderr)
    sys.exit(code)

  if len(argv) > 1:
    fail(f"unexpected arguments {argv[1:]}")
  if not gin_files:
    fail("give at least one --gin_file")
  absl_logging.set_verbosity(absl_logging.ERROR)
  try:
    parse_config(gin_files, bindings)
    job()
  except ConfigError as e:
    fail(str(e).splitlines()[0])
  except (ValueError, RuntimeError) as e:
    if "Required bindings" in str(e) or "gin" in type(e).__module__:
      fail(one_line_gin_error(e))
    raise
  except KeyboardInterrupt:
    fail("interrupted", code=130)
