"""The compiled loop's continuous-action learners (SAC, TD3, DDPG): their
pure loss pieces, one update against tf-agents' agent's train step on the
same batch (the same random draws), run(n) against n calls of run(1),
resume mid-run, and short train.py-style runs on the Pendulum configs."""

import csv
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from tf_agents.specs import tensor_spec

import tfrl
from tfrl.agents import in_graph
from tfrl.agents.ddpg import InGraphDdpg, dqda_surrogate_losses, smoothed_target_actions
from tfrl.agents.learners import in_graph_learner
from tfrl.agents.sac import (InGraphSac, sac_actor_losses, sac_alpha_losses,
                             sac_soft_next_values)
from tfrl.envs import tf_envs
from tfrl.errors import ConfigError
from tfrl.train import compiled, config
from tfrl.train.settings import RunConfig


@pytest.fixture(scope="module")
def pendulum_specs():
  env = tfrl.envs.load("Pendulum-v1")
  return tensor_spec.from_spec(env.time_step_spec()), tensor_spec.from_spec(env.action_spec())


def test_loss_pieces_by_hand():
  np.testing.assert_allclose(in_graph.td_targets(tf.constant([1.0, 2.0]), tf.constant([1.0, 0.0]),
                                                 tf.constant([10.0, 10.0]), 0.5, 2.0), [7.0, 4.0])
  np.testing.assert_allclose(sac_soft_next_values(tf.constant([1.0, 5.0]), tf.constant([3.0, 2.0]),
                                                  tf.constant([-1.0, 2.0]), 0.5), [1.5, 1.0])
  np.testing.assert_allclose(sac_actor_losses(tf.constant([-1.0]), tf.constant([2.0]),
                                              tf.constant([3.0]), 0.5), [-2.5])
  # entropy 1 below a target of 2: the loss's gradient in log alpha is -1 (alpha rises)
  log_alpha = tf.Variable(0.3)
  with tf.GradientTape() as tape:
    loss = sac_alpha_losses(log_alpha, tf.constant([-1.0]), 2.0)
  assert float(tape.gradient(loss, log_alpha)) == pytest.approx(-1.0)
  np.testing.assert_allclose(smoothed_target_actions(tf.constant([1.9, 0.0]),
                                                     tf.constant([0.7, -0.2]), 0.5), [2.4, -0.2])
  actions = tf.Variable([[0.5, -0.5]])
  with tf.GradientTape() as tape:
    loss = dqda_surrogate_losses(tf.constant([[3.0, -1.0]]), actions, dqda_clipping=2.0)
  np.testing.assert_allclose(loss, [[4.0, 1.0]])
  np.testing.assert_allclose(tape.gradient(loss, actions), [[-4.0, 2.0]])


@pytest.mark.parametrize("conditionals", [False, True])
def test_delayed_apply_gradients_keeps_variables_and_optimizer_where_false(conditionals):
  variable = tf.Variable([1.0, 2.0])
  optimizer = tf.keras.optimizers.Adam(0.1)
  optimizer.build([variable])
  step = tf.function(lambda due: in_graph.apply_gradients(
      optimizer, lambda: [tf.constant([1.0, 1.0])], [variable], where=due,
      conditionals=conditionals), jit_compile=True)
  step(tf.constant(False))
  np.testing.assert_array_equal(variable.numpy(), [1.0, 2.0])
  assert int(optimizer.iterations) == 0
  assert all(np.all(v.numpy() == 0) for v in optimizer.variables[1:])
  step(tf.constant(True))
  np.testing.assert_allclose(variable.numpy(), [0.9, 1.9], rtol=1e-5)
  assert int(optimizer.iterations) == 1


def test_uniform_actions_fill_the_box():
  spec = tensor_spec.BoundedTensorSpec([2], tf.float32, [-2.0, 0.0], [2.0, 1.0])
  actions = in_graph.uniform_actions(spec, 4000, tf.constant([1, 2], tf.int64)).numpy()
  assert actions.shape == (4000, 2)
  assert actions.min(0) == pytest.approx([-2.0, 0.0], abs=0.01)
  assert actions.max(0) == pytest.approx([2.0, 1.0], abs=0.01)


