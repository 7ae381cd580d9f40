"""The compiled fast path: act -> step -> store -> sample -> update -> target
sync, the whole off-policy loop in one TF graph (XLA by default).

The JAX DQN tutorial's design in TF: the environment is batched tensor ops
(`tfrl.envs.tf_envs`), the replay a ring of preallocated variables
(`tfrl.replay.in_graph`), the agent's act and update plain TF ops on its own
variables (`tfrl.agents.dqn.InGraphDqn`), and `CompiledLoop.run` one
`tf.function(jit_compile=True)` holding the iterations' while loop, so no
step goes back to Python. Python only runs between evaluations: the run
directory, progress.csv, checkpoints, evaluation on the gymnasium
environment and policy export are the one train loop's (`tfrl.train.loop`),
with `CompiledSource` as its step source. Selected by
`tfrl.train.train.compiled = True`.

The learners: `InGraphDqn`, `InGraphDdpg` (DDPG and TD3), `InGraphSac`;
another off-policy agent joins by giving one with their interface
(`tfrl.agents.in_graph`) and registering it in `LEARNERS`
(`tfrl.agents.learners`).
"""

import dataclasses
import os

import gin
import numpy as np
import tensorflow as tf

from tfrl.agents.learners import LEARNERS, in_graph_learner  # noqa: F401 (LEARNERS: re-exported)
from tfrl.envs import tf_envs
from tfrl.errors import ConfigError
from tfrl.replay.in_graph import InGraphReplay
from tfrl.train import loop, run_dir, sources

RNGS = ("stateless", "generator")


# Loops of at most this many steps inside an iteration are unrolled.
UNROLL_LIMIT = 4


def _repeat(count, body, total=None):
  """Calls `body()` `count` times; given `total`, returns `total` plus the
  sum of what it returned. Unrolled into the graph when `count` is a Python
  int of at most UNROLL_LIMIT, else a tf.while_loop. (Written out rather
  than left to autograph: converting tf-agents' and Keras' code costs
  seconds of tracing.)"""
  def add(carried):
    result = body()
    return carried if total is None else carried + result
  carried = tf.constant(0.0) if total is None else total
  if isinstance(count, int) and count <= UNROLL_LIMIT:
    for _ in range(count):
      carried = add(carried)
    return carried
  _, carried = tf.while_loop(lambda i, _: i < count, lambda i, c: (i + 1, add(c)),
                             (tf.zeros([], tf.int64), carried))
  return carried


