#!/usr/bin/env python
r"""Runs a grid of gin bindings × seeds, each run scripts/train.py in its own process.

  python scripts/grid.py --gin_file=reinforce_cartpole.gin --exp_name=lr \
      --param 'tfrl.agents.reinforce.learning_rate[lr]=1e-3,3e-3' \
      --param 'tfrl.train.train.num_envs=8,16' --seeds=0,1,2 --num_procs=2
  python scripts/plot.py runs/lr_ --out=lr.png

--param NAME=V1,V2,... adds a binding; NAME[sh]= gives its shorthand in run
names (default: the first three letters of each word of the parameter,
num_envs -> numenv). Values are Python literals (1e-3, True, (64, 64),
'CartPole-v1'); a bare word is a string and @name / %NAME pass to gin as
written. Commas inside brackets or quotes do not split values. A binding with
one value is fixed and stays out of the names.

Runs land in <data_dir>/<variant>/<variant>_s<seed> (console output in
<variant>_s<seed>.log beside it). Every variant's gin config is parsed before
anything starts. A failed run is reported and the others go on; the exit
status is 1 if any run failed, 2 for bad input.
"""

import ast
import os
import re
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # importing tfrl imports TF

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _cli  # noqa: E402

_PARAM = re.compile(r"^([^=\[\]\s]+)(?:\[([^\]]*)\])?=(.*)$", re.S)
PROG = "grid.py"


def parse_args(argv):
  parser = _cli.ArgumentParser(prog=PROG, description="Runs scripts/train.py over a grid of "
                               "bindings and seeds.")
  parser.add_argument("--gin_file", action="append", required=True,
                      help="gin file(s), as for train.py; repeatable")
  parser.add_argument("--exp_name", required=True, help="grid name, the start of every run name")
  parser.add_argument("--param", action="append", default=[], metavar="NAME[sh]=V1,V2",
                      help="a gin binding and its values; repeatable")
  parser.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
  parser.add_argument("--num_procs", type=_cli.positive_int, default=1,
                      help="runs at a time (default 1)")
  parser.add_argument("--data_dir", default="runs", help="where the runs go (default runs)")
  return parser.parse_args(argv)


def parse_param(text: str):
  """'NAME[sh]=V1,V2' -> (NAME, sh or None, [values])."""
  match = _PARAM.match(text.strip())
  if not match:
    raise ValueError(f"--param {text!r}: expected NAME=V1,V2,... or NAME[shorthand]=V1,V2,...")
  name, shorthand, values_text = match.groups()
  texts = split_values(values_text)
  if not texts or any(not t for t in texts):
    raise ValueError(f"--param {text!r}: empty value")
  return name, shorthand, [parse_value(t) for t in texts]


def split_values(text: str):
  """Splits on commas outside brackets and quotes: '(64,64),(32,)' -> ['(64,64)', '(32,)']."""
  parts, depth, quote, start = [], 0, None, 0
  for i, c in enumerate(text):
    if quote:
      quote = None if c == quote else quote
    elif c in "'\"":
      quote = c
    elif c in "([{":
      depth += 1
    elif c in ")]}":
      depth -= 1
    elif c == "," and depth == 0:
      parts.append(text[start:i].strip())
      start = i + 1
  parts.append(text[start:].strip())
  return parts


def parse_value(text: str):
  """A Python literal if it is one; else the text as a string (gin references stay as written)."""
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def parse_seeds(text: str):
  texts = [s.strip() for s in text.split(",")]
  if not any(texts):
    raise ValueError("--seeds: give at least one seed")
  if not all(t.isdigit() for t in texts):
    raise ValueError(f"--seeds {text!r}: expected comma-separated integers >= 0, e.g. 0,1,2")
  return [int(t) for t in texts]


def main(argv=None) -> int:
  args = parse_args(sys.argv[1:] if argv is None else argv)
  try:  # what needs no TF first: the import below takes seconds
    seeds = parse_seeds(args.seeds)
    params = [parse_param(text) for text in args.param]
  except ValueError as e:
    fail(str(e))
  _cli.check_creatable_dir(args.data_dir, "--data_dir", prog=PROG)
  from tfrl.experiments import ExperimentGrid
  from tfrl.train import config
  try:
    grid = ExperimentGrid(args.exp_name)
    for name, shorthand, values in params:
      grid.add(name, values, shorthand=shorthand)
    for gin_file in args.gin_file:
      config.resolve_gin_file(gin_file)
    grid.runs(seeds, args.data_dir)  # clashing names or repeated seeds fail here, not later
    grid.check(args.gin_file)
  except ValueError as e:  # ConfigError is one
    fail(str(e).splitlines()[0])
  try:
    results = grid.run(args.gin_file, seeds=seeds, data_dir=args.data_dir,
                       num_procs=args.num_procs)
  except KeyboardInterrupt:
    fail("interrupted; running the same grid again resumes its runs", code=130)
  return 0 if all(r.ok for r in results) else 1


def fail(message: str, code: int = 2):
  _cli.fail(message, code, prog=PROG)


if __name__ == "__main__":
  sys.exit(main())
