"""MuJoCo without surprises: a headless rendering backend and a quiet compile.

`tfrl.envs` imports this module first: MuJoCo picks its OpenGL backend from
MUJOCO_GL once, when `mujoco` is imported (on first use of a MuJoCo env).
"""

import contextlib
import ctypes.util
import os
import sys

# gymnasium 1.3's HalfCheetah model sets this compiler attribute, which MuJoCo
# 4 deprecates; the warning is meant for the model's authors, not for tfrl's
# users. MuJoCo prints it through its C warning handler (stderr and a
# MUJOCO_LOG.TXT in the working directory), not through Python's warnings.
SETTOTALMASS_DEPRECATION = "compiler attribute 'settotalmass' is deprecated"


def default_headless_gl() -> None:
  """Sets MUJOCO_GL=egl on a machine without a display, unless set already.

  MuJoCo's default (glfw) needs an X display even for rgb_array frames; EGL
  renders offscreen, on a GPU or with Mesa's software rasterizer.
  """
  if os.environ.get("MUJOCO_GL") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
    return
  if "mujoco" in sys.modules:  # it has chosen its backend already
    return
  if ctypes.util.find_library("EGL"):
    os.environ["MUJOCO_GL"] = "egl"


@contextlib.contextmanager
def quiet_model_deprecations():
  """While envs are built: MuJoCo's settotalmass deprecation is dropped.

  Every other MuJoCo warning goes where it went before: to the handler that
  was installed, or as MuJoCo's default handler does, to stderr and its log.
  Without `mujoco` imported (no MuJoCo env involved), this does nothing.
  """
  mujoco = sys.modules.get("mujoco")
  if mujoco is None:
    yield
    return
  previous = mujoco.get_mju_user_warning()

  def handle(message: str):
    if message.startswith(SETTOTALMASS_DEPRECATION):
      return
    if previous is not None:
      previous(message)
    else:
      print(f"WARNING: {message}\n", file=sys.stderr)
      mujoco.mju_writeLog("WARNING", message)

  mujoco.set_mju_user_warning(handle)
  try:
    yield
  finally:
    mujoco.set_mju_user_warning(previous)


default_headless_gl()