class CompiledLoop(tf.Module):
  """Environment state, replay and episode bookkeeping as variables, and
  `run`, which advances them inside one compiled function. Being a
  tf.Module, a checkpoint of it resumes mid-episode with the same replay.

  An iteration is `steps_per_iteration` batched env steps then
  `train_steps_per_iteration` updates. Both are fixed when the loop is
  built: small counts are unrolled into the graph, because a nested while
  loop per iteration slows XLA's CPU runtime markedly.
  rng: "stateless" derives each step's random seed from (seed, a step
  counter); "generator" draws it from a `tf.random.Generator`.
  """

  def __init__(self, env, learner, num_envs: int, replay_capacity: int, batch_size: int,
               seed: int, steps_per_iteration: int = 1, train_steps_per_iteration: int = 1,
               jit_compile: bool = True, rng: str = "stateless",
               episode_log_size: int = 4096):
    super().__init__(name="compiled_loop")
    if rng not in RNGS:
      raise ConfigError(f"rng must be one of {RNGS}, got {rng!r}")
    if num_envs < 1 or batch_size < 1 or steps_per_iteration < 1 or train_steps_per_iteration < 0:
      raise ConfigError(f"num_envs, batch_size, steps_per_iteration must be >= 1 and "
                        f"train_steps_per_iteration >= 0, got {num_envs}, {batch_size}, "
                        f"{steps_per_iteration}, {train_steps_per_iteration}")
    self.steps_per_iteration = steps_per_iteration
    self.train_steps_per_iteration = train_steps_per_iteration
    self.env, self.learner = env, learner
    self.num_envs, self.batch_size = num_envs, batch_size
    self.replay = InGraphReplay(learner.transition_spec, replay_capacity)
    self._init_episode_state(env, num_envs, seed, rng, episode_log_size)
    # A tf.cond inside the loop only where XLA's CPU runtime does not compile it.
    learner.build(conditionals=not (jit_compile and xla_cpu_runtime_enabled()))
    period, updates = learner.target_sync_period, train_steps_per_iteration
    self._sync_per_segment = updates > 0 and period > 1 and period % updates == 0
    self.run = tf.function(self._run, jit_compile=jit_compile, autograph=False)
    # The initial collection runs once per run: XLA compiling it would cost
    # more than a plain graph takes to run it.
    self.collect = tf.function(self._collect, autograph=False)

  def _init_episode_state(self, env, num_envs: int, seed: int, rng: str,
                          episode_log_size: int):
    """The variables both compiled loops keep: the seeds' source, the envs'
    state, running episode returns and lengths, the log of finished
    episodes, and the env step and episode counters."""
    self._seed = tf.constant(seed, tf.int64)
    self._key_counter = tf.Variable(0, dtype=tf.int64, trainable=False, name="key_counter")
    self._generator = tf.random.Generator.from_seed(seed) if rng == "generator" else None
    self.env_state = tf.nest.map_structure(
        lambda t: tf.Variable(t, trainable=False),
        env.reset(tf.stack([self._seed, tf.constant(-1, tf.int64)]), num_envs))
    zeros = lambda dtype, n=num_envs: tf.Variable(tf.zeros([n], dtype), trainable=False)
    self.episode_return, self.episode_length = zeros(tf.float32), zeros(tf.int64)
    # Finished episodes since the last `take_finished_episodes`, in a ring of
    # `episode_log_size` (one spare slot takes the writes of unfinished envs).
    self._log_size = episode_log_size
    self._finished_returns = zeros(tf.float32, episode_log_size + 1)
    self._finished_lengths = zeros(tf.int64, episode_log_size + 1)
    self._finished = tf.Variable(0, dtype=tf.int64, trainable=False, name="finished")
    self.env_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="env_steps")
    self.episodes = tf.Variable(0, dtype=tf.int64, trainable=False, name="episodes")

  def _next_seed(self):
    """A fresh [2] seed for this step's stateless draws."""
    if self._generator is not None:
      return self._generator.make_seeds(1)[:, 0]
    self._key_counter.assign_add(1)
    return tf.stack([self._seed, self._key_counter])

  def _collect_step(self, random_actions: bool):
    act_seed, reset_seed = tf.unstack(
        tf.random.experimental.stateless_split(self._next_seed(), 2))
    state = tf.nest.map_structure(lambda v: v.read_value(), self.env_state)
    observation = self.env.observe(state)
    # A Python bool: the graph has no branch here (XLA's CPU runtime cannot
    # link a conditional inside the loop).
    action = (self.learner.random_act if random_actions else self.learner.act)(
        observation, act_seed)
    step = self.env.step(state, action)
    self.replay.add(dict(observation=observation, action=action, reward=step.reward,
                         discount=1.0 - tf.cast(step.terminated, tf.float32),
                         next_observation=step.observation))
    tf.nest.map_structure(lambda v, t: v.assign(t), self.env_state,
                          tf_envs.auto_reset(self.env, step, reset_seed))
    self._record_episodes(step)

  def _record_episodes(self, step):
    returns = self.episode_return + step.reward
    lengths = self.episode_length + 1
    done = step.terminated | step.truncated
    slot = self._finished + tf.cumsum(tf.cast(done, tf.int64)) - 1
    slot = tf.where(done, tf.math.floormod(slot, self._log_size), self._log_size)[:, None]
    self._finished_returns.scatter_nd_update(slot, returns)
    self._finished_lengths.scatter_nd_update(slot, lengths)
    ended = tf.reduce_sum(tf.cast(done, tf.int64))
    self._finished.assign_add(ended)
    self.episodes.assign_add(ended)
    self.env_steps.assign_add(self.num_envs)
    self.episode_return.assign(tf.where(done, 0.0, returns))
    self.episode_length.assign(tf.where(done, tf.zeros_like(lengths), lengths))

  def _run(self, num_iterations):
    """`num_iterations` iterations of the policy's env steps and updates.
    Returns the mean loss (0 if no update).

    When the target syncs every `period` updates and an iteration's updates
    divide it, the iterations run in segments that end where a sync is
    due, and the sync runs once per segment rather than as a select on
    every update (10% of the tutorial loop's time); the syncs happen after
    the same updates either way."""
    updates_per_iteration = self.train_steps_per_iteration
    if not self._sync_per_segment:
      loss_sum = _repeat(num_iterations, lambda: self._iteration(sync_target=True),
                         tf.constant(0.0))
    else:
      def segment(remaining, loss_sum):
        # ceil: a counter left unaligned by a change of settings syncs at
        # the end of the segment that crosses the multiple.
        until_sync = self.learner.updates_until_target_sync()
        length = tf.minimum(remaining, -(-until_sync // updates_per_iteration))
        loss_sum = _repeat(length, lambda: self._iteration(sync_target=False), loss_sum)
        self.learner.advance_target_sync(length * updates_per_iteration)
        return remaining - length, loss_sum
      _, loss_sum = tf.while_loop(lambda remaining, _: remaining > 0, segment,
                                  (num_iterations, tf.constant(0.0)))
    updates = tf.cast(num_iterations * updates_per_iteration, tf.float32)
    return loss_sum / tf.maximum(updates, 1.0)

  def _iteration(self, sync_target: bool):
    """One iteration: the env steps, then the updates; their summed loss."""
    _repeat(self.steps_per_iteration, lambda: self._collect_step(random_actions=False))
    def update():
      seed = self._next_seed()
      if not self.learner.update_draws_noise:
        return self.learner.update(self.replay.sample(self.batch_size, seed),
                                   sync_target=sync_target)
      sample_seed, update_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
      return self.learner.update(self.replay.sample(self.batch_size, sample_seed),
                                 sync_target=sync_target, seed=update_seed)
    return _repeat(self.train_steps_per_iteration, update, tf.constant(0.0))

  def _collect(self, num_steps, random_actions: bool):
    """`num_steps` batched env steps and no update (the initial collection),
    with uniformly random actions or the collect policy's."""
    _repeat(num_steps, lambda: self._collect_step(random_actions))

  def take_finished_episodes(self):
    """(returns, lengths) of the episodes finished since the last call (the
    latest `episode_log_size` of them), as numpy arrays."""
    count = int(self._finished.numpy())
    order = (np.arange(max(count - self._log_size, 0), count) % self._log_size)
    returns = self._finished_returns.numpy()[order]
    lengths = self._finished_lengths.numpy()[order]
    self._finished.assign(0)
    return returns, lengths


@gin.configurable(module="tfrl.train")
def train_compiled(root_dir: str, config, hooks=(), log=print, jit_compile: bool = True,
                   xla_cpu_runtime: bool = True, rng: str = "stateless"):
  """The off-policy loop of `config` compiled (`tfrl.train.train.compiled =
  True`; an on-policy config's: `tfrl.train.compiled_on_policy`), through the one train loop. The replay capacity is
  `replay.capacity`; an iteration is ceil(collect_steps_per_iteration /
  num_envs) batched env steps then `train_steps_per_iteration` updates, as
  in the regular loop. `jit_compile`: XLA (True) or a plain tf.function
  graph. `xla_cpu_runtime`: XLA's newer CPU runtime (see `use_xla_cpu_runtime`).
  Returns the last progress row; with `config.num_seeds` > 1, `train_seeds`'
  list of them."""
  if jit_compile and xla_cpu_runtime:
    use_xla_cpu_runtime()
  if config.num_seeds > 1:
    return train_seeds(root_dir, config, hooks, log, jit_compile, rng)
  # The gymnasium env gives the agent's specs; collection runs on its TF twin.
  parts = sources.build_parts(config, num_envs=1)
  try:
    with _xla_runtime_errors():
      source, mode = build_source(config, parts, jit_compile, rng)
      return loop.run_loop(root_dir, config, parts.agent, parts.evaluator, source, hooks, log,
                           mode=mode)
  finally:
    parts.close()


def build_source(config, parts, jit_compile: bool, rng: str):
  """The compiled loop of `config` for `parts`' agent, as the train loop's
  step source, and the mode's name: off-policy `CompiledSource`, on-policy
  `compiled_on_policy.CompiledOnPolicySource`."""
  if config.on_policy:  # (imported here: it builds on this module)
    from tfrl.train import compiled_on_policy  # pylint: disable=import-outside-toplevel
    return compiled_on_policy.build_source(config, parts, jit_compile, rng)
  compiled_loop = CompiledLoop(
      tf_envs.make(config.env_id), in_graph_learner(parts.agent), config.num_envs,
      config.replay.capacity, config.batch_size, config.seed,
      steps_per_iteration=-(-config.collect_steps_per_iteration // config.num_envs),
      train_steps_per_iteration=config.train_steps_per_iteration,
      jit_compile=jit_compile, rng=rng)
  return CompiledSource(config, compiled_loop), "compiled loop"


def train_seeds(root_dir: str, config, hooks=(), log=print, jit_compile: bool = True,
                rng: str = "stateless") -> list:
  """`config.num_seeds` seeds (`config.seed` on) trained in one graph: each
  seed's agent, env state and replay are its own variables (built as a
  single-seed run of that seed builds them), and one compiled function
  (`SeedGroup`) advances them all; each writes a regular run directory,
  `<root_dir>/seed_<s>` (progress.csv, checkpoints, evaluation on its own
  gymnasium env, policy export), resumed on its own (a seed behind the
  others catches up first). `hooks` are every seed's (each called with
  that seed's Run). Returns the seeds' last progress rows."""
  seeds = list(range(config.seed, config.seed + config.num_seeds))
  root_dirs = run_dir.seed_run_dirs(root_dir, seeds)  # writes nothing
  note = (f"seed {{}} of a {config.num_seeds}-seed run (seeds {seeds[0]}..{seeds[-1]} in one "
          f"graph): resume it with the same command on {root_dir}")
  all_parts, specs = [], []
  try:
    for seed, seed_dir in zip(seeds, root_dirs):
      seed_config = dataclasses.replace(config, seed=seed)
      parts = sources.build_parts(seed_config, num_envs=1)
      all_parts.append(parts)
      with _xla_runtime_errors():
        source, mode = build_source(seed_config, parts, jit_compile, rng)
      specs.append(loop.RunSpec(seed_dir, seed_config, parts.agent, parts.evaluator, source,
                                hooks, _prefixed(log, f"[seed {seed}] "), f"{mode}, seed {seed}",
                                note.format(seed)))
    group = SeedGroup([spec.source.loop for spec in specs], jit_compile)

    def advance(counts):
      results = group.run(tf.constant([counts.get(i, 0) for i in range(len(specs))], tf.int64))
      return {i: specs[i].source.advance_from(results[i]) for i in counts}
    with _xla_runtime_errors():
      return loop.run_loops(specs, advance, log)
  finally:
    for parts in all_parts:
      parts.close()


class SeedGroup:
  """Several compiled loops (one per seed) advanced by one tf.function:
  `run(counts)`, a [K] int64 tensor, runs loop k's `_run(counts[k])` (0:
  it stays as it is) and returns their results in order. The loops share
  no variable, so each seed's values are its single-seed run's. One XLA
  cluster holds the K copies: compiled PPO's first call, K = 5, took 14.8 s
  of CPU (one seed: 3.6 s) against 21.2 s when each loop's own compiled
  function was called from a plain graph (the results page)."""

  def __init__(self, loops, jit_compile: bool = True):
    self.loops = list(loops)
    self.run = tf.function(self._run, jit_compile=jit_compile, autograph=False)

  def _run(self, counts):
    return [compiled_loop._run(counts[i])  # pylint: disable=protected-access
            for i, compiled_loop in enumerate(self.loops)]


def _prefixed(log, prefix: str):
  return lambda message: log(prefix + message)


class _xla_runtime_errors:  # pylint: disable=invalid-name
  """XLA's CPU runtime failing to compile the loop, as a ConfigError line."""

  def __enter__(self):
    return self

  def __exit__(self, kind, error, traceback):
    if kind is not None and issubclass(kind, tf.errors.InternalError) and \
        "XLA Runtime" in str(error):
      raise ConfigError("XLA's CPU runtime could not compile the loop; set "
                        "tfrl.train.train_compiled.xla_cpu_runtime = False") from None
    return False


class CompiledSource(loop.StepSource):
  """The compiled loop as the train loop's step source: `run(n)` is one
  call of the compiled function for all n iterations (up to the next hook
  due); the loop's variables (env state, replay, counters) are checkpointed."""
  max_iterations_per_call = None

  def __init__(self, config, compiled_loop: CompiledLoop):
    self.config, self.loop = config, compiled_loop
    self._run = None

  def checkpointed(self) -> dict:
    return dict(compiled_loop=self.loop)

  def start(self, run):
    self._run = run

  def prefill(self):
    """The initial collection (a plain graph, not XLA: it runs once)."""
    missing = self.config.initial_collect_steps - int(self.loop.env_steps.numpy())
    if missing > 0:
      self.loop.collect(tf.constant(-(-missing // self.loop.num_envs), tf.int64),
                        bool(self.config.random_initial_collect))
    self._store_finished_episodes()

  def run(self, num_iterations: int) -> loop.Advance:
    return self.advance_from(self.loop.run(tf.constant(num_iterations, tf.int64)))

  def advance_from(self, result) -> loop.Advance:
    """What the loop's `_run` returned (the mean loss), as an Advance."""
    self._store_finished_episodes()
    return loop.Advance(float(result) if self.loop.train_steps_per_iteration else None)

  def _store_finished_episodes(self):
    returns, lengths = self.loop.take_finished_episodes()
    if len(returns):
      self._run.logger.store(train_return=returns, train_length=lengths)

  def counts(self) -> dict:
    return dict(env_steps=int(self.loop.env_steps.numpy()),
                episodes=int(self.loop.episodes.numpy()))

  # before_checkpoint: None, the replay is part of the loop's variables.


XLA_CPU_RUNTIME_FLAG = "--xla_cpu_use_xla_runtime=true"


def xla_cpu_runtime_enabled() -> bool:
  return XLA_CPU_RUNTIME_FLAG in os.environ.get("XLA_FLAGS", "")


def use_xla_cpu_runtime():
  """Adds XLA's CPU-runtime flag to XLA_FLAGS. XLA reads XLA_FLAGS once, at
  the first compilation in the process, so this must run before anything
  is XLA-compiled (train.py's compiled path: it is). It runs the loop faster
  than XLA's default CPU backend in TF 2.15 (figures: the results page,
  scripts/benchmarks/README.md). It cannot link a tf.cond inside the loop
  ("Symbols not found: retainBuffers"), which is why the compiled loop has none."""
  flags = os.environ.get("XLA_FLAGS", "")
  if "xla_cpu_use_xla_runtime" not in flags:
    os.environ["XLA_FLAGS"] = f"{flags} {XLA_CPU_RUNTIME_FLAG}".strip()
