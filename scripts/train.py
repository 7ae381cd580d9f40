#!/usr/bin/env python
r"""Trains an agent from gin files.

  python scripts/train.py --gin_file=reinforce_cartpole.gin
  python scripts/train.py --gin_file=envs/cartpole.gin --gin_file=agents/reinforce.gin \
      --gin_bindings='tfrl.train.train.num_iterations=100' --seed=3 --root_dir=runs/mine

A bare file name resolves against gin_configs/. Starting again on an existing
--root_dir resumes that run (same config required).
"""

import os
import signal
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's C++ start-up chatter off the console

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _cli  # noqa: E402  (one-line flag errors, before TF is imported)
from absl import flags, logging  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("gin_file", [], "Gin file(s), applied in order.")
flags.DEFINE_multi_string("gin_bindings", [], "Gin bindings, applied after the files.")
flags.DEFINE_string("root_dir", None, "Run directory (default: a new folder under runs/).")
flags.DEFINE_integer("seed", None, "Seed (overrides tfrl.train.train.seed).", lower_bound=0)
flags.DEFINE_string("replay_server", None, "host:port of a Reverb server started by "
                    "scripts/reverb_server.py: this process becomes the distributed learner "
                    "(default: collect and train here, replay embedded).")


def main(argv):
  del argv  # _cli.run refuses positional arguments
  if not FLAGS.gin_file:
    fail("give at least one --gin_file")
  if not FLAGS["verbosity"].present:
    # tf-agents' PolicySaver logs each traced signature at INFO/WARNING;
    # the run's own output is the console table. --verbosity=0 brings them back.
    logging.set_verbosity(logging.ERROR)
  from tfrl.errors import ConfigError
  from tfrl.train import config
  try:
    bindings = list(FLAGS.gin_bindings)
    if FLAGS.seed is not None:
      bindings.append(f"tfrl.train.train.seed = {FLAGS.seed}")
    if FLAGS.replay_server:
      bindings.append(f"tfrl.train.train.replay_server_address = '{FLAGS.replay_server}'")
    config.parse_config(FLAGS.gin_file, bindings)
    root_dir = FLAGS.root_dir or default_root_dir(FLAGS.gin_file, FLAGS.seed)
    import tfrl
    run_config = tfrl.train.RunConfig()
    # The one place that picks the mode: an external server makes this process
    # the distributed learner; otherwise the single-process loop.
    if run_config.distributed:
      tfrl.distributed.learn(root_dir, run_config)
    else:
      tfrl.train.train(root_dir, run_config)
  except ConfigError as e:
    fail(str(e).splitlines()[0])
  except (ValueError, RuntimeError) as e:
    # gin reports a missing required binding when the configurable is called.
    if "Required bindings" in str(e) or "gin" in type(e).__module__:
      fail(config.one_line_gin_error(e))
    raise
  except FloatingPointError as e:
    # Training diverged; the run directory keeps its last good checkpoint.
    fail(str(e).splitlines()[0], code=1)
  except KeyboardInterrupt as e:
    # The loop stops at an iteration boundary and checkpoints (tfrl.train.loop.Interrupted);
    # a second Ctrl-C stops at once, and the run resumes from its last checkpoint.
    signum = getattr(e, "signum", signal.SIGINT)
    fail(str(e) or "interrupted; the run resumes from its last checkpoint", code=128 + signum)


def default_root_dir(gin_files, seed) -> str:
  stem = os.path.splitext(os.path.basename(gin_files[-1]))[0]
  suffix = "" if seed is None else f"-seed{seed}"
  return os.path.join("runs", f"{stem}{suffix}-{time.strftime('%Y%m%d-%H%M%S')}")


def fail(message: str, code: int = 2):
  print(f"train.py: error: {message}", file=sys.stderr)
  sys.exit(code)


if __name__ == "__main__":
  _cli.run(main)
