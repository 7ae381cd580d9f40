"""The RUDDER tutorial's figures (matplotlib, no pyplot: PNG or inline).

`draw_redistribution`: observations, actions, original and redistributed
rewards of episodes side by side. `draw_internals`: the LSTM's activations
and its return prediction over one episode (`ReturnPredictor.internals`).
"""

import numpy as np
from matplotlib.figure import Figure


def draw_redistribution(observations, actions, rewards, redistributed, coin_walk: bool) -> Figure:
  """Two episodes, one per column; on the coin walk, positions with the coin at +2."""
  fig = Figure(figsize=(9, 7.5), dpi=100, layout="constrained")
  axes = fig.subplots(4, 2, sharex=True)
  for col in range(2):
    ax = axes[0, col]
    if coin_walk:
      ax.plot(np.argmax(observations[col], -1) - 6)
      ax.axhline(2, linestyle="--", color="r")
      ax.set_ylim(-6.5, 6.5)
      ax.set_ylabel("position")
    else:
      ax.plot(observations[col])
    ax.set_title(f"observations (episode {col + 1}, return {rewards[col].sum():g})")
    axes[1, col].plot(actions[col], drawstyle="steps-post")
    axes[1, col].set_title("actions (1 = right)" if coin_walk else "actions")
    axes[2, col].plot(rewards[col])
    axes[2, col].set_title("original rewards (delayed)")
    axes[3, col].plot(redistributed[col])
    axes[3, col].axhline(0, color="k", linewidth=0.5)
    axes[3, col].set_title(f"redistributed rewards (sum {redistributed[col].sum():.4f})")
    axes[3, col].set_xlabel("time (environment steps)")
    for ax in axes[:, col]:
      ax.xaxis.grid(True)
  return fig


def draw_internals(internals, return_scale: float) -> Figure:
  """Each internal activation over time (one line per cell), then the predicted return."""
  names = [k for k in ("cell_input", "input_gate", "forget_gate", "output_gate", "cell_state")
           if k in internals]
  fig = Figure(figsize=(8, 2 * (len(names) + 1)), dpi=100, layout="constrained")
  axes = fig.subplots(len(names) + 1, 1, sharex=True)
  for ax, name in zip(axes, names):
    ax.plot(internals[name], linewidth=0.8)
    ax.set_title(f"{name} (each line one of {internals[name].shape[-1]} cells)")
    ax.xaxis.grid(True)
  axes[-1].plot(internals["prediction"] * return_scale)
  axes[-1].set_title("predicted return")
  axes[-1].set_xlabel("time (environment steps)")
  axes[-1].xaxis.grid(True)
  return fig
