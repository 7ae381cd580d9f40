"""DQN (Mnih et al., 2015): tf-agents' DqnAgent with an online and a target
network and a linearly decaying epsilon-greedy collect policy."""

from typing import Optional, Sequence

import gin
import tensorflow as tf
from tf_agents.agents.dqn import dqn_agent
from tf_agents.networks import q_network
from tf_agents.utils import common, eager_utils

from tfrl.agents.diagnostics import DqnAgent
from tfrl.errors import ConfigError
from tfrl.networks import adam


def linearly_decaying_epsilon(step, decay_steps: int, start: float, end: float):
  """Epsilon falls linearly from `start` to `end` over `decay_steps`, then stays."""
  if decay_steps <= 0:
    return tf.constant(end, tf.float32)
  fraction = tf.minimum(tf.cast(step, tf.float32) / float(decay_steps), 1.0)
  return start + fraction * (end - start)


def exponentially_decaying_epsilon(step, decay_rate: float, start: float, end: float):
  """Epsilon falls from `start` towards `end` as exp(-decay_rate * step)
  (the JAX DQN tutorial's schedule)."""
  decay = tf.exp(-decay_rate * tf.cast(step, tf.float32))
  return end + (start - end) * decay


EPSILON_SCHEDULES = ("linear", "exponential")

# TD loss choices for gin (`td_errors_loss_fn = @tfrl.agents.squared_loss`):
# the tutorial's squared error; the default stays Huber.
gin.external_configurable(common.element_wise_squared_loss, "squared_loss", module="tfrl.agents")
gin.external_configurable(common.element_wise_huber_loss, "huber_loss", module="tfrl.agents")


def epsilon_greedy(q_values, epsilon, seed):
  """Per row: a uniformly random action with probability `epsilon`, else
  argmax Q. Stateless: `seed` is a [2] int seed. q_values [B, A] -> [B] int64."""
  seeds = tf.random.experimental.stateless_split(seed, 2)
  num_actions = tf.shape(q_values, out_type=tf.int64)[-1]
  batch = tf.shape(q_values)[:1]
  random_actions = tf.random.stateless_uniform(batch, seeds[0], minval=0, maxval=num_actions,
                                               dtype=tf.int64)
  explore = tf.random.stateless_uniform(batch, seeds[1]) < epsilon
  return tf.where(explore, random_actions, tf.argmax(q_values, axis=-1))


def q_learning_td_loss(q_values, actions, rewards, discounts, next_target_q_values, gamma: float,
                       loss_fn=tf.compat.v1.losses.huber_loss):
  """Per-transition loss of one-step Q-learning:
  loss_fn(r + gamma * discount * max_a' Q_target(s', a'), Q(s, a)).
  `discounts` is 0 where the episode terminated (no future) and 1 where it
  continues or was truncated (the cut-off future is bootstrapped)."""
  targets = tf.stop_gradient(rewards + gamma * discounts * tf.reduce_max(next_target_q_values, -1))
  # Q(s, a) as a one-hot dot product rather than a gather: its gradient is a
  # product, not a scatter, which is cheaper inside the compiled loop.
  num_actions = tf.shape(q_values)[-1]
  predictions = tf.reduce_sum(q_values * tf.one_hot(actions, num_actions, dtype=q_values.dtype), -1)
  return loss_fn(targets, predictions)


@gin.configurable(module="tfrl.agents")
def dqn(time_step_spec,
        action_spec,
        fc_layer_params: Sequence[int] = (64, 64),
        learning_rate: float = 1e-3,
        gamma: float = 0.99,
        epsilon_start: float = 1.0,
        epsilon_end: float = 0.05,
        epsilon_decay_steps: int = 10_000,
        epsilon_schedule: str = "linear",
        epsilon_decay_rate: float = 1e-3,
        target_update_period: int = 100,
        target_update_tau: float = 1.0,
        n_step_update: int = 1,
        gradient_clipping: Optional[float] = None,
        td_errors_loss_fn=tf.compat.v1.losses.huber_loss):
  """Q-learning from replayed transitions.

  Exploration: epsilon decays linearly from `epsilon_start` to `epsilon_end`
  over `epsilon_decay_steps` train steps (the agent's train_step_counter, so
  it resumes with the checkpoint); `epsilon_schedule="exponential"` decays it
  as exp(-epsilon_decay_rate * step) instead. The target network is synced every
  `target_update_period` train steps (tau=1 copies, tau<1 averages).
  """
  if epsilon_schedule not in EPSILON_SCHEDULES:
    raise ConfigError(f"epsilon_schedule must be one of {EPSILON_SCHEDULES}, "
                      f"got {epsilon_schedule!r}")
  train_step = tf.Variable(0, dtype=tf.int64, name="train_step")
  if epsilon_schedule == "linear":
    epsilon = lambda: linearly_decaying_epsilon(
        train_step, epsilon_decay_steps, epsilon_start, epsilon_end)
  else:
    epsilon = lambda: exponentially_decaying_epsilon(
        train_step, epsilon_decay_rate, epsilon_start, epsilon_end)
  agent = DqnAgent(
      time_step_spec,
      action_spec,
      q_network=q_network.QNetwork(time_step_spec.observation, action_spec,
                                   fc_layer_params=tuple(fc_layer_params)),
      optimizer=adam(learning_rate),
      epsilon_greedy=epsilon,
      gamma=gamma,
      n_step_update=n_step_update,
      target_update_period=target_update_period,
      target_update_tau=target_update_tau,
      td_errors_loss_fn=td_errors_loss_fn,
      gradient_clipping=gradient_clipping,
      train_step_counter=train_step)
  agent.initialize()
  return agent


