#!/usr/bin/env python
r"""Replay memory per stored transition for stacked-frame observations, and sampling speed.

  python scripts/benchmarks/benchmark_frame_replay.py
  python scripts/benchmarks/benchmark_frame_replay.py --envs=ALE/Pong-v5 --transitions=50000

For each env (an Atari id through tfrl's preprocessing, or `noise`: 84x84
frames of uniform noise stacked the same way, which no compression shrinks)
and each layout of tfrl.replay.TransitionReplay — `whole` (observations
stored as they come: obs and next obs of 4 frames per transition) and
`frames` (frame_stack=4: a frame per step) — a random policy collects
--transitions transitions into a table that holds them all, flushing every
--flush_every steps as the train loop does after each iteration's collection.
Then:
  ckpt B/tr   bytes of a Reverb checkpoint of the table (its chunks, as the
              server keeps them — zstd-compressed, each once — and items),
              less an empty table's, per stored transition;
  x frame     the same over one uint8 frame (84 * 84 = 7056 bytes);
  RSS B/tr    the process's resident memory growth during collection per
              transition (the embedded server's chunks and items, plus
              allocator noise; --transitions large makes it dominant); each
              row runs in a process of its own, so no row reuses another's
              freed memory;
  ms/batch    sampling --batch_size windows through `dataset` (num_batches
              100 per read: what DQN's train function reads), the stacks
              rebuilt — median over 5 reads.
"""

import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import _cli  # noqa: E402  (one-line flag errors, before TF is imported)
from absl import flags  # noqa: E402

FLAGS = flags.FLAGS
FRAME_BYTES = 84 * 84

flags.DEFINE_list("envs", ["noise", "ALE/Pong-v5", "ALE/Breakout-v5"],
                  "Env ids (ALE/... through tfrl's Atari preprocessing) or `noise`.")
_cli.define_choice_list("layouts", ["whole", "frames"], ["whole", "frames"], "Replay layouts.")
flags.DEFINE_integer("transitions", 10_000, "Transitions stored per measurement.", lower_bound=100)
flags.DEFINE_integer("num_envs", 1, "Envs collecting.", lower_bound=1)
flags.DEFINE_integer("flush_every", 4, "Steps per env between flushes.", lower_bound=1)
flags.DEFINE_integer("batch_size", 32, "Windows per sampled batch.", lower_bound=1)
flags.DEFINE_bool("one_row", False, "Measure the first env and layout only, printing JSON "
                  "(how each row runs in its own process).")


NOISE_ID = "tfrl-bench/NoiseFrames-v0"


def register_noise_env():
  """84x84 uniform-noise frames, stacked 4 (zero-padded, channels last); episodes of 1000 steps."""
  import gymnasium as gym  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel

  class Noise(gym.Env):
    observation_space = gym.spaces.Box(0, 255, (84, 84), np.uint8)
    action_space = gym.spaces.Discrete(4)

    def reset(self, *, seed=None, options=None):
      super().reset(seed=seed)
      self.t = 0
      return self.np_random.integers(0, 256, (84, 84), dtype=np.uint8), {}

    def step(self, action):
      self.t += 1
      frame = self.np_random.integers(0, 256, (84, 84), dtype=np.uint8)
      return frame, 0.0, False, self.t >= 1000, {}

  def make():
    env = gym.wrappers.FrameStackObservation(Noise(), 4, padding_type="zero")
    return gym.wrappers.TransformObservation(
        env, lambda obs: np.ascontiguousarray(np.moveaxis(obs, 0, -1)),
        gym.spaces.Box(0, 255, (84, 84, 4), np.uint8))

  if NOISE_ID not in gym.registry:
    gym.register(NOISE_ID, entry_point=make)


def resident_bytes() -> int:
  with open("/proc/self/statm") as statm:
    return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def checkpoint_bytes(server) -> int:
  path = server.checkpoint()
  return sum(os.path.getsize(os.path.join(path, name)) for name in os.listdir(path))


