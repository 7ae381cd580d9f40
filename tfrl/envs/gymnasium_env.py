"""gymnasium environments as tf-agents PyEnvironments.

tf-agents 0.19 only wraps the old `gym`; this adapter speaks gymnasium 1.x.
The one semantic that matters most: gymnasium separates *terminated* (the MDP
ended: no future value, discount 0) from *truncated* (a time limit cut the
episode: the future still has value, discount 1 so value-based agents
bootstrap). Both end the episode with StepType.LAST.
"""

from typing import Optional

import gymnasium as gym
import numpy as np
from tf_agents.environments import py_environment
from tf_agents.specs import array_spec
from tf_agents.trajectories import time_step as ts


def spec_from_space(space: gym.Space, name: str):
  """The tf-agents spec of one (non-nested) gymnasium space."""
  if isinstance(space, gym.spaces.Discrete):
    # tf-agents' categorical policies expect a zero-based range.
    if space.start != 0:
      raise ValueError(f"Discrete {name} spaces must start at 0, got start={space.start}")
    return array_spec.BoundedArraySpec((), np.int64, minimum=0, maximum=space.n - 1, name=name)
  if isinstance(space, gym.spaces.Box):
    # Float observations/actions are float32 throughout TF; gymnasium's Box
    # defaults to float32 too but some envs use float64.
    dtype = np.float32 if np.issubdtype(space.dtype, np.floating) else space.dtype
    return array_spec.BoundedArraySpec(
        space.shape, dtype,
        minimum=space.low.astype(dtype), maximum=space.high.astype(dtype), name=name)
  if isinstance(space, gym.spaces.MultiDiscrete):
    return array_spec.BoundedArraySpec(
        space.shape, np.int64, minimum=0, maximum=space.nvec - 1, name=name)
  if isinstance(space, gym.spaces.MultiBinary):
    return array_spec.BoundedArraySpec(space.shape, np.int8, minimum=0, maximum=1, name=name)
  if isinstance(space, gym.spaces.Dict):
    return {k: spec_from_space(s, k) for k, s in space.spaces.items()}
  if isinstance(space, gym.spaces.Tuple):
    return tuple(spec_from_space(s, f"{name}_{i}") for i, s in enumerate(space.spaces))
  raise ValueError(f"Unsupported gymnasium space for {name}: {space}")


def _cast_to_spec(value, spec):
  if isinstance(spec, dict):
    return {k: _cast_to_spec(value[k], s) for k, s in spec.items()}
  if isinstance(spec, tuple):
    return tuple(_cast_to_spec(v, s) for v, s in zip(value, spec))
  return np.asarray(value, dtype=spec.dtype)


class _GymnasiumAdapter(py_environment.PyEnvironment):
  """What the single and the vector adapter share: specs, seeding, rendering."""

  def __init__(self, env, observation_space, action_space, seed: Optional[int],
               handle_auto_reset: bool):
    super().__init__(handle_auto_reset=handle_auto_reset)
    self._env = env
    self._seed = seed
    self._seeded = False
    self._observation_spec = spec_from_space(observation_space, "observation")
    self._action_spec = spec_from_space(action_space, "action")
    # Stochastic policies sample continuous actions beyond the bounds (they
    # must record the unclipped action for its log-probability); the env
    # receives them clipped, like gymnasium's ClipAction wrapper does.
    self._clip_bounds = ((action_space.low, action_space.high)
                         if isinstance(action_space, gym.spaces.Box) else None)
    if seed is not None:
      env.action_space.seed(seed)

  def reseed(self, seed: int):
    """Seeds the next reset and the action space anew (a resumed run)."""
    self._seed = seed
    self._seeded = False
    self._env.action_space.seed(seed)

  def _env_action(self, action):
    if self._clip_bounds is not None:
      return np.clip(action, *self._clip_bounds).astype(self._action_spec.dtype, copy=False)
    return action

  @property
  def gym(self):
    """The wrapped gymnasium env (or vector env)."""
    return self._env

  def observation_spec(self):
    return self._observation_spec

  def action_spec(self):
    return self._action_spec

  def _reset_gym(self):
    # Seed only the first reset: later resets continue the same RNG stream,
    # which is how gymnasium makes a whole run reproducible from one seed.
    seed = None if self._seeded else self._seed
    self._seeded = True
    observation, _ = self._env.reset(seed=seed)
    return _cast_to_spec(observation, self._observation_spec)

  def render(self, mode: str = "rgb_array"):
    return self._env.render()

  def close(self):
    self._env.close()


