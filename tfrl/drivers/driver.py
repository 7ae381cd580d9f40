"""The driver: steps environments with a policy and hands trajectories to observers.

One compiled policy call per step serves every env of a batched environment.
Observers receive a batched `Trajectory` of numpy arrays (leading dim = envs);
an unbatched environment is driven as a batch of one.
"""

from typing import Callable, Optional, Sequence

import numpy as np
import tensorflow as tf
import tree
from tf_agents.environments import py_environment
from tf_agents.policies import tf_policy
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory as trajectory_lib

Observer = Callable[[trajectory_lib.Trajectory], None]


class Driver:
  """Collects whole episodes or a number of steps from `env` with `policy`.

  Counts `env_steps` (environment transitions actually simulated, including
  those of episodes cut short and discarded) and reports each collected
  episode's return and length to `on_episode(env_index, return, length)`.

  Observers are called `observer(traj)`, and `observer.flush()`, where it
  exists, at the end of every `run_steps` / `run_transitions` /
  `run_episodes`. One that also sets `accepts_env_mask = True` is called
  `observer(traj, mask)` instead, where `mask[i]` says whether env i's step
  belongs to the collection; adders use it to write only the episodes
  `run_episodes` asked for. At the end of `run_steps` / `run_transitions`
  (which continue episodes), `observer.end_segment(time_step)`, where it
  exists, gets the batched time step the next call starts from (before
  `flush()`): the segment adder closes each env's segment with its
  observation, to bootstrap from.
  """

  def __init__(self,
               env: py_environment.PyEnvironment,
               policy: tf_policy.TFPolicy,
               observers: Sequence[Observer] = (),
               on_episode: Optional[Callable[[int, float, int], None]] = None):
    self._env = env
    self._batched = env.batched
    self.num_envs = env.batch_size if self._batched else 1
    self._policy = policy
    self._observers = list(observers)
    self._on_episode = on_episode
    self._time_step = None
    self._policy_state = None
    self._returns = np.zeros(self.num_envs, dtype=np.float64)
    self._lengths = np.zeros(self.num_envs, dtype=np.int64)
    self._active = np.ones(self.num_envs, dtype=bool)
    self.env_steps = 0
    self.episodes = 0
    self._action_fn = _compiled_action_fn(policy, self.num_envs)

  def use_policy(self, policy: tf_policy.TFPolicy):
    """Acts with `policy` from now on (e.g. uniform random for initial collection)."""
    self._policy = policy
    self._action_fn = _compiled_action_fn(policy, self.num_envs)

  def reset(self):
    """Resets every env; partial episodes are abandoned."""
    time_step = self._env.reset()
    self._time_step = time_step if self._batched else _add_batch_dim(time_step)
    self._policy_state = self._policy.get_initial_state(self.num_envs)
    self._returns[:] = 0.0
    self._lengths[:] = 0
    for observer in self._observers:
      if hasattr(observer, "reset"):
        observer.reset()

  def run_steps(self, num_steps: int):
    """Advances every env `ceil(num_steps / num_envs)` steps, continuing episodes."""
    if self._time_step is None:
      self.reset()
    self._active[:] = True
    for _ in range(-(-num_steps // self.num_envs)):
      self._step()
    self._end_segment()

  def run_transitions(self, num_transitions: int):
    """Steps all envs together, continuing episodes, until this call has
    simulated `num_transitions` transitions (auto-reset steps simulate
    nothing and are not counted); the last batch step may add up to
    `num_envs - 1` more. Exact with one env."""
    if self._time_step is None:
      self.reset()
    self._active[:] = True
    target = self.env_steps + num_transitions
    while self.env_steps < target:
      self._step()
    self._end_segment()

  def _end_segment(self):
    for observer in self._observers:
      if hasattr(observer, "end_segment"):
        observer.end_segment(self._time_step)
    self._flush_observers()

  def run_episodes(self, num_episodes: int):
    """Resets the envs and collects `num_episodes` whole episodes.

    Env i contributes its first `num_episodes // num_envs` episodes (one more
    for the first `num_episodes % num_envs` envs); taking whichever episodes
    end first would over-sample short ones. Every episode is collected from
    start to end by the current policy, as on-policy learners need. Steps
    past an env's quota are simulated (the envs step together) but not
    collected.
    """
    n = self.num_envs
    remaining = np.array([num_episodes // n + (i < num_episodes % n) for i in range(n)])
    self.reset()
    self._active = remaining > 0
    while self._active.any():
      ended = self._step() == ts.StepType.LAST
      remaining -= ended & self._active
      self._active &= remaining > 0
    self._flush_observers()

  def _flush_observers(self):
    """Writers that buffer (Reverb adders) hand over everything collected so far."""
    for observer in self._observers:
      if hasattr(observer, "flush"):
        observer.flush()

  def _step(self) -> np.ndarray:
    """One step of all envs; returns the step types of the trajectories emitted."""
    time_step = self._time_step
    action_step = self._action_fn(time_step, self._policy_state)
    action = action_step.action if self._batched else _remove_batch_dim(action_step.action)
    next_time_step = self._env.step(action)
    if not self._batched:
      next_time_step = _add_batch_dim(next_time_step)
    traj = trajectory_lib.from_transition(time_step, action_step, next_time_step)
    for observer in self._observers:
      if getattr(observer, "accepts_env_mask", False):
        observer(traj, self._active)
      else:
        observer(traj)
    self._track_episodes(traj)
    self._time_step = next_time_step
    self._policy_state = action_step.state
    return traj.step_type

  def _track_episodes(self, traj):
    real = ~traj.is_boundary()
    self.env_steps += int(np.sum(real))
    self._returns += np.where(real, traj.reward, 0.0)
    self._lengths += real
    for env in np.flatnonzero(traj.step_type == ts.StepType.LAST):
      if self._active[env]:
        self.episodes += 1
        if self._on_episode is not None:
          self._on_episode(int(env), float(self._returns[env]), int(self._lengths[env]))
      self._returns[env] = 0.0
      self._lengths[env] = 0


def _compiled_action_fn(policy: tf_policy.TFPolicy, batch_size: int):
  """`policy.action` as one concrete graph taking and returning numpy nests.

  A concrete function called with a flat list of tensors skips tf.function's
  per-call matching of nested inputs, which costs more than the small policy
  graph itself. Acting reads a time step's step_type and observation only
  (tf-agents policies never act on reward or discount), so those two are
  not fed.
  """
  time_step_spec = tensor_spec.add_outer_dim(policy.time_step_spec, batch_size)
  state_spec = tensor_spec.add_outer_dim(policy.policy_state_spec, batch_size)
  input_specs = [time_step_spec.step_type] + tree.flatten(time_step_spec.observation)
  input_specs += tree.flatten(state_spec)
  num_obs = len(tree.flatten(time_step_spec.observation))

  def flat_action(step_type, *flat):
    time_step = ts.TimeStep(
        step_type=step_type,
        reward=tree.map_structure(lambda s: tf.zeros(s.shape, s.dtype), time_step_spec.reward),
        discount=tf.ones(time_step_spec.discount.shape, time_step_spec.discount.dtype),
        observation=tree.unflatten_as(time_step_spec.observation, flat[:num_obs]))
    state = tree.unflatten_as(state_spec, flat[num_obs:])
    return tree.flatten(policy.action(time_step, state))

  call = flat_call(
      tf.function(flat_action, autograph=False).get_concrete_function(*input_specs))
  step_structure = policy.policy_step_spec

  def action_fn(time_step, state):
    inputs = [time_step.step_type] + tree.flatten(time_step.observation) + tree.flatten(state)
    outputs = call([tf.constant(x) for x in inputs])
    return tree.unflatten_as(step_structure, [t.numpy() for t in outputs])

  return action_fn


def flat_call(concrete):
  """`concrete` (a ConcreteFunction of tensor arguments only) as a function
  of the list of its arguments, returning what `concrete(*arguments)` does.

  Through TF's private `ConcreteFunction._call_flat(tensor_inputs,
  captured_inputs)`: the public call re-binds the arguments to the
  function's signature on every call, which costs more than running a small
  policy graph. TF is pinned (2.15); tests/test_replay.py
  (test_flat_call_is_the_public_call) fails if TF changes it.
  """
  captured = concrete.captured_inputs
  return lambda arguments: concrete._call_flat(arguments, captured)  # pylint: disable=protected-access


def _add_batch_dim(nest):
  return tree.map_structure(lambda x: np.asarray(x)[None], nest)


def _remove_batch_dim(nest):
  return tree.map_structure(lambda x: x[0], nest)
