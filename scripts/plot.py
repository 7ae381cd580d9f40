#!/usr/bin/env python
r"""Plots learning curves from run directories (Spinning Up's `plot`).

  python scripts/plot.py runs/lr_ --out=lr.png                 # every variant of a grid
  python scripts/plot.py runs/ppo runs/vpg --legend PPO VPG --value avg_return loss --smooth 3
  python scripts/plot.py runs/lr_lr0-001 --count --xaxis=iteration

A LOGDIR that is not a directory is a prefix: every sibling directory starting
with it is plotted. Run directories (folders holding progress.csv) are found
recursively. Runs named `<exp>_s<seed>` are averaged per <exp> (mean, ±std
band); with --legend each LOGDIR is one curve. One PNG per --value: --out as
given for one value, `<out stem>_<value>.png` for several.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # importing tfrl imports TF

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _cli  # noqa: E402

PROG = "plot.py"


def parse_args(argv):
  parser = _cli.ArgumentParser(prog=PROG, description="Plots progress.csv of run directories.")
  parser.add_argument("logdir", nargs="+", help="run/experiment directories or their prefixes")
  parser.add_argument("--legend", "-l", nargs="+", help="one name per matched log directory")
  parser.add_argument("--xaxis", "-x", default="env_steps", help="progress.csv column for x")
  parser.add_argument("--value", "-y", nargs="+", default=["avg_return"],
                      help="progress.csv column(s) for y; one figure each")
  parser.add_argument("--count", action="store_true", help="one line per run, not the mean")
  parser.add_argument("--smooth", "-s", type=_cli.positive_int, default=1,
                      help="moving average over this many points")
  parser.add_argument("--select", nargs="*", default=[], help="keep runs whose path has all")
  parser.add_argument("--exclude", nargs="*", default=[], help="drop runs whose path has any")
  parser.add_argument("--out", "-o", default="plot.png", help="PNG file to write")
  args = parser.parse_args(argv)
  check_out(args.out)
  return args


def check_out(out: str):
  """Before TF is imported: a writable path of a format matplotlib writes."""
  _cli.check_creatable_file(out, "--out", prog=PROG)
  from matplotlib.backend_bases import FigureCanvasBase  # pylint: disable=import-outside-toplevel
  formats = FigureCanvasBase.get_supported_filetypes()
  extension = os.path.splitext(out)[1][1:].lower() or "png"
  if extension not in formats:
    fail(f"--out {out!r}: matplotlib writes no .{extension} files; use one of "
         f"{', '.join('.' + f for f in sorted(formats))}")


def main(argv=None) -> int:
  args = parse_args(sys.argv[1:] if argv is None else argv)
  from tfrl.errors import ConfigError
  from tfrl.experiments import plot
  try:
    plot.plot_runs(args.logdir, legend=args.legend, xaxis=args.xaxis, values=args.value,
                   count=args.count, smooth=args.smooth, select=args.select,
                   exclude=args.exclude, out=args.out)
  except ConfigError as e:
    fail(str(e).splitlines()[0])
  except OSError as e:
    fail(f"cannot write {args.out!r}: {e.strerror or e}")
  for path in plot.output_paths(args.out, args.value or [plot.DEFAULT_VALUE]).values():
    print(f"wrote {path}")
  return 0


def fail(message: str, code: int = 2):
  _cli.fail(message, code, prog=PROG)


if __name__ == "__main__":
  sys.exit(main())