class GymnasiumEnvironment(_GymnasiumAdapter):
  """One gymnasium env as an (unbatched) tf-agents PyEnvironment.

  Auto-reset is left to tf-agents' base class: stepping after a LAST step
  resets and returns a FIRST step, ignoring the action.
  """

  def __init__(self, env: gym.Env, seed: Optional[int] = None):
    super().__init__(env, env.observation_space, env.action_space, seed,
                     handle_auto_reset=True)

  def _reset(self):
    return ts.restart(self._reset_gym())

  def _step(self, action):
    if isinstance(self._action_spec, array_spec.ArraySpec) and self._action_spec.shape == ():
      action = action.item() if isinstance(action, np.ndarray) else action
    observation, reward, terminated, truncated, _ = self._env.step(self._env_action(action))
    observation = _cast_to_spec(observation, self._observation_spec)
    reward = np.float32(reward)
    if terminated:
      return ts.termination(observation, reward)
    if truncated:
      return ts.truncation(observation, reward)
    return ts.transition(observation, reward)


class VectorGymnasiumEnvironment(_GymnasiumAdapter):
  """N gymnasium envs stepped together, as a *batched* tf-agents PyEnvironment.

  Built on gymnasium's vector API in NEXT_STEP autoreset mode, which matches
  tf-agents' batched semantics exactly: after an env returns LAST, its next
  step ignores the action and returns FIRST with reward 0 — per env, while
  the others carry on.
  """

  def __init__(self, vector_env: gym.vector.VectorEnv, seed: Optional[int] = None):
    mode = vector_env.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP)
    if mode != gym.vector.AutoresetMode.NEXT_STEP:
      raise ValueError(f"vector env must use NEXT_STEP autoreset, got {mode}")
    # handle_auto_reset=False: the per-env resets happen in _step.
    super().__init__(vector_env, vector_env.single_observation_space,
                     vector_env.single_action_space, seed, handle_auto_reset=False)
    self._num_envs = vector_env.num_envs
    self._needs_reset = np.zeros(self._num_envs, dtype=bool)

  @property
  def batched(self) -> bool:
    return True

  @property
  def batch_size(self) -> int:
    return self._num_envs

  def _reset(self):
    observation = self._reset_gym()
    self._needs_reset[:] = False
    n = self._num_envs
    return ts.TimeStep(
        step_type=np.full(n, ts.StepType.FIRST, dtype=np.int32),
        reward=np.zeros(n, dtype=np.float32),
        discount=np.ones(n, dtype=np.float32),
        observation=observation)

  def _step(self, action):
    observation, reward, terminated, truncated, _ = self._env.step(self._env_action(action))
    # Envs that ended last step were just reset by gymnasium (NEXT_STEP mode).
    first = self._needs_reset
    last = np.logical_or(terminated, truncated)
    step_type = np.where(first, ts.StepType.FIRST,
                         np.where(last, ts.StepType.LAST, ts.StepType.MID)).astype(np.int32)
    discount = np.where(terminated & ~first, 0.0, 1.0).astype(np.float32)
    reward = np.where(first, 0.0, reward).astype(np.float32)
    self._needs_reset = last & ~first
    return ts.TimeStep(step_type, reward, discount,
                       _cast_to_spec(observation, self._observation_spec))
