"""Policy evaluation: average undiscounted return over K episodes."""

from typing import List, NamedTuple

import numpy as np
import tqdm

from tfrl.drivers import Driver


class EvalResult(NamedTuple):
  avg_return: float
  returns: List[float]
  lengths: List[int]


class Evaluator:
  """Runs `num_episodes` fresh episodes of `policy` on `env` per call."""

  def __init__(self, env, policy, num_episodes: int = 10):
    self.num_episodes = num_episodes
    self._returns: List[float] = []
    self._lengths: List[int] = []
    self.policy = policy
    self._progress = None
    self._driver = Driver(env, policy, on_episode=self._record)

  def _record(self, env: int, episode_return: float, length: int):
    self._returns.append(episode_return)
    self._lengths.append(length)
    if self._progress is not None:
      self._progress.update(1)

  def __call__(self) -> EvalResult:
    self._returns.clear()
    self._lengths.clear()
    with tqdm.tqdm(total=self.num_episodes, desc="eval", disable=None, leave=False) as bar:
      self._progress = bar
      self._driver.run_episodes(self.num_episodes)
    return EvalResult(float(np.mean(self._returns)), list(self._returns), list(self._lengths))