class InGraphDqn:
  """A DqnAgent's act and train step as plain TF ops, for loops compiled
  into one graph (`tfrl.train.compiled`). It shares the agent's variables:
  the Q network, target network, optimizer, train-step counter, epsilon
  schedule and target-sync counter (`_sync_target`), so a
  checkpoint, the greedy policy and evaluation are the agent's. The update
  is tf-agents' DqnAgent._train (1-step, no reward scaling or weights)
  without its nest and distribution plumbing, which XLA would otherwise
  have to carry on every step.
  """

  def __init__(self, agent: dqn_agent.DqnAgent):
    if agent._n_step_update != 1 or agent._reward_scale_factor != 1.0:
      raise ConfigError("the compiled DQN loop supports n_step_update=1 and reward_scale_factor=1")
    self.agent = agent
    self.time_step_spec = agent.time_step_spec
    self.action_spec = agent.action_spec
    observation = agent.time_step_spec.observation
    self.transition_spec = dict(observation=observation, action=agent.action_spec,
                                reward=agent.time_step_spec.reward,
                                discount=agent.time_step_spec.discount,
                                next_observation=observation)
    self.network = agent._q_network
    self.variables = self.network.trainable_variables

  def build(self):
    """Creates the optimizer's slots now: TF cannot create variables inside
    the compiled loop."""
    self.agent._optimizer.build(self.variables)

  def act(self, observation, seed):
    """The collect policy: epsilon-greedy with the agent's schedule."""
    q_values, _ = self.network(observation, training=False)
    epsilon = self.agent.collect_policy._get_epsilon()
    return tf.cast(epsilon_greedy(q_values, epsilon, seed), self.action_spec.dtype)

  def random_act(self, observation, seed):
    """Uniformly random actions (the initial collection): the draws of
    `act` at epsilon 1, without the Q network's forward pass."""
    num_actions = int(self.action_spec.maximum - self.action_spec.minimum + 1)
    q_values = tf.zeros([tf.shape(observation)[0], num_actions])
    return tf.cast(epsilon_greedy(q_values, 1.0, seed), self.action_spec.dtype)

  @property
  def target_sync_period(self) -> int:
    """Updates between target syncs (1: after every update)."""
    return self.agent.target_update_period

  def update(self, batch, sync_target: bool = True):
    """One train step on a batch of transitions; returns the mean loss.
    `sync_target=False` leaves the target sync to the caller
    (`advance_target_sync`), which may count several updates at once."""
    agent = self.agent
    next_q, _ = agent._target_q_network(batch["next_observation"], training=False)
    with tf.GradientTape() as tape:
      q_values, _ = self.network(batch["observation"], training=True)
      td_loss = q_learning_td_loss(q_values, batch["action"], batch["reward"], batch["discount"],
                                   next_q, agent._gamma, agent._td_errors_loss_fn)
      # A reducing loss (tf.compat.v1's huber averages) broadcast over the
      # batch, as tf-agents does.
      td_loss = td_loss * tf.ones_like(batch["reward"])
      loss = common.aggregate_losses(per_example_loss=td_loss,
                                     regularization_loss=self.network.losses).total_loss
    grads_and_vars = list(zip(tape.gradient(loss, self.variables), self.variables))
    if agent._gradient_clipping is not None:
      grads_and_vars = eager_utils.clip_gradient_norms(grads_and_vars, agent._gradient_clipping)
    agent._optimizer.apply_gradients(grads_and_vars)
    agent.train_step_counter.assign_add(1)
    if sync_target:
      self.advance_target_sync(1)
    return loss

  def updates_until_target_sync(self):
    """How many more updates until (and including) the next that syncs the
    target: 1 to `target_sync_period`."""
    period = self.target_sync_period
    counter = self.agent._update_target._counter
    return tf.cast(period, counter.dtype) - tf.math.floormod(counter, period)

  def advance_target_sync(self, updates):
    """tf-agents' periodic target update (`common.Periodically` around a
    soft update) after `updates` more updates: syncs if the count crossed a
    multiple of the period, as the agent does at each multiple. No
    `tf.cond`: the new target weights are selected with `tf.where`, so the
    compiled loop has no branch here (XLA's CPU runtime,
    `tfrl.train.train_compiled.xla_cpu_runtime`, fails to link a conditional
    inside the loop). Uses the Periodically's own counter, so a checkpoint
    and the regular agent agree on when the next sync is."""
    agent = self.agent
    tau, period = agent.target_update_tau, agent.target_update_period
    if period == 1:
      due = tf.constant(True)
    else:
      counter = agent._update_target._counter
      before = counter.read_value()
      after = counter.assign_add(tf.cast(updates, counter.dtype))
      due = tf.math.floordiv(after, period) > tf.math.floordiv(before, period)
    for target, source in zip(agent._target_q_network.variables, self.network.variables):
      target.assign(tf.where(due, tau * source + (1.0 - tau) * target, target))