def _copy_weights(source_parts, target_parts, names):
  for name in names:
    a, b = getattr(source_parts, name), getattr(target_parts, name)
    for u, v in zip(a.variables, b.variables):
      v.assign(u)


SAC_NETWORKS = ("actor_network", "critic_network", "critic_network_2", "target_critic_network",
                "target_critic_network_2")
TD3_NETWORKS = ("actor_network", "target_actor_network", "critic_network",
                "target_critic_network", "critic_network_2", "target_critic_network_2")
DDPG_NETWORKS = TD3_NETWORKS[:4]


def _batch(rng, size=6):
  return {"observation": tf.constant(rng.normal(size=(size, 3)), tf.float32),
          "action": tf.constant(rng.uniform(-2, 2, size=(size, 1)), tf.float32),
          "reward": tf.constant(rng.normal(size=size), tf.float32),
          "discount": tf.constant(rng.integers(2, size=size), tf.float32),
          "next_observation": tf.constant(rng.normal(size=(size, 3)), tf.float32)}


@pytest.fixture
def seeded_tfp_samples(monkeypatch):
  """tfp draws without a seed (tf-agents' losses sample so) take the seeds
  put in the returned list, in order: the reference agent's draws become
  the stateless draws the in-graph learner makes from the same seeds."""
  queue = []
  original = tfp.distributions.Distribution.sample

  def sample(self, sample_shape=(), seed=None, name="sample", **kwargs):
    if seed is None:
      seed = queue.pop(0)
    return original(self, sample_shape, seed=seed, name=name, **kwargs)

  monkeypatch.setattr(tfp.distributions.Distribution, "sample", sample)
  return queue


def _update_seeds(learner_seed, count):
  """The tfp seeds `InGraphSac.update` draws its `count` samples with."""
  return [in_graph.tfp_seed(s) for s in
          tf.unstack(tf.random.experimental.stateless_split(learner_seed, count))]


def _assert_same_variables(ours, theirs, names, rtol=1e-4, atol=1e-6):
  for name in names:
    for a, b in zip(getattr(ours, name).variables, getattr(theirs, name).variables):
      np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=rtol, atol=atol, err_msg=name)


@pytest.mark.parametrize("alpha_learning_rate", [0.0, 3e-3])
def test_sac_update_equals_tf_agents_train_on_the_same_batches(pendulum_specs, seeded_tfp_samples,
                                                               as_trajectory, alpha_learning_rate):
  """Four updates of InGraphSac (a plain graph: XLA draws other stateless
  numbers than TF's kernels) against SacAgent.train on the same batches
  and the same policy samples: same losses, networks, targets and alpha.
  Fixed alpha (rate 0: both skip alpha's loss) and learned alpha;
  tau 0.1 and period 2 so the targets visibly move."""
  hyperparameters = dict(actor_fc_layer_params=(8,), critic_fc_layer_params=(8,),
                         alpha_learning_rate=alpha_learning_rate, target_update_tau=0.1,
                         target_update_period=2, gamma=0.9, reward_scale_factor=2.0,
                         gradient_clipping=1.0)
  ours, reference = [tfrl.agents.sac(*pendulum_specs, **hyperparameters) for _ in range(2)]
  _copy_weights(ours.parts, reference.parts, SAC_NETWORKS)
  learner = InGraphSac.from_agent(ours)
  assert learner.learns_alpha == (alpha_learning_rate > 0)
  learner.build()
  update = tf.function(learner.update)
  rng = np.random.default_rng(0)
  for i in range(4):
    batch, seed = _batch(rng), tf.constant([7, i], tf.int64)
    # tfrl's SacAgent first samples its entropy diagnostic, then tf-agents
    # the critic's next actions, the actor's and (learned alpha only: fixed,
    # both skip its loss) alpha's.
    seeds = _update_seeds(seed, 3)
    seeded_tfp_samples.extend([tf.constant([0, 0])] + seeds[:3 if learner.learns_alpha else 2])
    loss = float(update(batch, True, seed))
    info = reference.train(as_trajectory(batch))
    assert not seeded_tfp_samples
    assert loss == pytest.approx(float(info.loss), rel=1e-4)
    if not learner.learns_alpha:
      assert float(info.extra.alpha_loss) == 0.0
  _assert_same_variables(ours.parts, reference.parts, SAC_NETWORKS)
  assert float(ours.log_alpha) == pytest.approx(float(reference.log_alpha), rel=1e-5)
  if learner.learns_alpha:
    assert float(ours.log_alpha) != pytest.approx(np.log(0.2))
  assert int(ours.train_step_counter) == int(learner.target_sync_counter) == 4
  assert not np.allclose(ours.parts.critic_network.variables[0].numpy(),
                         ours.parts.target_critic_network.variables[0].numpy())


