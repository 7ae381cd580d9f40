"""Environments as batched TensorFlow ops, for loops compiled into one graph.

Each environment is a pair of pure functions over a state nest of [batch]
tensors: `reset(seed, batch_size) -> state` and `step(state, action) ->
(next_state, observation, reward, terminated, truncated)`, usable inside
`tf.function(jit_compile=True)`. They reproduce gymnasium's CartPole-v1,
Pendulum-v1, Acrobot-v1, MountainCar-v0 and MountainCarContinuous-v0
(dynamics, reward, termination, the TimeLimit truncation), in float32 where
gymnasium computes in float64, except Acrobot's state (float64: see why
there); observations and rewards are float32. Randomness is stateless
(`tf.random.stateless_uniform` with a [2] int seed), so a compiled loop owns
its random stream. `observe(state)` gives the observation of a state.

`make(env_id)` returns the TF twin of a gymnasium id; the tf-agents specs are
those of `tfrl.envs.load(env_id)`, so a policy trained here runs on the
gymnasium environment unchanged.
"""

import math
from typing import Dict, NamedTuple

import tensorflow as tf

from tfrl.errors import ConfigError

State = Dict[str, tf.Tensor]


class Step(NamedTuple):
  state: State
  observation: tf.Tensor
  reward: tf.Tensor
  terminated: tf.Tensor
  truncated: tf.Tensor


def _uniform(seed, shape, low, high):
  return tf.random.stateless_uniform(shape, seed=seed, minval=low, maxval=high, dtype=tf.float32)


class CartPole:
  """gymnasium's CartPole-v1: Euler integration, reward 1 every step
  (the terminating one included), terminated when |x| > 2.4 or
  |theta| > 12 degrees, truncated at 500 steps."""

  gravity = 9.8
  masscart = 1.0
  masspole = 0.1
  total_mass = masspole + masscart
  length = 0.5  # half the pole's length
  polemass_length = masspole * length
  force_mag = 10.0
  tau = 0.02
  theta_threshold_radians = 12 * 2 * math.pi / 360
  x_threshold = 2.4

  def __init__(self, max_episode_steps: int = 500):
    self.max_episode_steps = max_episode_steps

  def reset(self, seed, batch_size: int) -> State:
    physics = _uniform(seed, [batch_size, 4], -0.05, 0.05)
    return {"physics": physics, "steps": tf.zeros([batch_size], tf.int32)}

  def observe(self, state: State) -> tf.Tensor:
    return state["physics"]

  def step(self, state: State, action) -> Step:
    x, x_dot, theta, theta_dot = tf.unstack(state["physics"], axis=-1)
    force = tf.where(tf.equal(action, 1), self.force_mag, -self.force_mag)
    costheta, sintheta = tf.cos(theta), tf.sin(theta)
    temp = (force + self.polemass_length * tf.square(theta_dot) * sintheta) / self.total_mass
    thetaacc = (self.gravity * sintheta - costheta * temp) / (
        self.length * (4.0 / 3.0 - self.masspole * tf.square(costheta) / self.total_mass))
    xacc = temp - self.polemass_length * thetaacc * costheta / self.total_mass
    # Euler: positions move with the old velocities.
    x, x_dot = x + self.tau * x_dot, x_dot + self.tau * xacc
    theta, theta_dot = theta + self.tau * theta_dot, theta_dot + self.tau * thetaacc
    physics = tf.stack([x, x_dot, theta, theta_dot], axis=-1)
    terminated = ((x < -self.x_threshold) | (x > self.x_threshold)
                  | (theta < -self.theta_threshold_radians) | (theta > self.theta_threshold_radians))
    steps = state["steps"] + 1
    truncated = steps >= self.max_episode_steps
    reward = tf.ones_like(x)
    return Step({"physics": physics, "steps": steps}, physics, reward, terminated, truncated)


