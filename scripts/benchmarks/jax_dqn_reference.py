"""JAX speed reference: the DQN/CartPole loop of the tutorial "A gentle introduction
to deep RL in JAX" (R. Pegoud, 2023; shared/seeds/003_*.txt; code from the author's
`jym` repo), standalone (jax, optax, dm-haiku, numpy, stdlib; no tf, no tfrl) so it
can be timed next to tfrl's compiled TF loop. Needs its own venv (numpy>=2):
  /tmp/jaxvenv/bin/python scripts/benchmarks/jax_dqn_reference.py --steps 20000 --calls 3 --json
Prints one JSON line: first_s (first call, compile included), second_s (median of
the later, compiled calls, each continuing training), learning fields, jax_version.
"""
import argparse
import json
import os
import resource
import statistics
import time
from functools import partial

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--steps", type=int, default=20_000)  # tutorial: TIMESTEPS = 20_000
p.add_argument("--calls", type=int, default=3)  # compiled calls after the first
p.add_argument("--seed", type=int, default=0)  # tutorial notebook: RANDOM_SEED = 1
p.add_argument("--threads", type=int, default=0, help="1: pin to one core")
p.add_argument("--json", action="store_true", help="(output is always JSON)")
args = p.parse_args()
if args.threads == 1:  # must happen before jax is imported
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_cpu_multi_thread_eigen=false").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import haiku as hk  # noqa: E402  (jax must be imported after the lines above)
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax import lax, random, value_and_grad, vmap  # noqa: E402

# JAX of late 2023 (the tutorial's) used non-partitionable threefry; with it, seed 1
# reproduces the tutorial notebook's first 67 episode returns exactly (9, 8, 10, ...,
# 393 at episode 51) before float drift across XLA versions sets in.
jax.config.update("jax_threefry_partitionable", False)

# ---- hyperparameters (tutorial notebook, the 20k-step run the article shows) ----
N_ACTIONS, STATE_SHAPE, DISCOUNT, LEARNING_RATE = 2, 4, 0.9, 1e-3
NEURONS_PER_LAYER = [64, 64, 64, N_ACTIONS]
TARGET_NET_UPDATE_FREQ, BUFFER_SIZE, BATCH_SIZE = 10, 512, 32
EPSILON_START, EPSILON_END, DECAY_RATE = 0.3, 0.0, 1e-3


# ---- CartPole in jax.numpy ("translating CartPole to JAX"; jym CartPole) ----
# Gymnasium dynamics (Euler), reward = float(not done), auto-reset inside step.
# Like the tutorial there is NO 500-step truncation: episodes can run on.
G, M_CART, M_POLE, HALF_LEN, FORCE_MAG, TAU = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
TOTAL_MASS, POLEMASS_LEN = M_POLE + M_CART, M_POLE * HALF_LEN
X_LIMIT, THETA_LIMIT = 2.4, 12 * 2 * np.pi / 360


def env_reset(key):  # env_state = (state, key)
    state = random.uniform(key, shape=(4,), minval=-0.05, maxval=0.05)
    _, sub_key = random.split(key)
    return state, sub_key


def env_step(env_state, action):
    state, key = env_state
    x, x_dot, theta, theta_dot = state
    force = lax.select(jnp.all(action) == 1, FORCE_MAG, -FORCE_MAG)
    cos_t, sin_t = jnp.cos(theta), jnp.sin(theta)
    temp = (force + POLEMASS_LEN * theta_dot**2 * sin_t) / TOTAL_MASS
    theta_acc = (G * sin_t - cos_t * temp) / (
        HALF_LEN * (4.0 / 3.0 - M_POLE * cos_t**2 / TOTAL_MASS))
    x_acc = temp - POLEMASS_LEN * theta_acc * cos_t / TOTAL_MASS
    x, x_dot = x + TAU * x_dot, x_dot + TAU * x_acc
    theta, theta_dot = theta + TAU * theta_dot, theta_dot + TAU * theta_acc
    new_state = jnp.array([x, x_dot, theta, theta_dot])
    done = (x < -X_LIMIT) | (x > X_LIMIT) | (theta > THETA_LIMIT) | (theta < -THETA_LIMIT)
    reward = jnp.float32(jnp.invert(done))
    # _reset_if_done: the returned observation is already the reset state
    env_state = lax.cond(done, env_reset, lambda k: (new_state, k), key)
    return env_state, env_state[0], reward, done


