"""DQN (Mnih et al., 2015): tf-agents' DqnAgent with an online and a target
network and a linearly decaying epsilon-greedy collect policy."""

from typing import Optional

import gin
import tensorflow as tf
from tf_agents.utils import common

from tfrl.agents import in_graph
from tfrl.agents.factory import agent_factory, DISCRETE
from tfrl.checks import (ConvLayers, Count, Fraction, Layers, NonNegativeFloat, NonNegativeInt,
                         PositiveFloat)
from tfrl.agents.diagnostics import DoubleDqnAgent, DqnAgent, DqnParts
from tfrl.errors import ConfigError
from tfrl.networks import adam, q_network


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
# the tutorial's squared error; the default stays Huber. Both element-wise:
# the agent weighs each transition's loss (prioritized replay's importance
# weights), which a loss already averaged over the batch would defeat.
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


def next_state_values(next_target_q_values, next_online_q_values=None):
  """V(s') for the TD target: max_a' Q_target(s', a'), or with the online
  network's values given (Double DQN) Q_target(s', argmax_a' Q_online(s', a'))."""
  if next_online_q_values is None:
    return tf.reduce_max(next_target_q_values, -1)
  greedy = tf.one_hot(tf.argmax(next_online_q_values, -1), tf.shape(next_target_q_values)[-1],
                      dtype=next_target_q_values.dtype)
  return tf.reduce_sum(next_target_q_values * greedy, -1)


def q_learning_td_loss(q_values, actions, rewards, discounts, next_values, gamma: float,
                       loss_fn=common.element_wise_huber_loss):
  """Per-transition loss of one-step Q-learning:
  loss_fn(r + gamma * discount * V(s'), Q(s, a)), V(s') from `next_state_values`.
  `discounts` is 0 where the episode terminated (no future) and 1 where it
  continues or was truncated (the cut-off future is bootstrapped)."""
  targets = tf.stop_gradient(rewards + gamma * discounts * next_values)
  # Q(s, a) as a one-hot dot product rather than a gather: its gradient is a
  # product, not a scatter, which is cheaper inside the compiled loop.
  num_actions = tf.shape(q_values)[-1]
  predictions = tf.reduce_sum(q_values * tf.one_hot(actions, num_actions, dtype=q_values.dtype), -1)
  return loss_fn(targets, predictions)