class Pendulum:
  """gymnasium's Pendulum-v1: torque clipped to [-2, 2], cost
  angle_normalize(th)^2 + 0.1 thdot^2 + 0.001 u^2 of the state before the
  step, speed clipped to 8, never terminates, truncated at 200 steps."""

  max_speed = 8.0
  max_torque = 2.0
  dt = 0.05
  g = 10.0
  m = 1.0
  l = 1.0

  def __init__(self, max_episode_steps: int = 200):
    self.max_episode_steps = max_episode_steps

  def reset(self, seed, batch_size: int) -> State:
    th = _uniform(seed, [batch_size], -math.pi, math.pi)
    thdot = _uniform(tf.random.experimental.stateless_fold_in(seed, 1), [batch_size], -1.0, 1.0)
    return {"physics": tf.stack([th, thdot], -1), "steps": tf.zeros([batch_size], tf.int32)}

  def observe(self, state: State) -> tf.Tensor:
    th, thdot = tf.unstack(state["physics"], axis=-1)
    return tf.stack([tf.cos(th), tf.sin(th), thdot], axis=-1)

  def step(self, state: State, action) -> Step:
    th, thdot = tf.unstack(state["physics"], axis=-1)
    u = tf.clip_by_value(action[..., 0], -self.max_torque, self.max_torque)
    costs = tf.square(angle_normalize(th)) + 0.1 * tf.square(thdot) + 0.001 * tf.square(u)
    newthdot = thdot + (3 * self.g / (2 * self.l) * tf.sin(th) + 3.0 / (self.m * self.l ** 2) * u) * self.dt
    newthdot = tf.clip_by_value(newthdot, -self.max_speed, self.max_speed)
    newth = th + newthdot * self.dt
    steps = state["steps"] + 1
    next_state = {"physics": tf.stack([newth, newthdot], -1), "steps": steps}
    return Step(next_state, self.observe(next_state), -costs, tf.zeros_like(steps, tf.bool),
                steps >= self.max_episode_steps)