# ---- network: hk.nets.MLP([64, 64, 64, 2]) (ReLU, haiku default init) ----
model = hk.transform(lambda x: hk.nets.MLP(output_sizes=NEURONS_PER_LAYER)(x))
optimizer = optax.adam(learning_rate=LEARNING_RATE)


# ---- DQN.act: epsilon-greedy on the online network's Q-values ----
def act(key, online_params, state, epsilon):
    explore = random.uniform(key) < epsilon
    key, subkey = random.split(key)
    action = lax.cond(
        explore,
        lambda k: random.choice(k, jnp.arange(N_ACTIONS)),
        lambda _: jnp.argmax(model.apply(online_params, None, state)),
        subkey)
    return action, subkey  # the tutorial carries subkey on as the next key


# ---- DQN.update: vmapped squared TD error, mean over batch, one Adam step ----
@partial(vmap, in_axes=(None, None, 0, 0, 0, 0, 0))  # vectorised over the batch
def _loss_fn(online_params, target_params, state, action, reward, next_state, done):
    target = reward + (1 - done) * DISCOUNT * jnp.max(
        model.apply(target_params, None, next_state))
    prediction = model.apply(online_params, None, state)[action]
    return jnp.square(target - prediction)


def update(online_params, target_params, opt_state, exp):
    def batch_loss(online, target):
        return jnp.mean(_loss_fn(online, target, exp["states"], exp["actions"],
                                 exp["rewards"], exp["next_states"], exp["dones"]), axis=0)
    loss, grads = value_and_grad(batch_loss)(online_params, target_params)
    updates, opt_state = optimizer.update(grads, opt_state)
    return optax.apply_updates(online_params, updates), opt_state, loss


# ---- UniformReplayBuffer: preallocated arrays, ring index, uniform sampling ----
def buffer_add(buf, experience, idx):
    state, action, reward, next_state, done = experience
    idx = idx % BUFFER_SIZE
    # rewards are stored as int32 like the tutorial (it relied on an implicit cast)
    new = dict(states=state, actions=action, rewards=reward.astype(jnp.int32),
               next_states=next_state, dones=done)
    return {k: buf[k].at[idx].set(new[k]) for k in buf}


def buffer_sample(key, buf, current_buffer_size):
    key, subkey = random.split(key)
    indexes = random.randint(subkey, (BATCH_SIZE,), minval=0, maxval=current_buffer_size)
    batch = vmap(lambda i, b: jax.tree_util.tree_map(lambda x: x[i], b),
                 in_axes=(0, None))(indexes, buf)
    return batch, subkey


def inverse_scaling_decay(eps_start, eps_end, step, decay_rate):
    return eps_end + (eps_start - eps_end) / (1 + decay_rate * step)


# ---- DeepRlRollout: the whole training loop as one lax.fori_loop ----
def fori_body(i, val, start):
    (params, target_params, opt_state, buf, action_key, buffer_key, env_state,
     all_actions, all_obs, all_rewards, all_done, losses) = val
    state, _ = env_state
    epsilon = inverse_scaling_decay(EPSILON_START, EPSILON_END, i, DECAY_RATE)
    action, action_key = act(action_key, params, state, epsilon)
    env_state, new_state, reward, done = env_step(env_state, action)
    buf = buffer_add(buf, (state, action, reward, new_state, done), i)
    # samples only from [0, min(i, 512)): learning starts at step 0 (at i=0 the
    # batch is 32 copies of slot 0, just written)
    current_buffer_size = jnp.min(jnp.array([i, BUFFER_SIZE]))
    batch, buffer_key = buffer_sample(buffer_key, buf, current_buffer_size)
    params, opt_state, loss = update(params, target_params, opt_state, batch)
    target_params = lax.cond(i % TARGET_NET_UPDATE_FREQ == 0,
                             lambda _: params, lambda _: target_params, None)
    t = i - start  # per-call log slot (the tutorial's logs are indexed by i)
    all_actions = all_actions.at[t].set(action)
    all_obs = all_obs.at[t].set(new_state)
    all_rewards = all_rewards.at[t].set(reward)
    all_done = all_done.at[t].set(done)
    losses = losses.at[t].set(loss)
    return (params, target_params, opt_state, buf, action_key, buffer_key, env_state,
            all_actions, all_obs, all_rewards, all_done, losses)