def measure(env_id: str, layout: str) -> dict:
  import tfrl  # pylint: disable=import-outside-toplevel
  from tf_agents.policies import random_tf_policy  # pylint: disable=import-outside-toplevel
  from tf_agents.specs import tensor_spec  # pylint: disable=import-outside-toplevel

  num_envs = FLAGS.num_envs
  if env_id == "noise":
    register_noise_env()
    env_id = NOISE_ID
  env = tfrl.envs.load(env_id, seed=0, num_envs=num_envs)
  policy = random_tf_policy.RandomTFPolicy(tensor_spec.from_spec(env.time_step_spec()),
                                           tensor_spec.from_spec(env.action_spec()))
  replay = tfrl.replay.TransitionReplay(capacity=FLAGS.transitions + 10 * num_envs, min_size=1,
                                        frame_stack=4 if layout == "frames" else None)
  data_spec = policy.trajectory_spec
  with tfrl.replay.ReplayServer(replay.tables(data_spec, num_envs)) as server, \
       replay.adder(server.client, num_envs) as adder:
    driver = tfrl.drivers.Driver(env, policy, observers=[adder])
    driver.run_steps(num_envs)  # the driver and policy built before the baseline
    empty, resident = checkpoint_bytes(server), resident_bytes()
    while replay.num_items(server.client) * num_envs < FLAGS.transitions:
      driver.run_steps(num_envs * FLAGS.flush_every)  # flushes at the end
    stored = replay.num_items(server.client) * num_envs
    resident = resident_bytes() - resident
    stored_bytes = checkpoint_bytes(server) - empty
    iterator = iter(replay.dataset(server.address, FLAGS.batch_size, num_envs=num_envs,
                                   data_spec=data_spec, num_batches=100))
    next(iterator)
    times = []
    for _ in range(5):
      start = time.perf_counter()
      experience, _ = next(iterator)
      experience.observation.numpy()
      times.append((time.perf_counter() - start) / 100 * 1000)
  env.close()
  return dict(stored=stored, ckpt=stored_bytes / stored, rss=resident / stored,
              ms=statistics.median(times))


def measure_in_child(env_id: str, layout: str) -> dict:
  args = [sys.executable, os.path.abspath(__file__), "--one_row", f"--envs={env_id}",
          f"--layouts={layout}", f"--transitions={FLAGS.transitions}",
          f"--num_envs={FLAGS.num_envs}", f"--flush_every={FLAGS.flush_every}",
          f"--batch_size={FLAGS.batch_size}"]
  result = subprocess.run(args, capture_output=True, text=True, check=False)
  if result.returncode:
    sys.exit(f"{env_id} {layout}: {result.stderr.strip().splitlines()[-1:]}")
  return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv):
  del argv
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  if FLAGS.one_row:
    print(json.dumps(measure(FLAGS.envs[0], FLAGS.layouts[0])))
    return
  rows = [(env_id, layout, measure_in_child(env_id, layout))
          for env_id in FLAGS.envs for layout in FLAGS.layouts]
  print(f"\nreplay of stacked 84x84x4 frames: {FLAGS.num_envs} env(s), random policy, flush "
        f"every {FLAGS.flush_every} steps, batch {FLAGS.batch_size}; "
        f"load average {os.getloadavg()[0]:.1f}")
  print(f"{'env':17} {'layout':7} {'stored':>7} {'ckpt B/tr':>10} {'x frame':>8} "
        f"{'RSS B/tr':>9} {'ms/batch':>9}")
  for env_id, layout, r in rows:
    print(f"{env_id:17} {layout:7} {r['stored']:7d} {r['ckpt']:10.0f} "
          f"{r['ckpt'] / FRAME_BYTES:8.3f} {r['rss']:9.0f} {r['ms']:9.3f}")


if __name__ == "__main__":
  _cli.run(main)