class Acrobot:
  """gymnasium's Acrobot-v1 (the book dynamics): torque -1, 0 or 1 on the
  joint between the links, one RK4 step of dt 0.2, then the angles wrapped
  into [-pi, pi] and the velocities bounded to 4 pi and 9 pi; terminated when
  the free end is above the bar (-cos(th1) - cos(th1 + th2) > 1), reward -1
  per step and 0 on the terminating one, truncated at 500 steps. The state is
  (th1, th2, dth1, dth2).

  The state is float64, as gymnasium integrates (its reset draws float32
  values, kept here too); observations and rewards are float32. Even with
  random torques near the bottom the dynamics amplify rounding: a float32
  twin drifted ~5e-4 from gymnasium within a 500-step episode, where this
  one stayed within float32 rounding of gymnasium's observations. A
  swinging acrobot is chaotic, and there any difference (XLA's cos against
  numpy's, in float64 too) grows to O(1) within a few hundred steps, so
  long energetic trajectories agree in distribution, not point by point."""

  dt = 0.2
  link_length_1 = 1.0
  link_mass_1 = 1.0
  link_mass_2 = 1.0
  link_com_pos_1 = 0.5
  link_com_pos_2 = 0.5
  link_moi = 1.0
  max_vel_1 = 4 * math.pi
  max_vel_2 = 9 * math.pi

  def __init__(self, max_episode_steps: int = 500):
    self.max_episode_steps = max_episode_steps

  def reset(self, seed, batch_size: int) -> State:
    physics = tf.cast(_uniform(seed, [batch_size, 4], -0.1, 0.1), tf.float64)
    return {"physics": physics, "steps": tf.zeros([batch_size], tf.int32)}

  def observe(self, state: State) -> tf.Tensor:
    th1, th2, dth1, dth2 = tf.unstack(state["physics"], axis=-1)
    return tf.cast(tf.stack([tf.cos(th1), tf.sin(th1), tf.cos(th2), tf.sin(th2), dth1, dth2], -1),
                   tf.float32)

  def _dsdt(self, s, a):
    m1, m2, l1 = self.link_mass_1, self.link_mass_2, self.link_length_1
    lc1, lc2 = self.link_com_pos_1, self.link_com_pos_2
    I1 = I2 = self.link_moi
    g = 9.8
    theta1, theta2, dtheta1, dtheta2 = tf.unstack(s, axis=-1)
    d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * tf.cos(theta2)) + I1 + I2
    d2 = m2 * (lc2**2 + l1 * lc2 * tf.cos(theta2)) + I2
    phi2 = m2 * lc2 * g * tf.cos(theta1 + theta2 - math.pi / 2.0)
    phi1 = (-m2 * l1 * lc2 * tf.square(dtheta2) * tf.sin(theta2)
            - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * tf.sin(theta2)
            + (m1 * lc1 + m2 * l1) * g * tf.cos(theta1 - math.pi / 2)
            + phi2)
    ddtheta2 = ((a + d2 / d1 * phi1 - m2 * l1 * lc2 * tf.square(dtheta1) * tf.sin(theta2) - phi2)
                / (m2 * lc2**2 + I2 - tf.square(d2) / d1))
    ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
    return tf.stack([dtheta1, dtheta2, ddtheta1, ddtheta2], axis=-1)

  def step(self, state: State, action) -> Step:
    s = state["physics"]
    torque = tf.cast(action, s.dtype) - 1.0  # AVAIL_TORQUE = [-1, 0, 1]
    # gymnasium's rk4 over t = [0, dt]: one step, the torque held constant.
    dt, dt2 = self.dt, self.dt / 2.0
    k1 = self._dsdt(s, torque)
    k2 = self._dsdt(s + dt2 * k1, torque)
    k3 = self._dsdt(s + dt2 * k2, torque)
    k4 = self._dsdt(s + dt * k3, torque)
    ns = s + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    th1, th2, dth1, dth2 = tf.unstack(ns, axis=-1)
    th1, th2 = wrap(th1, -math.pi, math.pi), wrap(th2, -math.pi, math.pi)
    dth1 = tf.clip_by_value(dth1, -self.max_vel_1, self.max_vel_1)
    dth2 = tf.clip_by_value(dth2, -self.max_vel_2, self.max_vel_2)
    physics = tf.stack([th1, th2, dth1, dth2], axis=-1)
    terminated = -tf.cos(th1) - tf.cos(th2 + th1) > 1.0
    reward = tf.where(terminated, 0.0, -1.0)  # float32
    steps = state["steps"] + 1
    next_state = {"physics": physics, "steps": steps}
    return Step(next_state, self.observe(next_state), reward, terminated,
                steps >= self.max_episode_steps)


def wrap(x, m, M):
  """gymnasium's Acrobot `wrap`: `x` shifted by whole periods M - m until
  m <= x <= M (the bounds themselves are kept, unlike a modulo)."""
  diff = M - m
  down = x - diff * tf.math.ceil((x - M) / diff)
  up = x + diff * tf.math.ceil((m - x) / diff)
  return tf.where(x > M, down, tf.where(x < m, up, x))


class _Hill:
  """The valley both mountain cars drive in: a (position, velocity) state
  reset to position U(-0.6, -0.4) at rest; `_roll` adds an acceleration,
  clips the speed to 0.07 and the position to [-1.2, 0.6], stops the car
  against the left wall and says whether it reached the goal."""

  min_position = -1.2
  max_position = 0.6
  max_speed = 0.07
  goal_velocity = 0.0
  gravity = 0.0025

  def __init__(self, max_episode_steps: int):
    self.max_episode_steps = max_episode_steps

  def reset(self, seed, batch_size: int) -> State:
    position = _uniform(seed, [batch_size], -0.6, -0.4)
    physics = tf.stack([position, tf.zeros_like(position)], -1)
    return {"physics": physics, "steps": tf.zeros([batch_size], tf.int32)}

  def observe(self, state: State) -> tf.Tensor:
    return state["physics"]

  def _roll(self, state: State, acceleration):
    """(next state, terminated) after `acceleration`, a function of the position."""
    position, velocity = tf.unstack(state["physics"], axis=-1)
    velocity = velocity + acceleration(position)
    velocity = tf.clip_by_value(velocity, -self.max_speed, self.max_speed)
    position = tf.clip_by_value(position + velocity, self.min_position, self.max_position)
    velocity = tf.where((position == self.min_position) & (velocity < 0), tf.zeros_like(velocity),
                        velocity)
    terminated = (position >= self.goal_position) & (velocity >= self.goal_velocity)
    next_state = {"physics": tf.stack([position, velocity], -1), "steps": state["steps"] + 1}
    return next_state, terminated

  def _step(self, next_state, reward, terminated) -> Step:
    return Step(next_state, self.observe(next_state), reward, terminated,
                next_state["steps"] >= self.max_episode_steps)


