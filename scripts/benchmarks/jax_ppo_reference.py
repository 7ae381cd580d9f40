"""JAX speed reference: PureJaxRL's PPO on CartPole-v1 (C. Lu et al., 2022,
purejaxrl/ppo.py with its CartPole config), the whole training — env steps,
GAE, epochs of minibatch updates — in one `jax.jit` over a `lax.scan` of
updates, standalone (jax, optax, numpy, stdlib; no flax, gymnax, tf or tfrl)
so it can be timed next to tfrl's compiled on-policy loop. Needs its own venv
(numpy>=2):
  /tmp/jaxvenv/bin/python scripts/benchmarks/jax_ppo_reference.py --steps 131072 --calls 3
Prints one JSON line: first_s (first call, compilation included), second_s
(median of the later calls, compiled, each a fresh training of --steps),
env_steps, the last updates' mean training episode return, jax_version.

As PureJaxRL: separate actor and critic MLPs (64-64 tanh, orthogonal init),
one Adam over the summed loss (clip 0.2, value coefficient 0.5, entropy 0.01,
grad norm 0.5, learning rate annealed linearly), gamma 0.99, GAE lambda
0.95, advantages normalized per minibatch; CartPole as gymnax's (Euler
dynamics, auto-reset, the 500-step limit). Defaults: 4 envs x 128 steps, 4
epochs of 4 minibatches, lr 2.5e-4.
"""
import argparse
import json
import os
import statistics
import time

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--steps", type=int, default=131072, help="env steps per training")
p.add_argument("--num_envs", type=int, default=4)
p.add_argument("--num_steps", type=int, default=128, help="rollout steps per env")
p.add_argument("--epochs", type=int, default=4)
p.add_argument("--minibatches", type=int, default=4)
p.add_argument("--lr", type=float, default=2.5e-4)
p.add_argument("--calls", type=int, default=3, help="compiled calls after the first")
p.add_argument("--seed", type=int, default=0)
p.add_argument("--threads", type=int, default=0, help="1: pin to one core")
args = p.parse_args()
if args.threads == 1:  # before jax is imported
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_cpu_multi_thread_eigen=false").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

GAMMA, GAE_LAMBDA, CLIP_EPS, ENT_COEF, VF_COEF, MAX_GRAD_NORM = 0.99, 0.95, 0.2, 0.01, 0.5, 0.5
NUM_UPDATES = args.steps // (args.num_envs * args.num_steps)
MINIBATCH = args.num_envs * args.num_steps // args.minibatches

# ---- CartPole-v1 (gymnax's CartPole: gymnasium's dynamics, 500-step limit) ----
G, M_CART, M_POLE, HALF_LEN, FORCE_MAG, TAU = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
TOTAL_MASS, POLEMASS_LEN = M_POLE + M_CART, M_POLE * HALF_LEN
X_LIMIT, THETA_LIMIT, MAX_STEPS = 2.4, 12 * 2 * np.pi / 360, 500


def env_reset(key):
    return jax.random.uniform(key, (4,), minval=-0.05, maxval=0.05), jnp.int32(0)


def env_step(key, state, action):
    """One step with auto-reset: (state', obs', reward, done)."""
    physics, t = state
    x, x_dot, theta, theta_dot = physics
    force = jnp.where(action == 1, FORCE_MAG, -FORCE_MAG)
    cos, sin = jnp.cos(theta), jnp.sin(theta)
    temp = (force + POLEMASS_LEN * theta_dot ** 2 * sin) / TOTAL_MASS
    theta_acc = (G * sin - cos * temp) / (HALF_LEN * (4.0 / 3.0 - M_POLE * cos ** 2 / TOTAL_MASS))
    x_acc = temp - POLEMASS_LEN * theta_acc * cos / TOTAL_MASS
    physics = jnp.stack([x + TAU * x_dot, x_dot + TAU * x_acc,
                         theta + TAU * theta_dot, theta_dot + TAU * theta_acc])
    t = t + 1
    done = ((jnp.abs(physics[0]) > X_LIMIT) | (jnp.abs(physics[2]) > THETA_LIMIT)
            | (t >= MAX_STEPS))
    fresh, fresh_t = env_reset(key)
    physics = jnp.where(done, fresh, physics)
    return (physics, jnp.where(done, fresh_t, t)), physics, 1.0, done


# ---- actor and critic MLPs (64-64 tanh, orthogonal init as PureJaxRL) ----
def mlp_init(key, sizes, last_scale):
    params = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        key, sub = jax.random.split(key)
        scale = last_scale if i == len(sizes) - 2 else np.sqrt(2)
        params.append((jax.nn.initializers.orthogonal(scale)(sub, (n_in, n_out)),
                       jnp.zeros(n_out)))
    return params


def mlp(params, x):
    for w, b in params[:-1]:
        x = jnp.tanh(x @ w + b)
    w, b = params[-1]
    return x @ w + b


def init_params(key):
    actor_key, critic_key = jax.random.split(key)
    return dict(actor=mlp_init(actor_key, [4, 64, 64, 2], 0.01),
                critic=mlp_init(critic_key, [4, 64, 64, 1], 1.0))


