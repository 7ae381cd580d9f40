"""Generalized state-dependent exploration (gSDE; Raffin, Kober & Stulp 2021),
as SB3's `use_sde` for on-policy agents.

The actor's Gaussian has mean mu(s) and a state-dependent standard deviation
std_k(s) = sqrt(sum_j z_j(s)^2 sigma_jk^2 + eps), z(s) the actor's last hidden
layer (held out of the std's gradient, SB3's `learn_features=False`) and sigma
a learned [latent, action] matrix. Collecting, the noise is not drawn per step:
each env holds an exploration matrix theta ~ N(0, sigma^2), redrawn every
`sample_freq` steps, and acts mu(s) + z(s) theta, which for a fixed theta is a
smooth function of the state (no per-step jitter); for a given state its law
is the Gaussian above, which is what the agent's log-probabilities use.
"""

import tensorflow as tf
import tensorflow_probability as tfp
from tf_agents.networks import encoding_network, network
from tf_agents.policies import tf_policy
from tf_agents.specs import distribution_spec, tensor_spec
from tf_agents.trajectories import policy_step

EPSILON = 1e-6


def gsde_std(latent, log_std):
  """[B, A] standard deviations of the actions given [B, d] features and the
  [d, A] log-std matrix; the features carry no gradient."""
  variance = tf.matmul(tf.square(tf.stop_gradient(latent)), tf.exp(2.0 * log_std))
  return tf.sqrt(variance + EPSILON)


def gsde_noise(latent, exploration):
  """[B, A] action noise z(s) theta: [B, d] features times each env's [B, d, A]
  exploration matrix."""
  return tf.einsum("bd,bda->ba", latent, exploration)


class GsdeActorNetwork(network.DistributionNetwork):
  """pi(a|s) = N(mu(s), gsde_std(z(s), log_std)): an encoder (the fully
  connected layers, after conv layers and preprocessing if given) giving z, a
  linear mean, and the log-std matrix, all sigma_jk starting at `init_std`."""

  def __init__(self, input_tensor_spec, output_tensor_spec, fc_layer_params,
               activation_fn=tf.keras.activations.tanh, init_std: float = 1.0,
               preprocessing_layers=None, conv_layer_params=None, name="GsdeActorNetwork"):
    if not fc_layer_params:
      raise ValueError("gSDE needs at least one hidden layer (its features)")
    action_size = int(output_tensor_spec.shape.num_elements())
    self.latent_size = int(fc_layer_params[-1])
    output_spec = distribution_spec.DistributionSpec(
        lambda loc, scale: tfp.distributions.MultivariateNormalDiag(loc=loc, scale_diag=scale),
        dict(loc=tf.TensorSpec(output_tensor_spec.shape, tf.float32),
             scale=tf.TensorSpec(output_tensor_spec.shape, tf.float32)),
        sample_spec=output_tensor_spec)
    super().__init__(input_tensor_spec=input_tensor_spec, state_spec=(),
                     output_spec=output_spec, name=name)
    self._action_shape = output_tensor_spec.shape
    self._encoder = encoding_network.EncodingNetwork(
        input_tensor_spec, preprocessing_layers=preprocessing_layers,
        conv_layer_params=conv_layer_params, fc_layer_params=tuple(fc_layer_params),
        activation_fn=activation_fn, name="encoder")
    # tf-agents' NormalProjectionNetwork's mean initialisation (small outputs).
    self._mean_layer = tf.keras.layers.Dense(
        action_size, kernel_initializer=tf.keras.initializers.VarianceScaling(scale=0.1),
        name="mean")
    self.log_std = tf.Variable(tf.fill([self.latent_size, action_size],
                                       tf.math.log(tf.constant(init_std, tf.float32))),
                               name="log_std")

  def latent_and_mean(self, observation, training: bool = False):
    """z(s) [B, d] and mu(s) [B, A] (batched observations)."""
    latent, _ = self._encoder(observation, training=training)
    return latent, self._mean_layer(latent)

  def call(self, observation, step_type=None, network_state=(), training=False):
    del step_type
    latent, mean = self.latent_and_mean(observation, training)
    batch = tf.shape(mean)[:1]
    shape = tf.concat([batch, self._action_shape], axis=0)
    loc = tf.reshape(mean, shape)
    scale = tf.reshape(gsde_std(latent, self.log_std), shape)
    return self.output_spec.build_distribution(loc=loc, scale=scale), network_state


class GsdeCollectPolicy(tf_policy.TFPolicy):
  """Acts mu(s) + z(s) theta, theta per env in the policy state and redrawn
  from N(0, sigma^2) every `sample_freq` steps (the first step included: the
  driver starts every collection from the initial state)."""

  def __init__(self, time_step_spec, action_spec, actor_network: GsdeActorNetwork,
               sample_freq: int, observation_normalizer=None, name="GsdeCollectPolicy"):
    actor_network.create_variables(time_step_spec.observation)
    self._actor_network = actor_network
    self._sample_freq = sample_freq
    self.observation_normalizer = observation_normalizer
    action_size = int(action_spec.shape.num_elements())
    state_spec = dict(exploration=tensor_spec.TensorSpec(
                          [actor_network.latent_size, action_size], tf.float32),
                      steps=tensor_spec.TensorSpec([], tf.int64))
    super().__init__(time_step_spec, action_spec, policy_state_spec=state_spec, clip=False,
                     name=name)

  def _variables(self):
    normalizer = self.observation_normalizer
    return (list(self._actor_network.variables)
            + (list(normalizer.variables) if normalizer else []))

  def _action(self, time_step, policy_state, seed):
    observation = time_step.observation
    if self.observation_normalizer is not None:
      observation = self.observation_normalizer.normalize(observation)
    latent, mean = self._actor_network.latent_and_mean(observation)
    exploration, steps = policy_state["exploration"], policy_state["steps"]
    fresh = tf.random.normal(tf.shape(exploration), seed=tfp.util.SeedStream(seed, "gsde")())
    fresh *= tf.exp(self._actor_network.log_std)
    redraw = tf.equal(steps % self._sample_freq, 0)[:, None, None]
    exploration = tf.where(redraw, fresh, exploration)
    action = tf.reshape(mean + gsde_noise(latent, exploration),
                        tf.concat([tf.shape(mean)[:1], self.action_spec.shape], axis=0))
    return policy_step.PolicyStep(action, dict(exploration=exploration, steps=steps + 1), ())

  def _distribution(self, time_step, policy_state):
    raise NotImplementedError("gSDE's collect policy samples actions only")
