"""`train`: a single-process run — on-policy, off-policy or compiled — through the one loop."""

from typing import Callable, Optional, Sequence

from tfrl.errors import ConfigError
from tfrl.train import compiled, loop, sources
from tfrl.train.settings import RunConfig


def train(root_dir: str, config: Optional[RunConfig] = None, hooks: Sequence[loop.Hook] = (),
          log: Callable[[str], None] = print, **settings) -> dict:
  """Trains an agent in this process; resumes if `root_dir` holds a
  checkpoint of the same config. Returns the last progress row (with
  `num_seeds` > 1: the seeds' last rows, in seed order; their run
  directories are `<root_dir>/seed_<s>`).

  `config`: a RunConfig; by default the one gin's `tfrl.train.train.*`
  bindings describe, with `settings` (its field names) on top. `hooks`:
  extra `tfrl.train.Hook`s (e.g. `StopAtReturn(475)`), run after the
  evaluation and before the checkpoint.
  """
  if config is None:
    config = RunConfig(**settings)
  elif settings:
    raise ConfigError(f"give either a RunConfig or settings, not both ({sorted(settings)})")
  config.check()
  if config.distributed:
    raise ConfigError("replay_server_address is the distributed learner's: run "
                      "tfrl.distributed.learn (scripts/train.py --replay_server=host:port)")
  if config.compiled:
    return compiled.train_compiled(root_dir, config, hooks, log)
  parts = sources.build_parts(config, config.num_envs)
  source = None
  try:
    if config.on_policy:
      transform = None
      if config.reward_redistribution is not None:
        transform = config.reward_redistribution(*sources.tensor_specs(parts.env))
      source = sources.EpisodeSource(config, parts, transform)
    else:
      source = sources.SampleSource(config, parts)
    return loop.run_loop(root_dir, config, parts.agent, parts.evaluator, source, hooks, log)
  finally:
    if source is not None:
      source.close()
    parts.close()
