"""Watching a policy: run whole episodes, optionally recording rgb frames, and
write them as an mp4. Shared by scripts/test_policy.py and the notebooks.

A policy here is a tf-agents policy: a *py* policy taking one unbatched time
step (what `policy_loader.load` returns), or a TF policy (`agent.policy`),
which is wrapped in tf-agents' `PyTFEagerPolicy` to act on numpy time steps.
"""

import os
from typing import Callable, List, NamedTuple, Optional

import numpy as np

from tfrl.errors import ConfigError


def as_py_policy(policy):
  """`policy` as a py policy: TF policies are wrapped (one traced action call)."""
  from tf_agents.policies import py_tf_eager_policy, tf_policy  # pylint: disable=import-outside-toplevel
  if isinstance(policy, tf_policy.TFPolicy):
    return py_tf_eager_policy.PyTFEagerPolicy(policy, use_tf_function=True)
  return policy


class Episodes(NamedTuple):
  returns: List[float]
  lengths: List[int]
  frames: List[np.ndarray]   # every episode's reset frame and one per step (when recording)


def _needs_display(error: Exception) -> bool:
  text = str(error).lower()
  return any(word in text for word in ("display", "x11", "glfw", "egl", "xlib", "video system"))


def start_virtual_display():
  """An Xvfb display via pyvirtualdisplay (for envs that need X to render)."""
  try:
    from pyvirtualdisplay import Display  # pylint: disable=import-outside-toplevel
    display = Display(visible=False, size=(1024, 768))
    display.start()
    return display
  except Exception as e:  # pylint: disable=broad-except
    raise ConfigError(f"rendering needs an X display and none could be started "
                      f"(is Xvfb installed?): {e}") from None


def run_episodes(env, policy, num_episodes: int, record: bool = False,
                 on_episode: Optional[Callable[[int, float, int], None]] = None) -> Episodes:
  """Runs `num_episodes` whole episodes of `policy` (py or TF) in the (unbatched) `env`.

  With `record`, `env` must render rgb_array frames (`tfrl.envs.load(...,
  render_mode="rgb_array")`); if rendering fails for want of an X display
  and none is set, a virtual one is started for the duration.
  """
  policy = as_py_policy(policy)
  frames, display = [], None

  def grab():
    nonlocal display
    if not record:
      return
    try:
      frame = env.render()
    except Exception as e:  # pylint: disable=broad-except
      if display is not None or os.environ.get("DISPLAY") or not _needs_display(e):
        raise
      display = start_virtual_display()
      frame = env.render()
    frames.append(np.asarray(frame))

  returns, lengths = [], []
  try:
    for episode in range(num_episodes):
      time_step = env.reset()
      grab()
      total, length = 0.0, 0
      while not time_step.is_last():
        time_step = env.step(policy.action(time_step).action)
        grab()
        total += float(time_step.reward)
        length += 1
      returns.append(total)
      lengths.append(length)
      if on_episode is not None:
        on_episode(episode, total, length)
  finally:
    if display is not None:
      display.stop()
  return Episodes(returns, lengths, frames)


# Renders smaller than this (MinAtar's 10x10) are scaled up, pixel for pixel.
MIN_VIDEO_SIDE = 160


def video_frame(frame: np.ndarray) -> np.ndarray:
  """An rgb render as an H x W x 3 uint8 video frame: float renders in
  [0, 1] (MinAtar's) scaled to 0-255; renders under MIN_VIDEO_SIDE pixels a
  side enlarged by a whole factor, each pixel a block (no blur)."""
  frame = np.asarray(frame)
  if np.issubdtype(frame.dtype, np.floating):
    frame = np.round(np.clip(frame, 0.0, 1.0) * 255)
  frame = frame.astype(np.uint8)
  factor = -(-MIN_VIDEO_SIDE // min(frame.shape[:2]))
  if factor > 1:
    frame = np.repeat(np.repeat(frame, factor, axis=0), factor, axis=1)
  return frame


def write_mp4(path: str, frames, fps: int = 30):
  """Writes `frames` (rgb renders, see `video_frame`) to `path` via imageio.
  Written beside the target and renamed, so an interrupted write leaves an
  existing file intact."""
  import imageio  # pylint: disable=import-outside-toplevel
  tmp = f"{path}.tmp.mp4"
  imageio.mimsave(tmp, [video_frame(frame) for frame in frames], fps=fps, macro_block_size=1)
  os.replace(tmp, path)
