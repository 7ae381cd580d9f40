"""RUDDER's reward-redistribution model: an LSTM that predicts the episode's
return at every step from the (observation, action) sequence so far.

The default cell is the tutorial's simplified LSTM:
  * cell input  z_t = tanh(W_z x_t + b_z)           forward connections only
  * input gate  i_t = sigmoid(R_i h_{t-1} + b_i)    recurrent connections only
  * no forget gate (c_t = c_{t-1} + i_t * z_t), no output gate, and a
    linear cell output h_t = c_t,
followed by a linear layer to one return prediction per step. Its cell state
can only add up evidence, which keeps the prediction differences (the
redistributed reward) easy to read. If it cannot predict the return well
enough, add complexity in the tutorial's order: `output_gate`, then
`forget_gate`, then `fully_connected_gates` (every gate and the cell input
see both the input and h_{t-1}).

`ReturnPredictor(input_units=...)` puts dense ReLU layers before the cell.
On the coin walk the simplified cell with raw one-hot input credits steps
spent *at* the coin rather than moves toward it; a ReLU layer of 32 before
the full LSTM (all three switches) credits the moves (README "RUDDER").
"""

from typing import Dict, Sequence, Tuple

import gin
import tensorflow as tf


class RudderLSTMCell(tf.keras.layers.Layer):
  """An LSTM cell whose gates and connections are switched on one by one."""

  def __init__(self, units: int, output_gate: bool = False, forget_gate: bool = False,
               fully_connected_gates: bool = False, **kwargs):
    super().__init__(**kwargs)
    self.units = units
    self.use_output_gate = output_gate
    self.use_forget_gate = forget_gate
    self.fully_connected_gates = fully_connected_gates
    self.state_size = [units, units]  # h, c
    self.output_size = units

  def build(self, input_shape):
    features = int(input_shape[-1])

    def connections(name, forward: bool, recurrent: bool, bias_init="zeros"):
      weights = {}
      if forward:
        weights["forward"] = self.add_weight(f"{name}_kernel", (features, self.units),
                                             initializer="glorot_normal")
      if recurrent:
        weights["recurrent"] = self.add_weight(f"{name}_recurrent_kernel",
                                               (self.units, self.units), initializer="glorot_normal")
      weights["bias"] = self.add_weight(f"{name}_bias", (self.units,), initializer=bias_init)
      return weights

    full = self.fully_connected_gates
    self.cell_input = connections("cell_input", forward=True, recurrent=full)
    self.input_gate = connections("input_gate", forward=full, recurrent=True)
    self.output_gate = (connections("output_gate", forward=full, recurrent=True)
                        if self.use_output_gate else None)
    # A forget gate starts open (bias 1) so early training does not erase the cell.
    self.forget_gate = (connections("forget_gate", forward=full, recurrent=True, bias_init="ones")
                        if self.use_forget_gate else None)
    super().build(input_shape)

  @staticmethod
  def _net(weights, x, h):
    out = weights["bias"]
    if "forward" in weights:
      out = out + tf.matmul(x, weights["forward"])
    if "recurrent" in weights:
      out = out + tf.matmul(h, weights["recurrent"])
    return out

  def step(self, x, h, c) -> Tuple[tf.Tensor, tf.Tensor, Dict[str, tf.Tensor]]:
    """One time step; also returns the activations the inspection plots."""
    z = tf.tanh(self._net(self.cell_input, x, h))
    i = tf.sigmoid(self._net(self.input_gate, x, h))
    f = tf.sigmoid(self._net(self.forget_gate, x, h)) if self.forget_gate else 1.0
    c = f * c + i * z
    o = tf.sigmoid(self._net(self.output_gate, x, h)) if self.output_gate else 1.0
    h = o * c  # linear cell output: the model regresses a return
    activations = dict(cell_input=z, input_gate=i, cell_state=c, output=h)
    if self.forget_gate:
      activations["forget_gate"] = f
    if self.output_gate:
      activations["output_gate"] = o
    return h, c, activations

  def call(self, inputs, states):
    h, c, _ = self.step(inputs, states[0], states[1])
    return h, [h, c]


@gin.configurable(module="tfrl.rudder")
class ReturnPredictor(tf.keras.Model):
  """[B, T, features] -> the return predicted after each step, [B, T]."""

  def __init__(self, lstm_units: int = 16, output_gate: bool = False, forget_gate: bool = False,
               fully_connected_gates: bool = False, input_units: Sequence[int] = ()):
    """`input_units`: dense ReLU layers over the concatenated (observation,
    action) before the LSTM; () feeds the LSTM the raw features, as the
    tutorial does. The simplified cell's input is tanh of a *linear* function
    of its input, so raw one-hot (position, action) cannot express that an
    action's worth depends on where it is taken (right is good left of the
    coin, bad right of it); a ReLU layer can."""
    super().__init__(name="return_predictor")
    self.preprocess = tf.keras.Sequential(
        [tf.keras.layers.Dense(n, activation="relu") for n in input_units])
    self.cell = RudderLSTMCell(lstm_units, output_gate=output_gate, forget_gate=forget_gate,
                               fully_connected_gates=fully_connected_gates)
    self.lstm = tf.keras.layers.RNN(self.cell, return_sequences=True)
    self.head = tf.keras.layers.Dense(1)  # linear: a regression of the return

  def call(self, features):
    return tf.squeeze(self.head(self.lstm(self.preprocess(features))), -1)

  def internals(self, features) -> Dict[str, tf.Tensor]:
    """The cell's activations at every step, each [B, T, units], plus the
    prediction [B, T]; a plain loop, for inspection only."""
    features = self.preprocess(features)
    batch = tf.shape(features)[0]
    h = c = tf.zeros([batch, self.cell.units])
    steps = []
    for t in range(features.shape[1]):
      h, c, activations = self.cell.step(features[:, t], h, c)
      steps.append(activations)
    out = {k: tf.stack([s[k] for s in steps], axis=1) for k in steps[0]}
    out["prediction"] = tf.squeeze(self.head(out["output"]), -1)
    return out