class MountainCar(_Hill):
  """gymnasium's MountainCar-v0: push left, none or right (force 0.001),
  gravity 0.0025 cos(3 position), speed clipped to 0.07, position to
  [-1.2, 0.6] with the velocity zeroed against the left wall; reward -1 every
  step, terminated at position >= 0.5 with velocity >= 0, truncated at 200
  steps. The state is (position, velocity), float32 (gymnasium's is float64;
  over an episode the two stay within ~1e-6)."""

  goal_position = 0.5
  force = 0.001

  def __init__(self, max_episode_steps: int = 200):
    super().__init__(max_episode_steps)

  def step(self, state: State, action) -> Step:
    push = tf.cast(action, tf.float32) - 1.0  # action 0, 1, 2: left, none, right
    next_state, terminated = self._roll(
        state, lambda position: push * self.force + tf.cos(3 * position) * (-self.gravity))
    return self._step(next_state, -tf.ones_like(terminated, tf.float32), terminated)


class MountainCarContinuous(_Hill):
  """gymnasium's MountainCarContinuous-v0: force = action clipped to [-1, 1]
  times power 0.0015, gravity 0.0025 cos(3 position), speed clipped to 0.07,
  position to [-1.2, 0.6] with the velocity zeroed against the left wall;
  terminated at position >= 0.45 with velocity >= 0; reward 100 on
  termination minus 0.1 action^2 (the action as given, unclipped) every
  step; truncated at 999 steps. The state is (position, velocity), float32
  as gymnasium keeps it between steps (its step computes in float64; its
  reset state is float64 until the first step)."""

  min_action = -1.0
  max_action = 1.0
  goal_position = 0.45
  power = 0.0015

  def __init__(self, max_episode_steps: int = 999):
    super().__init__(max_episode_steps)

  def step(self, state: State, action) -> Step:
    action = action[..., 0]
    force = tf.clip_by_value(action, self.min_action, self.max_action)
    next_state, terminated = self._roll(
        state, lambda position: force * self.power - self.gravity * tf.cos(3 * position))
    reward = tf.where(terminated, 100.0, 0.0) - tf.square(action) * 0.1
    return self._step(next_state, reward, terminated)


def angle_normalize(x):
  """An angle mapped to [-pi, pi), as gymnasium's Pendulum does (floor modulo)."""
  return tf.math.floormod(x + math.pi, 2 * math.pi) - math.pi


def auto_reset(env, step: Step, seed) -> State:
  """The state to continue from: envs whose episode ended start a fresh one
  (drawn with `seed`), the others carry on. gymnasium's vector envs reset on
  the next call instead; here the transition keeps the final observation
  and the reset happens at once, so no step is wasted on a boundary."""
  done = step.terminated | step.truncated
  fresh = env.reset(seed, tf.shape(done)[0])
  return tf.nest.map_structure(
      lambda new, old: tf.where(tf.reshape(done, [-1] + [1] * (len(old.shape) - 1)), new, old),
      fresh, step.state)


_ENVS = {"CartPole-v1": CartPole, "Pendulum-v1": Pendulum, "Acrobot-v1": Acrobot,
         "MountainCar-v0": MountainCar, "MountainCarContinuous-v0": MountainCarContinuous}


def make(env_id: str):
  """The TF-native twin of gymnasium's `env_id`."""
  if env_id not in _ENVS:
    raise ConfigError(f"no TF-native environment for {env_id!r} (the compiled loop has: "
                      f"{', '.join(sorted(_ENVS))})")
  return _ENVS[env_id]()