@pytest.mark.parametrize("agent,jit,noise,conditionals", [
    ("td3", False, 0.2, True), ("td3", True, 0.0, False), ("ddpg", True, None, False)])
def test_ddpg_and_td3_updates_equal_tf_agents_train_on_the_same_batches(
    pendulum_specs, seeded_tfp_samples, as_trajectory, agent, jit, noise, conditionals):
  """Five updates of InGraphDdpg against Td3Agent/DdpgAgent.train on the
  same batches: TD3's delayed actor (period 2, in a tf.cond or selected
  without one, as XLA's CPU runtime needs) and targets (period 2), its smoothing noise drawn from the same seeds (a
  plain graph; XLA with the noise off), DDPG's dQ/da surrogate with
  clipping (XLA). Same losses and variables, targets included."""
  hyperparameters = dict(actor_fc_layer_params=(8,), critic_fc_layer_params=(8,), gamma=0.9,
                         target_update_tau=0.2, reward_scale_factor=0.5)
  if agent == "td3":
    hyperparameters.update(target_policy_noise=noise, target_policy_noise_clip=0.1,
                           policy_delay=2, gradient_clipping=1.0)
    names = TD3_NETWORKS
  else:
    hyperparameters.update(dqda_clipping=0.05)
    names = DDPG_NETWORKS
  factory = getattr(tfrl.agents, agent)
  ours, reference = [factory(*pendulum_specs, **hyperparameters) for _ in range(2)]
  _copy_weights(ours.parts, reference.parts, names)
  learner = in_graph_learner(ours)
  assert isinstance(learner, InGraphDdpg) and learner.parts.twin_critics == (agent == "td3")
  learner.build(conditionals=conditionals)
  update = tf.function(learner.update, jit_compile=jit)
  rng = np.random.default_rng(1)
  actor_before = ours.parts.actor_network.variables[0].numpy()
  for i in range(5):
    batch, seed = _batch(rng), tf.constant([3, i], tf.int64)
    if agent == "td3":
      seeded_tfp_samples.append(in_graph.tfp_seed(seed))
    loss = float(update(batch, True, seed))
    info = reference.train(as_trajectory(batch))
    assert not seeded_tfp_samples
    assert loss == pytest.approx(float(info.loss), rel=1e-4, abs=1e-6)
    if i == 0:  # the actor steps at train step 0 (0 % 2 == 0) too
      assert not np.array_equal(actor_before, ours.parts.actor_network.variables[0].numpy())
  _assert_same_variables(ours.parts, reference.parts, names)
  assert int(ours.train_step_counter) == int(learner.target_sync_counter) == 5
  actor_steps = 3 if agent == "td3" else 5  # steps 0, 2, 4
  assert int(ours.parts.actor_optimizer.iterations) == actor_steps


