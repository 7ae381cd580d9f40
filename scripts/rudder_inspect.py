#!/usr/bin/env python
r"""Trains RUDDER's reward-redistribution model on random-policy episodes and
saves the tutorial's figures as PNGs.

  python scripts/rudder_inspect.py --out_dir=rudder_figures
  python scripts/rudder_inspect.py --env_id=tfrl/DelayedCartPole-v1 --return_scale=100

Writes to --out_dir:
  redistribution.png  observations, actions, original and redistributed
                      rewards of two held-out episodes (the tutorial's figure)
  lstm_internals.png  the LSTM's cell input, input gate, cell state and
                      prediction over the first of them
and prints the model's held-out loss, the largest |sum of redistributed
reward - return| and, on the coin walk, the mean redistributed reward of
moves toward and away from the coin.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("env_id", "tfrl/DelayedCoinWalk-v0", "A delayed-reward environment id.")
flags.DEFINE_integer("episodes", 1000, "Random-policy episodes to train on.")
flags.DEFINE_integer("held_out", 200, "Fresh episodes for the held-out figures and plots.")
flags.DEFINE_integer("updates", 3000, "Model updates (batches drawn from the lessons buffer).")
flags.DEFINE_integer("lstm_units", 16, "LSTM cells.")
flags.DEFINE_float("return_scale", 10.0, "The model regresses return / return_scale.")
flags.DEFINE_float("temperature", 0.1, "Lessons buffer: softmax(loss / temperature).")
flags.DEFINE_list("variant", [], "Any of output_gate, forget_gate, fully_connected_gates.")
flags.DEFINE_integer("seed", 0, "Seed.")
flags.DEFINE_string("out_dir", "rudder_figures", "Where the PNGs go.")

VARIANTS = ("output_gate", "forget_gate", "fully_connected_gates")


def main(argv):
  del argv
  from tfrl.errors import ConfigError
  try:
    run()
  except ConfigError as e:
    print(f"rudder_inspect.py: error: {str(e).splitlines()[0]}", file=sys.stderr)
    sys.exit(2)


def run():
  import numpy as np
  import tensorflow as tf
  from tf_agents.specs import tensor_spec

  import tfrl
  from tfrl.errors import ConfigError
  from tfrl.rudder import LessonsBuffer, ReturnPredictor, RewardRedistribution, pad
  from tfrl.rudder.episodes import coin_moves, random_episodes
  from tfrl.rudder.figures import draw_internals, draw_redistribution

  unknown = set(FLAGS.variant) - set(VARIANTS)
  if unknown:
    raise ConfigError(f"unknown --variant {sorted(unknown)}; choose from {VARIANTS}")
  env = tfrl.envs.load(FLAGS.env_id)  # ConfigError for an unknown id
  tf.random.set_seed(FLAGS.seed)
  rudder = RewardRedistribution(
      tensor_spec.from_spec(env.time_step_spec()), tensor_spec.from_spec(env.action_spec()),
      model_fn=lambda: ReturnPredictor(FLAGS.lstm_units, **{v: True for v in FLAGS.variant}),
      lessons_fn=lambda: LessonsBuffer(capacity=FLAGS.episodes, temperature=FLAGS.temperature),
      min_episodes=0, return_scale=FLAGS.return_scale)
  try:
    observations, actions, rewards = random_episodes(FLAGS.env_id, FLAGS.episodes, FLAGS.seed)
    returns = np.array([r.sum() for r in rewards])
    print(f"{len(returns)} random episodes, returns {returns.min():g}..{returns.max():g} "
          f"(mean {returns.mean():.2f}, {len(np.unique(returns))} distinct)")
    rudder.store([rudder.features(o, a) for o, a in zip(observations, actions)], returns)
    for done in range(0, FLAGS.updates, 500):
      loss = rudder.train_model(min(500, FLAGS.updates - done))
      print(f"updates {done + min(500, FLAGS.updates - done):>6}  lessons loss {loss:.4f}", flush=True)

    observations, actions, rewards = random_episodes(FLAGS.env_id, FLAGS.held_out,
                                                     FLAGS.seed + 1_000)
    features = [rudder.features(o, a) for o, a in zip(observations, actions)]
    returns = np.array([r.sum() for r in rewards])
    held_out_loss = rudder.store(features, returns).mean()
    redistributed = rudder.redistribute(features, returns)
    sums = redistributed.sum(axis=1)
    print(f"held-out: loss {held_out_loss:.4f}, max |sum(redistributed) - return| "
          f"{np.abs(sums - returns).max():.2e}")
    coin_walk = FLAGS.env_id.endswith("CoinWalk-v0")
    if coin_walk:
      toward, away = coin_moves(np.stack(observations), np.stack(actions))
      print(f"held-out moves toward +2: mean redistributed reward {redistributed[toward].mean():+.3f}, "
            f"positive on {np.mean(redistributed[toward] > 0):.0%}; away from +2: "
            f"{redistributed[away].mean():+.3f}, positive on {np.mean(redistributed[away] > 0):.0%}")

    # Two held-out episodes with different returns, the higher first.
    order = np.argsort(-returns, kind="stable")
    pair = [order[0], order[len(order) // 2]]
    os.makedirs(FLAGS.out_dir, exist_ok=True)
    path = os.path.join(FLAGS.out_dir, "redistribution.png")
    draw_redistribution([observations[i] for i in pair], [actions[i] for i in pair],
                        [rewards[i] for i in pair], [redistributed[i, :len(rewards[i])] for i in pair],
                        coin_walk).savefig(path)
    print(f"wrote {path}")
    x, _ = pad([features[pair[0]]])
    internals = {k: v.numpy()[0] for k, v in rudder.model.internals(tf.constant(x)).items()}
    path = os.path.join(FLAGS.out_dir, "lstm_internals.png")
    draw_internals(internals, FLAGS.return_scale).savefig(path)
    print(f"wrote {path}")
  finally:
    rudder.close()


if __name__ == "__main__":
  app.run(main)
