"""The compiled on-policy loop: rollout -> advantages -> epochs of minibatch
updates, whole iterations in one TF graph (XLA by default).

PureJaxRL's design in TF: N batched TF-native environments
(`tfrl.envs.tf_envs`) step a fixed number of times per iteration (the
rollout), then the in-graph learner (`tfrl.agents.ppo.InGraphPpo`) trains
on it, and `CompiledOnPolicyLoop.run` is one `tf.function(jit_compile=True)`
holding the iterations' while loop. Everything else is the one train loop's
(`tfrl.train.loop`), with `CompiledOnPolicySource` as its step source: run
directory, progress.csv, checkpoints (this loop's variables: env state,
episode bookkeeping, the random-seed counter; the agent's: networks,
optimizers, normalizer), resume, evaluation on gymnasium's env, export of
the agent's policy. Selected by `tfrl.train.train.compiled = True` on an
on-policy config, with `tfrl.train.train_compiled`'s knobs.

The rollout length per env: `EpisodeReplay.segment_steps` (transitions per
iteration over all envs) / num_envs, rounded up, as the regular loop's
fixed-length collection; without it (whole episodes),
`collect_episodes_per_iteration` / num_envs (rounded up) episodes of the
environment's step limit: what the regular loop collects once its episodes
last to the limit.

Another on-policy agent joins by giving an in-graph learner like
`InGraphPpo` (`DIAGNOSTICS`, `check_rollout(num_steps)`, `build`,
`act(observation, seed)`, `update(rollout, seed) -> [loss, *DIAGNOSTICS]`)
and registering it in `tfrl.agents.learners.LEARNERS`.
"""

import tensorflow as tf

from tfrl.agents.learners import in_graph_learner
from tfrl.envs import tf_envs
from tfrl.errors import ConfigError
from tfrl.train import compiled, loop, sources

ROLLOUT_FIELDS = ("observation", "action", "reward", "terminated", "truncated", "next_observation")