def ppo_loss(params, batch):
    obs, action, old_log_prob, advantage, target = batch
    logits = mlp(params["actor"], obs)
    log_probs = jax.nn.log_softmax(logits)
    log_prob = jnp.take_along_axis(log_probs, action[:, None], axis=-1)[:, 0]
    value = mlp(params["critic"], obs)[:, 0]
    value_loss = 0.5 * jnp.mean((value - target) ** 2)
    ratio = jnp.exp(log_prob - old_log_prob)
    advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
    actor_loss = -jnp.mean(jnp.minimum(ratio * advantage,
                                       jnp.clip(ratio, 1 - CLIP_EPS, 1 + CLIP_EPS) * advantage))
    entropy = -jnp.mean(jnp.sum(jnp.exp(log_probs) * log_probs, -1))
    return actor_loss + VF_COEF * value_loss - ENT_COEF * entropy


def make_train():
    schedule = lambda count: args.lr * (
        1.0 - (count // (args.minibatches * args.epochs)) / NUM_UPDATES)
    optimizer = optax.chain(optax.clip_by_global_norm(MAX_GRAD_NORM),
                            optax.adam(learning_rate=schedule, eps=1e-5))
    batched_reset = jax.vmap(env_reset)
    batched_step = jax.vmap(env_step)

    def train(key):
        key, init_key, reset_key = jax.random.split(key, 3)
        params = init_params(init_key)
        opt_state = optimizer.init(params)
        env_state = batched_reset(jax.random.split(reset_key, args.num_envs))
        obs = env_state[0]
        episode_return = jnp.zeros(args.num_envs)

        def update(carry, _):
            params, opt_state, env_state, obs, episode_return, key = carry

            def env_transition(carry, _):
                env_state, obs, episode_return, key = carry
                key, act_key, step_key = jax.random.split(key, 3)
                logits = mlp(params["actor"], obs)
                action = jax.random.categorical(act_key, logits)
                log_prob = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None],
                                               -1)[:, 0]
                value = mlp(params["critic"], obs)[:, 0]
                env_state, next_obs, reward, done = batched_step(
                    jax.random.split(step_key, args.num_envs), env_state, action)
                episode_return = episode_return + reward
                finished = jnp.where(done, episode_return, jnp.nan)
                episode_return = jnp.where(done, 0.0, episode_return)
                return ((env_state, next_obs, episode_return, key),
                        (obs, action, log_prob, value, reward, done, finished))

            (env_state, obs, episode_return, key), traj = jax.lax.scan(
                env_transition, (env_state, obs, episode_return, key), None, args.num_steps)
            t_obs, t_action, t_log_prob, t_value, t_reward, t_done, finished = traj
            last_value = mlp(params["critic"], obs)[:, 0]

            def gae(carry, step):  # PureJaxRL's: done ends the bootstrap
                advantage, next_value = carry
                done, value, reward = step
                delta = reward + GAMMA * next_value * (1 - done) - value
                advantage = delta + GAMMA * GAE_LAMBDA * (1 - done) * advantage
                return (advantage, value), advantage

            _, advantages = jax.lax.scan(gae, (jnp.zeros_like(last_value), last_value),
                                         (t_done, t_value, t_reward), reverse=True)
            targets = advantages + t_value
            flat = lambda x: x.reshape((-1,) + x.shape[2:])
            batch = tuple(map(flat, (t_obs, t_action, t_log_prob, advantages, targets)))

            def epoch(carry, _):
                params, opt_state, key = carry
                key, perm_key = jax.random.split(key)
                perm = jax.random.permutation(perm_key, args.num_envs * args.num_steps)
                minibatches = jax.tree_util.tree_map(
                    lambda x: x[perm].reshape((args.minibatches, MINIBATCH) + x.shape[1:]), batch)

                def minibatch_step(carry, minibatch):
                    params, opt_state = carry
                    grads = jax.grad(ppo_loss)(params, minibatch)
                    updates, opt_state = optimizer.update(grads, opt_state)
                    return (optax.apply_updates(params, updates), opt_state), None

                (params, opt_state), _ = jax.lax.scan(minibatch_step, (params, opt_state),
                                                      minibatches)
                return (params, opt_state, key), None

            (params, opt_state, key), _ = jax.lax.scan(epoch, (params, opt_state, key), None,
                                                       args.epochs)
            return ((params, opt_state, env_state, obs, episode_return, key),
                    jnp.nanmean(finished))

        _, returns = jax.lax.scan(update, (params, opt_state, env_state, obs, episode_return,
                                           key), None, NUM_UPDATES)
        return returns

    return jax.jit(train)


train = make_train()
times, returns = [], None
for call in range(1 + args.calls):
    start = time.perf_counter()
    returns = np.asarray(train(jax.random.PRNGKey(args.seed + call)))
    times.append(time.perf_counter() - start)
env_steps = NUM_UPDATES * args.num_envs * args.num_steps
print(json.dumps({
    "first_s": times[0], "second_s": statistics.median(times[1:]), "env_steps": env_steps,
    "updates": NUM_UPDATES * args.epochs * args.minibatches,
    "last_train_return": float(np.nanmean(returns[-10:])), "jax_version": jax.__version__}))