# The notebook pre-filled the buffer with 512 random steps before the rollout; that
# has no effect (step i writes slot i before sampling [0, i), and keys are re-derived
# from the seed), so the buffer starts empty here, as in the tutorial text.
def init_val(seed, steps):
    init_key, action_key, buffer_key = vmap(random.PRNGKey)(jnp.arange(3) + seed)
    env_state = env_reset(init_key)
    params = model.init(init_key, jnp.zeros((STATE_SHAPE,)))
    target_params = model.init(action_key, jnp.zeros((STATE_SHAPE,)))
    buf = {"states": jnp.empty((BUFFER_SIZE, STATE_SHAPE), jnp.float32),
           "actions": jnp.empty((BUFFER_SIZE,), jnp.int32),
           "rewards": jnp.empty((BUFFER_SIZE,), jnp.int32),
           "next_states": jnp.empty((BUFFER_SIZE, STATE_SHAPE), jnp.float32),
           "dones": jnp.empty((BUFFER_SIZE,), jnp.bool_)}
    logs = (jnp.zeros([steps]), jnp.zeros([steps, STATE_SHAPE]),
            jnp.zeros([steps], jnp.float32), jnp.zeros([steps], jnp.bool_),
            jnp.zeros([steps], jnp.float32))
    return (params, target_params, optimizer.init(params), buf, action_key,
            buffer_key, env_state, *logs)


@jax.jit  # one call = `steps` iterations, continuing from global step `start`
def rollout(val, start):
    steps = val[7].shape[0]
    return lax.fori_loop(start, start + steps, partial(fori_body, start=start), val)


# ---- timing + episode lengths (from the all_done log, as the tutorial plots) ----
cpu_seconds = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])  # noqa: E731
val = jax.block_until_ready(init_val(args.seed, args.steps))
times, cpu, dones = [], [], []
for c in range(1 + args.calls):
    t0, c0 = time.perf_counter(), cpu_seconds()
    val = jax.block_until_ready(rollout(val, jnp.int32(c * args.steps)))
    times.append(time.perf_counter() - t0)
    cpu.append(cpu_seconds() - c0)
    dones.append(np.asarray(val[10]))

length, longest, longest_first, first_500 = 0, 0, 0, None
for step, d in enumerate(np.concatenate(dones), start=1):
    length += 1  # episode length in env steps, terminal step included
    if length == 500 and first_500 is None:
        first_500 = step  # global env-step count at which an episode hit 500 steps
    longest = max(longest, length)
    longest_first = longest_first if step > args.steps else longest
    length = 0 if d else length
later = lambda xs: round(statistics.median(xs[1:]), 4) if args.calls else None  # noqa: E731
print(json.dumps({
    "first_s": round(times[0], 4),
    "second_s": later(times),
    "longest_episode": int(longest),  # over all (1 + calls) * steps env steps
    "first_500": first_500,
    "jax_version": jax.__version__,
    "longest_episode_first_call": int(longest_first),
    "episodes_first_call": int(dones[0].sum()),
    "second_cpu_s": later(cpu),  # process CPU time in the later calls (threads)
    "steps": args.steps, "calls": args.calls, "seed": args.seed, "threads": args.threads,
}))
