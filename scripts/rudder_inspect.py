#!/usr/bin/env python
r"""Trains RUDDER's reward-redistribution model on random-policy episodes and
saves the tutorial's figures as PNGs.

  python scripts/rudder_inspect.py --out_dir=rudder_figures
  python scripts/rudder_inspect.py --env_id=tfrl/DelayedCartPole-v1 --return_scale=100
  python scripts/rudder_inspect.py --variant= --input_units= --aux_weight=0.5 \
      --learning_rate=1e-3 --batch_size=8 --temperature=0.1   # the tutorial's model

The defaults are rudder_ppo_coin.gin's model: a ReLU layer before a full
LSTM, auxiliary weight 1, uniform replay of the episodes.

Writes to --out_dir:
  redistribution.png  observations, actions, original and redistributed
                      rewards of two held-out episodes (the tutorial's figure)
  lstm_internals.png  the LSTM's cell input, input gate, cell state and
                      prediction over the first of them
and prints the model's held-out loss, the largest |sum of redistributed
reward - return| and, on the coin walk, the mean redistributed reward of
moves toward and away from the coin (from positions other than +2, not
blocked at an end).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _cli  # noqa: E402

VARIANTS = ("output_gate", "forget_gate", "fully_connected_gates")

FLAGS = flags.FLAGS
flags.DEFINE_string("env_id", "tfrl/DelayedCoinWalk-v0", "A delayed-reward environment id.")
flags.DEFINE_integer("episodes", 3000, "Random-policy episodes to train on.", lower_bound=1)
flags.DEFINE_integer("held_out", 200, "Fresh episodes for the held-out figures and plots.",
                     lower_bound=1)
flags.DEFINE_integer("updates", 1500, "Model updates (batches drawn from the lessons buffer).",
                     lower_bound=0)
flags.DEFINE_integer("batch_size", 32, "Episodes per update.", lower_bound=1)
flags.DEFINE_float("learning_rate", 3e-3, "Adam's learning rate.")
flags.DEFINE_float("aux_weight", 1.0, "Weight of the auxiliary loss (the tutorial's 0.5).",
                   lower_bound=0)
flags.DEFINE_integer("lstm_units", 16, "LSTM cells.", lower_bound=1)
_cli.define_int_list("input_units", [32], "Dense ReLU layers before the LSTM ('' for none, "
                     "the tutorial's raw input).", lower_bound=1, allow_empty=True)
flags.DEFINE_float("return_scale", 10.0, "The model regresses return / return_scale.")
flags.DEFINE_float("temperature", 100.0, "Lessons buffer: softmax(loss / temperature); "
                   "100 samples about uniformly.")
_cli.define_choice_list("variant", VARIANTS, VARIANTS,
                        "Any of output_gate, forget_gate, fully_connected_gates ('' for the "
                        "tutorial's simplified cell).", allow_empty=True)
flags.DEFINE_integer("seed", 0, "Seed.", lower_bound=0)
flags.DEFINE_string("out_dir", "rudder_figures", "Where the PNGs go.")
_cli.require_positive("learning_rate", "return_scale", "temperature")


def main(argv):
  del argv
  _cli.check_creatable_dir(FLAGS.out_dir, "--out_dir")
  run()


def run():
  import tfrl  # first: it keeps old gym's import notice (pulled in by tf-agents) quiet
  import numpy as np
  import tensorflow as tf
  from tf_agents.specs import tensor_spec
  from tfrl.rudder import LessonsBuffer, ReturnPredictor, RewardRedistribution, pad
  from tfrl.rudder.episodes import coin_credit, random_episodes
  from tfrl.rudder.figures import draw_internals, draw_redistribution

  input_units = tuple(FLAGS.input_units)
  env = tfrl.envs.load(FLAGS.env_id)  # ConfigError for an unknown id
  tf.random.set_seed(FLAGS.seed)
  rudder = RewardRedistribution(
      tensor_spec.from_spec(env.time_step_spec()), tensor_spec.from_spec(env.action_spec()),
      model_fn=lambda: ReturnPredictor(FLAGS.lstm_units, input_units=input_units,
                                       **{v: True for v in FLAGS.variant}),
      lessons_fn=lambda: LessonsBuffer(capacity=FLAGS.episodes, temperature=FLAGS.temperature),
      min_episodes=0, return_scale=FLAGS.return_scale, aux_weight=FLAGS.aux_weight,
      learning_rate=FLAGS.learning_rate, batch_size=FLAGS.batch_size)
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
      credit = coin_credit(redistributed, np.stack(observations), np.stack(actions))
      for name, (mean, positive, count) in credit.items():
        where = "toward +2" if name == "toward" else "away from +2"
        print(f"held-out moves {where} ({count} moves from positions other than +2, "
              f"not blocked at an end): mean redistributed reward {mean:+.3f}, "
              f"positive on {positive:.1%}")

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
  _cli.run(main)
