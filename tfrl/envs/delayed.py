"""Delayed-reward environments (RUDDER's test bed).

`DelayedReward` wraps any gymnasium env: every step pays 0, and the step that
ends the episode (terminated or truncated) pays the episode's whole sum, so
the return is unchanged but nothing says which actions earned it.

`CoinWalk` is the RUDDER tutorial's 1-D task: 13 positions -6..+6, start at
0, actions left/right (moves past the ends are ignored), 50 steps, +1 for
each step spent at position +2 (the best return is 24: reach +2 in two
steps, then step off and back). Registered twice: `tfrl/CoinWalk-v0`
pays that +1 immediately, `tfrl/DelayedCoinWalk-v0` pays the count at the
end. `tfrl/DelayedCartPole-v1` is CartPole-v1 (return = steps balanced, up
to 500) paid at the end.
"""

import gymnasium as gym
import numpy as np


class DelayedReward(gym.Wrapper, gym.utils.RecordConstructorArgs):
  """Withholds every reward and pays the episode's sum at its last step."""

  def __init__(self, env: gym.Env):
    # Recorded so the env's spec can re-create the wrapper (gymnasium's
    # env checker and `gym.make(env.spec)` do).
    gym.utils.RecordConstructorArgs.__init__(self)
    gym.Wrapper.__init__(self, env)
    self._withheld = 0.0

  def reset(self, **kwargs):
    self._withheld = 0.0
    return self.env.reset(**kwargs)

  def step(self, action):
    observation, reward, terminated, truncated, info = self.env.step(action)
    self._withheld += float(reward)
    if terminated or truncated:
      reward, self._withheld = self._withheld, 0.0
    else:
      reward = 0.0
    return observation, reward, terminated, truncated, info


class CoinWalk(gym.Env):
  """The tutorial's 1-D walk; the observation is the position, one-hot."""

  def __init__(self, num_positions: int = 13, coin_offset: int = 2, episode_steps: int = 50):
    self.num_positions = num_positions
    self.centre = num_positions // 2
    self.coin = self.centre + coin_offset
    self.episode_steps = episode_steps
    self.observation_space = gym.spaces.Box(0.0, 1.0, (num_positions,), np.float32)
    self.action_space = gym.spaces.Discrete(2)  # 0: left, 1: right
    self.position = self.centre
    self.t = 0

  def reset(self, *, seed=None, options=None):
    super().reset(seed=seed)
    self.position, self.t = self.centre, 0
    return self._observation(), {}

  def step(self, action):
    # As the tutorial counts it: +1 for each step that starts at the coin
    # (the step is spent there), whichever way it then moves.
    reward = float(self.position == self.coin)
    self.position = int(np.clip(self.position + (2 * int(action) - 1), 0, self.num_positions - 1))
    self.t += 1
    # The task is 50 actions long by definition: the episode ends (terminated,
    # nothing to bootstrap), it is not cut off by a time limit.
    return self._observation(), reward, self.t >= self.episode_steps, False, {}

  def _observation(self):
    return np.eye(self.num_positions, dtype=np.float32)[self.position]


def make_delayed(env_id: str, **kwargs) -> gym.Env:
  """gymnasium entry point: `env_id` made as usual, its reward delayed to the end."""
  return DelayedReward(gym.make(env_id, **kwargs))


def _register():
  if "tfrl/CoinWalk-v0" in gym.registry:
    return
  gym.register("tfrl/CoinWalk-v0", entry_point=CoinWalk)
  gym.register("tfrl/DelayedCoinWalk-v0", entry_point=make_delayed,
               kwargs={"env_id": "tfrl/CoinWalk-v0"})
  gym.register("tfrl/DelayedCartPole-v1", entry_point=make_delayed,
               kwargs={"env_id": "CartPole-v1"})


_register()