@pytest.mark.parametrize("agent,jit", [("sac", True), ("td3", False)])
def test_one_long_run_equals_many_short_ones(pendulum_specs, agent, jit):
  """run(n) against n calls of run(1) (SAC in XLA, TD3 in a plain graph, as
  the tests below run both): same actions in the replay, weights, targets,
  counters and env state."""
  tiny = dict(actor_fc_layer_params=(8,), critic_fc_layer_params=(8,))
  factory = getattr(tfrl.agents, agent)
  agents = [factory(*pendulum_specs, **tiny) for _ in range(2)]
  names = SAC_NETWORKS if agent == "sac" else TD3_NETWORKS
  _copy_weights(agents[0].parts, agents[1].parts, names)
  loops = [compiled.CompiledLoop(tf_envs.Pendulum(), in_graph_learner(a), num_envs=3,
                                 replay_capacity=64, batch_size=8, seed=5, steps_per_iteration=2,
                                 train_steps_per_iteration=3, jit_compile=jit)
           for a in agents]
  for loop in loops:
    loop.collect(tf.constant(4, tf.int64), True)
  loops[0].run(tf.constant(7, tf.int64))
  for _ in range(7):
    loops[1].run(tf.constant(1, tf.int64))
  np.testing.assert_array_equal(loops[0].replay.storage["action"].numpy(),
                                loops[1].replay.storage["action"].numpy())
  np.testing.assert_array_equal(loops[0].env_state["physics"].numpy(),
                                loops[1].env_state["physics"].numpy())
  _assert_same_variables(agents[0].parts, agents[1].parts, names, rtol=1e-5)
  assert int(agents[0].train_step_counter) == int(agents[1].train_step_counter) == 21
  # 3 envs: 4 random steps, then 7 iterations of 2 policy steps
  assert int(loops[0].env_steps) == int(loops[1].env_steps) == 54
  actions = loops[0].replay.storage["action"].numpy()[:54]
  assert np.all(np.abs(actions) <= 2.0) and actions.std() > 0.1


# A plain graph: what these runs check (run directory, resume) is the same
# in XLA, whose compile would be most of each run's time.
TINY = ["tfrl.train.train_compiled.jit_compile = False",
        "tfrl.train.train.num_iterations = 6", "tfrl.train.train.eval_interval = 3",
        "tfrl.train.train.checkpoint_interval = 3", "tfrl.train.train.num_eval_episodes = 2",
        "tfrl.train.train.eval_num_envs = 2", "tfrl.train.train.initial_collect_steps = 64",
        "tfrl.train.train.collect_steps_per_iteration = 16",
        "tfrl.train.train.train_steps_per_iteration = 4"]


def _rows(root):
  with open(os.path.join(root, "progress.csv")) as f:
    return list(csv.DictReader(f))


class _StopAt(tfrl.train.Hook):
  def __init__(self, iteration):
    self.iteration = iteration

  def after(self, run, advance):
    if run.iteration >= self.iteration:
      run.request_stop(f"stopped at {self.iteration}")


@pytest.mark.parametrize("gin_file,agent", [("sac_pendulum.gin", "sac"), ("td3_pendulum.gin", "td3")])
def test_compiled_pendulum_configs_write_the_regular_run_directory(tmp_path, gin_file, agent):
  """compiled = True on the regular gin files: progress.csv, checkpoints
  and the exported policy, which acts on gymnasium's Pendulum. SAC's run is
  stopped at iteration 3 (its checkpoint) and run again: it resumes there
  and finishes the rows and counters of the config."""
  root = str(tmp_path / "run")
  bindings = TINY + [f"tfrl.agents.{agent}.actor_fc_layer_params = (8,)",
                     f"tfrl.agents.{agent}.critic_fc_layer_params = (8,)",
                     "tfrl.train.train.compiled = True"]
  if agent == "sac":
    config.parse_config([gin_file], bindings)
    tfrl.train.train(root, hooks=[_StopAt(3)], log=lambda _: None)
    assert [r["iteration"] for r in _rows(root)] == ["0", "3"]
  messages = []
  config.parse_config([gin_file], bindings)
  tfrl.train.train(root, log=messages.append)
  assert any("at iteration 3" in m for m in messages) == (agent == "sac")
  rows = _rows(root)
  assert [int(r["iteration"]) for r in rows] == [0, 3, 6]
  # 8 envs: 64 initial steps, then 6 iterations of 16 / 8 = 2 batched steps.
  assert [int(r["env_steps"]) for r in rows] == [64, 112, 160]
  assert int(rows[-1]["train_steps"]) == 24 and rows[-1]["loss"]
  assert np.isfinite(float(rows[-1]["avg_return"]))
  assert any(f.startswith("ckpt-6") for f in os.listdir(os.path.join(root, "checkpoints")))
  policy = tf.saved_model.load(os.path.join(root, "policies", "saved_model"))
  env = tfrl.envs.load("Pendulum-v1")
  time_step = tensor_spec.sample_spec_nest(tensor_spec.from_spec(env.time_step_spec()),
                                           outer_dims=[1])
  action = policy.action(time_step).action.numpy()
  assert action.shape == (1, 1) and abs(float(action[0, 0])) <= 2.0