@gin.configurable(module="tfrl.agents")
@agent_factory("dqn", DISCRETE)
def dqn(time_step_spec,
        action_spec,
        fc_layer_params: Layers = (64, 64),
        conv_layer_params: Optional[ConvLayers] = None,
        learning_rate: PositiveFloat = 1e-3,
        learning_rate_decay_steps: NonNegativeInt = 0,
        gamma: Fraction = 0.99,
        epsilon_start: Fraction = 1.0,
        epsilon_end: Fraction = 0.05,
        epsilon_decay_steps: NonNegativeInt = 10_000,
        epsilon_schedule: str = "linear",
        epsilon_decay_rate: NonNegativeFloat = 1e-3,
        target_update_period: Count = 100,
        target_update_tau: Fraction = 1.0,
        n_step_update: Count = 1,
        gradient_clipping: Optional[PositiveFloat] = None,
        double_q: bool = False,
        td_errors_loss_fn=common.element_wise_huber_loss) -> DqnAgent:
  """Q-learning from replayed transitions.

  Exploration: epsilon decays linearly from `epsilon_start` to `epsilon_end`
  over `epsilon_decay_steps` train steps (the agent's train_step_counter, so
  it resumes with the checkpoint); `epsilon_schedule="exponential"` decays it
  as exp(-epsilon_decay_rate * step) instead. The target network is synced every
  `target_update_period` train steps (tau=1 copies, tau<1 averages).
  `learning_rate_decay_steps` > 0: Adam's rate falls linearly to 0 over that
  many train steps, so a run's last updates barely move the network.
  `double_q`: Double DQN's target, Q_target(s', argmax_a' Q(s', a'))
  (tf-agents' DdqnAgent), which curbs max-operator overestimation.
  `td_errors_loss_fn` must be element-wise ([B] losses), so importance
  weights weigh each transition.

  Pixels: `conv_layer_params` puts conv layers before the fully connected
  ones (the Nature DQN network: `%tfrl.networks.NATURE_DQN_CONV` with
  fc_layer_params (512,)); uint8 observations are scaled into [0, 1] inside
  the network (`tfrl.networks.observation_preprocessing`).

  Returns tfrl's DqnAgent, whose `parts` (`DqnParts`) are what it was built
  from: `InGraphDqn.from_agent` builds the compiled loop's learner of them.
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
  q_net = q_network(time_step_spec.observation, action_spec, fc_layer_params, conv_layer_params)
  agent = (DoubleDqnAgent if double_q else DqnAgent)(
      time_step_spec,
      action_spec,
      q_network=q_net,
      target_q_network=q_net.copy(name="TargetQNetwork"),
      optimizer=adam(learning_rate, learning_rate_decay_steps, step=train_step),
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


class InGraphDqn(tf.Module):
  """A DqnAgent's act and train step as plain TF ops, for loops compiled
  into one graph (`tfrl.train.compiled`), built from the agent's `DqnParts`
  alone. It shares their state: the Q network, target network, optimizer,
  train-step counter and epsilon schedule, so a checkpoint, the greedy
  policy and evaluation are the agent's. The update is tf-agents'
  DqnAgent._train (1-step, no reward scaling or weights) without its nest
  and distribution plumbing, which XLA would otherwise have to carry on
  every step.

  It counts its own updates towards target syncs (`target_sync_counter`,
  a variable of this module, so the compiled loop's checkpoint holds it);
  the agent's `train` counts its own, so the two are not to be mixed on
  one agent.
  """

  update_draws_noise = False  # `update` needs no seed

  def __init__(self, parts: DqnParts):
    super().__init__(name="in_graph_dqn")
    if parts.n_step_update != 1 or parts.reward_scale_factor != 1.0:
      raise ConfigError("the compiled DQN loop supports n_step_update=1 and reward_scale_factor=1")
    if parts.epsilon_greedy is None:
      raise ConfigError("the compiled DQN loop explores epsilon-greedily (epsilon_greedy is None)")
    self.action_spec = parts.action_spec
    self.transition_spec = in_graph.transition_spec(parts.time_step_spec, parts.action_spec)
    self.q_network, self.target_q_network = parts.q_network, parts.target_q_network
    self.optimizer = parts.optimizer
    self.train_step_counter = parts.train_step_counter
    self.epsilon = parts.epsilon_greedy
    self.gamma, self.td_errors_loss_fn = parts.gamma, parts.td_errors_loss_fn
    self.gradient_clipping = parts.gradient_clipping
    self.double_q = parts.double_q
    self.target_update_tau = parts.target_update_tau
    self.target_sync_period = parts.target_update_period  # updates between syncs (1: every)
    self.target_sync_counter = tf.Variable(0, dtype=tf.int64, trainable=False,
                                           name="target_sync_counter")
    self.variables_to_train = self.q_network.trainable_variables

  @classmethod
  def from_agent(cls, agent) -> "InGraphDqn":
    """The learner of a DqnAgent that records its parts (`tfrl.agents.dqn`'s)."""
    parts = getattr(agent, "parts", None)
    if not isinstance(parts, DqnParts):
      raise ConfigError(f"the compiled loop needs a DqnAgent built by tfrl.agents.dqn "
                        f"(tfrl.agents.diagnostics.DqnAgent), got {type(agent).__name__}")
    return cls(parts)

  def build(self, conditionals: bool = False):
    """Creates the optimizer's slots now: TF cannot create variables inside
    the compiled loop. (Its target syncs are selects with or without
    `conditionals`: cheap, and the loop runs them once per segment.)"""
    self.optimizer.build(self.variables_to_train)

  def act(self, observation, seed):
    """The collect policy: epsilon-greedy with the agent's schedule."""
    q_values, _ = self.q_network(observation, training=False)
    epsilon = self.epsilon() if callable(self.epsilon) else self.epsilon
    return tf.cast(epsilon_greedy(q_values, epsilon, seed), self.action_spec.dtype)

  def random_act(self, observation, seed):
    """Uniformly random actions (the initial collection): the draws of
    `act` at epsilon 1, without the Q network's forward pass."""
    num_actions = int(self.action_spec.maximum - self.action_spec.minimum + 1)
    q_values = tf.zeros([tf.shape(observation)[0], num_actions])
    return tf.cast(epsilon_greedy(q_values, 1.0, seed), self.action_spec.dtype)

  def update(self, batch, sync_target: bool = True):
    """One train step on a batch of transitions; returns the mean loss.
    `sync_target=False` leaves the target sync to the caller
    (`advance_target_sync`), which may count several updates at once."""
    next_q, _ = self.target_q_network(batch["next_observation"], training=False)
    next_online_q = (self.q_network(batch["next_observation"], training=False)[0]
                     if self.double_q else None)
    next_values = next_state_values(next_q, next_online_q)
    with tf.GradientTape() as tape:
      q_values, _ = self.q_network(batch["observation"], training=True)
      td_loss = q_learning_td_loss(q_values, batch["action"], batch["reward"], batch["discount"],
                                   next_values, self.gamma, self.td_errors_loss_fn)
      loss = common.aggregate_losses(per_example_loss=td_loss,
                                     regularization_loss=self.q_network.losses).total_loss
    variables = self.variables_to_train
    in_graph.apply_gradients(self.optimizer, tape.gradient(loss, variables), variables,
                             self.gradient_clipping)
    self.train_step_counter.assign_add(1)
    if sync_target:
      self.advance_target_sync(1)
    return loss

  def updates_until_target_sync(self):
    """How many more updates until (and including) the next that syncs the
    target: 1 to `target_sync_period`."""
    return in_graph.updates_until(self.target_sync_counter, self.target_sync_period)

  def advance_target_sync(self, updates):
    """tf-agents' periodic target update after `updates` more updates
    (`in_graph.periodic_soft_update`): syncs if the count crossed a
    multiple of the period, selected with `tf.where` (no branch in the
    compiled loop)."""
    in_graph.periodic_soft_update(
        self.target_sync_counter, self.target_sync_period, updates,
        zip(self.q_network.variables, self.target_q_network.variables), self.target_update_tau)
