#!/usr/bin/env python
r"""Runs a run directory's saved greedy policy and reports returns and lengths.

  python scripts/test_policy.py RUN_DIR [-n EPISODES] [-l MAX_LEN] [--norender]
      [--video OUT.mp4] [--checkpoint ITERATION]

The policy is loaded with tf-agents' policy_loader from RUN_DIR/policies
(the SavedModel train.py writes, with the variables of the latest evaluation
or of --checkpoint ITERATION): no tfrl training code is involved. The
environment is the one RUN_DIR/config.gin names, built with the run's
bindings (its env family's settings, e.g. tfrl.envs.Atari.*, and load's
env_kwargs) as an evaluation env: Atari's whole games and raw scores. With
--video, frames are the env's own rgb_array renders (Atari: the raw screen,
not the preprocessed frames the policy sees), are
rendered off-screen and written as an mp4 with imageio; if
rendering needs an X display and there is none, a virtual one is started
with pyvirtualdisplay (Xvfb). Without --video the episodes are shown in a
window unless --norender is given or no display exists.
"""

import os
import re
import sys
from typing import List, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's C++ start-up chatter off the console

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _cli  # noqa: E402

POLICY_DIR = "policies"
PROG = "test_policy.py"


class UsageError(Exception):
  """Bad input: reported as one line."""


def parse_args(argv):
  parser = _cli.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
  parser.add_argument("run_dir")
  parser.add_argument("-n", "--episodes", type=_cli.positive_int, default=5)
  parser.add_argument("-l", "--max_len", type=_cli.positive_int, default=None,
                      help="cut episodes at this many steps (default: the env's limit)")
  parser.add_argument("--norender", action="store_true")
  parser.add_argument("--video", default=None, help="write the episodes to this mp4")
  parser.add_argument("--checkpoint", type=_cli.non_negative_int, default=None,
                      help="the evaluation iteration whose variables to load (default: latest)")
  parser.add_argument("--seed", type=_cli.non_negative_int, default=0)
  args = parser.parse_args(argv)
  if args.video is not None:
    _cli.check_creatable_file(args.video, "--video", prog=PROG, makes_parents=False)
    if not args.video.lower().endswith(".mp4"):
      parser.error(f"--video {args.video!r}: give a file name ending in .mp4")
  return args


def env_id_of(run_dir: str) -> str:
  config = os.path.join(run_dir, "config.gin")
  if not os.path.exists(config):
    raise UsageError(f"{run_dir!r} is not a run directory (no config.gin)")
  match = re.search(r"env_id\s*=\s*['\"]([^'\"]+)['\"]", open(config).read())
  if not match:
    raise UsageError(f"{config} names no env_id")
  return match.group(1)


def apply_run_bindings(run_dir: str) -> None:
  """Parses RUN_DIR/config.gin (the run's operative config) into gin, so the
  env is built with the settings it was trained with; configurables this
  tfrl does not have are skipped."""
  import gin  # pylint: disable=import-outside-toplevel
  from tfrl.train.config import one_line_gin_error  # pylint: disable=import-outside-toplevel
  gin.clear_config()
  try:
    gin.parse_config_file(os.path.join(run_dir, "config.gin"), skip_unknown=True)
  except (ValueError, SyntaxError, KeyError, TypeError, IOError) as e:
    gin.clear_config()
    raise UsageError(f"{run_dir!r}: config.gin does not parse: {one_line_gin_error(e)}") from None


def policy_paths(run_dir: str, iteration: Optional[int]):
  saved_model = os.path.join(run_dir, POLICY_DIR, "saved_model")
  if not os.path.exists(os.path.join(saved_model, "saved_model.pb")):
    raise UsageError(f"{run_dir!r} holds no saved policy ({saved_model} is missing)")
  checkpoints_dir = os.path.join(run_dir, POLICY_DIR, "checkpoints")
  available = sorted(int(n) for n in os.listdir(checkpoints_dir) if n.isdigit()) \
      if os.path.isdir(checkpoints_dir) else []
  if iteration is None:
    return saved_model, (os.path.join(checkpoints_dir, f"{available[-1]:09d}")
                         if available else None)
  if iteration not in available:
    raise UsageError(f"no policy checkpoint for iteration {iteration} in {run_dir!r}; "
                     f"available: {available}")
  return saved_model, os.path.join(checkpoints_dir, f"{iteration:09d}")


def run(args) -> List[float]:
  if not os.path.exists(args.run_dir):
    raise UsageError(f"run directory {args.run_dir!r} does not exist")
  if not os.path.isdir(args.run_dir):
    raise UsageError(f"run directory {args.run_dir!r} is a file, not a directory")
  env_id = env_id_of(args.run_dir)
  saved_model, checkpoint = policy_paths(args.run_dir, args.checkpoint)
  # The run directory checked first: these imports take seconds (TF).
  # tfrl first: it keeps the old gym's import notice (via tf-agents) off the console.
  import tfrl  # pylint: disable=import-outside-toplevel  (for the environment suite only)
  import numpy as np  # pylint: disable=import-outside-toplevel
  from tfrl.experiments.episodes import run_episodes, write_mp4  # pylint: disable=import-outside-toplevel
  from tf_agents.policies import policy_loader  # pylint: disable=import-outside-toplevel

  tfrl.envs.check_env_id(env_id)  # before the (slower) policy load
  apply_run_bindings(args.run_dir)
  try:
    policy = policy_loader.load(saved_model, checkpoint)
  except Exception as e:  # pylint: disable=broad-except  (any failure here is a damaged file)
    detail = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
    source = saved_model + (f" with the variables in {checkpoint}" if checkpoint else "")
    raise UsageError(f"cannot load the policy {source} (damaged?): "
                     f"{type(e).__name__} {detail}".rstrip()) from None

  on_screen = args.video is None and not args.norender
  if on_screen and not os.environ.get("DISPLAY"):
    print("no display: not rendering on screen (use --video to record)", file=sys.stderr)
    on_screen = False
  render_mode = "rgb_array" if args.video else ("human" if on_screen else None)
  env = tfrl.envs.load(env_id, seed=args.seed, max_episode_steps=args.max_len,
                       render_mode=render_mode, training=False)
  try:
    # policy_loader gives a py policy that batches the time step itself.
    episodes = run_episodes(
        env, policy, args.episodes, record=args.video is not None,
        on_episode=lambda i, ret, length: print(f"episode {i}: return {ret:.2f}, length {length}"))
  finally:
    env.close()
  print(f"average return {np.mean(episodes.returns):.2f} over {len(episodes.returns)} episodes "
        f"(policy {checkpoint or saved_model})")
  if args.video:
    write_mp4(args.video, episodes.frames, env.gym.metadata.get("render_fps") or 30)
    print(f"wrote {args.video}: {len(episodes.frames)} frames")
  return episodes.returns


def main(argv=None):
  args = parse_args(argv if argv is not None else sys.argv[1:])
  try:
    run(args)
  except UsageError as e:
    _cli.fail(str(e), prog=PROG)
  except ValueError as e:
    if not _cli.is_config_error(e):
      raise
    _cli.fail(str(e), prog=PROG)
  return 0


if __name__ == "__main__":
  sys.exit(main())