class CompiledOnPolicyLoop(tf.Module):
  """Environment state and episode bookkeeping as variables, and `run`,
  which advances them inside one compiled function: per iteration
  `rollout_steps` batched steps of `num_envs` envs with the learner's
  policy, then one `learner.update` on that rollout. Being a tf.Module, a
  checkpoint of it (with the agent's) resumes mid-episode, mid-run.

  rng: "stateless" derives each iteration's seed from (seed, a counter);
  "generator" draws it from a `tf.random.Generator`. The episode
  bookkeeping, seeds and counters are `compiled.CompiledLoop`'s (the same
  variables and methods).
  """

  def __init__(self, env, learner, num_envs: int, rollout_steps: int, seed: int,
               jit_compile: bool = True, rng: str = "stateless", episode_log_size: int = 4096):
    super().__init__(name="compiled_on_policy_loop")
    if rng not in compiled.RNGS:
      raise ConfigError(f"rng must be one of {compiled.RNGS}, got {rng!r}")
    if num_envs < 1 or rollout_steps < 1:
      raise ConfigError(f"num_envs and rollout_steps must be >= 1, got {num_envs}, "
                        f"{rollout_steps}")
    learner.check_rollout(num_envs * rollout_steps)
    self.env, self.learner = env, learner
    self.num_envs, self.rollout_steps = num_envs, rollout_steps
    self.train_steps_per_iteration = 1
    self._init_episode_state(env, num_envs, seed, rng, episode_log_size)
    learner.build()
    self.run = tf.function(self._run, jit_compile=jit_compile, autograph=False)

  # The off-policy loop's: a fresh [2] seed; finished episodes into the ring.
  _init_episode_state = compiled.CompiledLoop._init_episode_state
  _next_seed = compiled.CompiledLoop._next_seed
  _record_episodes = compiled.CompiledLoop._record_episodes
  take_finished_episodes = compiled.CompiledLoop.take_finished_episodes

  def _run(self, num_iterations):
    """`num_iterations` iterations; returns the means of the learner's
    [loss, *DIAGNOSTICS] over them."""
    sums = compiled._repeat(num_iterations, self._iteration,  # pylint: disable=protected-access
                            tf.zeros([1 + len(self.learner.DIAGNOSTICS)]))
    return sums / tf.maximum(tf.cast(num_iterations, tf.float32), 1.0)

  def _iteration(self):
    rollout_seed, update_seed = tf.unstack(
        tf.random.experimental.stateless_split(self._next_seed(), 2))
    return self.learner.update(self._rollout(rollout_seed), update_seed)

  def _rollout(self, seed):
    """`rollout_steps` batched steps: the ROLLOUT_FIELDS as [T, N] tensors."""
    state = tf.nest.map_structure(lambda v: v.read_value(), self.env_state)
    observation = self.env.observe(state)
    action = self.learner.action_spec
    batch = [self.num_envs]
    specs = dict(observation=observation, next_observation=observation,
                 action=tf.TensorSpec(batch + action.shape.as_list(), action.dtype),
                 reward=tf.TensorSpec(batch, tf.float32), terminated=tf.TensorSpec(batch, tf.bool),
                 truncated=tf.TensorSpec(batch, tf.bool))
    arrays = {name: tf.TensorArray(specs[name].dtype, size=self.rollout_steps,
                                   element_shape=specs[name].shape)
              for name in ROLLOUT_FIELDS}

    def body(t, state, arrays):
      act_seed, reset_seed = tf.unstack(tf.random.experimental.stateless_split(
          tf.random.experimental.stateless_fold_in(seed, t), 2))
      observation = self.env.observe(state)
      action = self.learner.act(observation, act_seed)
      step = self.env.step(state, action)
      self._record_episodes(step)
      fields = dict(observation=observation, action=action, reward=step.reward,
                    terminated=step.terminated, truncated=step.truncated,
                    next_observation=step.observation)
      arrays = {name: arrays[name].write(t, fields[name]) for name in ROLLOUT_FIELDS}
      return t + 1, tf_envs.auto_reset(self.env, step, reset_seed), arrays

    _, state, arrays = tf.while_loop(lambda t, *_: t < self.rollout_steps, body,
                                     (tf.constant(0), state, arrays))
    tf.nest.map_structure(lambda v, t: v.assign(t), self.env_state, state)
    return {name: arrays[name].stack() for name in ROLLOUT_FIELDS}


def rollout_steps(config, env) -> int:
  """Steps per env and iteration (see the module docstring)."""
  segment_steps = getattr(config.replay, "segment_steps", None)
  if segment_steps is not None:
    return -(-segment_steps // config.num_envs)
  episodes_per_env = -(-config.collect_episodes_per_iteration // config.num_envs)
  return episodes_per_env * env.max_episode_steps


def build_source(config, parts: sources.Parts, jit_compile: bool = True,
                 rng: str = "stateless"):
  """The on-policy loop of `config` compiled, as the train loop's step
  source, and the mode's name (`tfrl.train.train_compiled` calls it with
  its knobs and the run's parts, whose gymnasium env gave the agent's specs)."""
  env = tf_envs.make(config.env_id)
  compiled_loop = CompiledOnPolicyLoop(
      env, in_graph_learner(parts.agent), config.num_envs, rollout_steps(config, env),
      config.seed, jit_compile=jit_compile, rng=rng)
  return CompiledOnPolicySource(config, compiled_loop), "compiled on-policy loop"


class CompiledOnPolicySource(compiled.CompiledSource):
  """The compiled on-policy loop as the train loop's step source: `run(n)`
  is one call for all n iterations; no initial collection; the learner's
  diagnostics (averaged over the n) go into the next progress row."""

  def prefill(self):
    self._store_finished_episodes()

  def advance_from(self, result) -> loop.Advance:
    """The means of [loss, *DIAGNOSTICS] the loop's `_run` returned, as an Advance."""
    means = result.numpy()
    self._store_finished_episodes()
    return loop.Advance(float(means[0]),
                        dict(zip(self.loop.learner.DIAGNOSTICS, map(float, means[1:]))))