@pytest.mark.parametrize("agent", ["sac", "td3"])
def test_resumed_mid_run_equals_the_uninterrupted_run(pendulum_specs, tmp_path, agent):
  """A loop run 3 iterations, checkpointed as the run checkpoints it (the
  agent and `CompiledSource.checkpointed()`: env state mid-episode,
  replay, seed counter, the learner's counters), restored into a fresh
  agent and loop (other initial weights) and run 3 more ends where a loop
  run 6 iterations straight does. A plain graph: XLA is run(n)'s test above."""
  tiny = dict(actor_fc_layer_params=(8,), critic_fc_layer_params=(8,))
  factory = getattr(tfrl.agents, agent)
  names = SAC_NETWORKS if agent == "sac" else TD3_NETWORKS

  def make(agent_):
    return compiled.CompiledLoop(tf_envs.Pendulum(), in_graph_learner(agent_), num_envs=2,
                                 replay_capacity=32, batch_size=8, seed=3, steps_per_iteration=2,
                                 train_steps_per_iteration=3, jit_compile=False)

  def checkpoint(agent_, loop):
    return tf.train.Checkpoint(agent=agent_,
                               **compiled.CompiledSource(None, loop).checkpointed())

  straight_agent, first_agent, resumed_agent = [factory(*pendulum_specs, **tiny) for _ in range(3)]
  _copy_weights(straight_agent.parts, first_agent.parts, names)
  straight, first = make(straight_agent), make(first_agent)
  for loop in (straight, first):
    loop.collect(tf.constant(5, tf.int64), True)
  straight.run(tf.constant(6, tf.int64))
  first.run(tf.constant(3, tf.int64))
  path = checkpoint(first_agent, first).save(str(tmp_path / "ckpt"))
  resumed = make(resumed_agent)
  checkpoint(resumed_agent, resumed).restore(path).assert_existing_objects_matched()
  resumed.run(tf.constant(3, tf.int64))
  for key in ("action", "observation", "reward"):
    np.testing.assert_array_equal(straight.replay.storage[key].numpy(),
                                  resumed.replay.storage[key].numpy())
  np.testing.assert_array_equal(straight.env_state["physics"].numpy(),
                                resumed.env_state["physics"].numpy())
  np.testing.assert_array_equal(straight.episode_return.numpy(), resumed.episode_return.numpy())
  _assert_same_variables(straight_agent.parts, resumed_agent.parts, names, rtol=1e-5)
  assert int(straight_agent.train_step_counter) == int(resumed_agent.train_step_counter) == 18
  assert int(resumed.learner.target_sync_counter) == 18
  if agent == "td3":  # delayed actor steps continue from the restored counter
    assert int(resumed_agent.parts.actor_optimizer.iterations) == 9


def test_compiled_check_refuses_a_factory_without_a_learner_before_writing(tmp_path):
  def my_agent(time_step_spec, action_spec):
    return tfrl.agents.sac(time_step_spec, action_spec)

  run_config = RunConfig(env_id="Pendulum-v1", agent_fn=my_agent,
                         replay=tfrl.replay.TransitionReplay(), compiled=True)
  with pytest.raises(ConfigError, match="no in-graph learner for agent_fn my_agent"):
    run_config.check()
  for factory in (tfrl.agents.sac, tfrl.agents.td3, tfrl.agents.ddpg, tfrl.agents.dqn):
    env_id = "CartPole-v1" if factory is tfrl.agents.dqn else "MountainCarContinuous-v0"
    RunConfig(env_id=env_id, agent_fn=factory, replay=tfrl.replay.TransitionReplay(),
              compiled=True).check()
