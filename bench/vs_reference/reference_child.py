"""
One measurement of the official SASHA code (github.com/coglabiisc/SASHA), run through its own
modules: `architecture/transformer.py::HAFED`, `modules/fglobal_mlp.py::FGlobal`,
`rl_algorithms/ppo.py::{Actor, Critic, Agent}` and `envs/WSI_cosine_env.py::WSICosineObservationEnv`.

The driver (`run.py`) starts this script once per measurement, with the thread count already set
in the environment (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS). It prints one JSON
line: the timed seconds, the process CPU seconds, the peak RSS of the process and a few values
that let the driver check both implementations computed the same thing.

What each task times (the loops the official scripts run, written out here because the
scripts themselves import training-only packages: tensorboard, timm, sklearn, wandb):
- hafed-train: one optimisation step of `step3_WSI_classification_HAFED.py::train_one_epoch`
  (the learning-rate update, the forward pass in training mode, the four loss terms, backward,
  AdamW step, `.item()` of the losses);
- hafed-infer: the forward pass of `evaluate` (eval mode, no grad) and the softmax;
- episode: the per-slide body of `step7_inference.py::evaluate_policy` (a new env, greedy actions
  with the chosen patches masked, `env.step` with f_S and HAFED, the final `classify`);
- ppo: the update of `step6_rl_training.py::train_one_epoch` after the rollout: V_old, GAE, the
  critic targets, the advantage normalisation and `num_epochs_on_single_roll_out` = 4 epochs of
  both networks (clip_grad_norm_ 0.5, AdamW lr 1e-5, wd 1e-4).

Usage: python3 reference_child.py TASK --work DIR --reference REPO --n N [--reps K] [--threads T]
"""
import argparse
import json
import math
import os
import resource
import sys
import time
from types import SimpleNamespace

import numpy as np


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument('task', choices=['prepare', 'gemm', 'hafed-train', 'hafed-infer', 'episode', 'ppo'])
    p.add_argument('--work', required=True, help='directory with the inputs written by run.py')
    p.add_argument('--reference', required=True, help='checkout of github.com/coglabiisc/SASHA')
    p.add_argument('--n', type=int, default=0)
    p.add_argument('--reps', type=int, default=1, help='timed repetitions after one warm-up')
    p.add_argument('--threads', type=int, default=1)
    return p.parse_args()


def read_array(work, name):
    meta = json.load(open(os.path.join(work, name + '.json')))
    data = np.fromfile(os.path.join(work, name + '.bin'), dtype='<f4')
    return data.reshape(meta['shape'])


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main():
    args = parse_args()
    import torch  # after the thread variables are set by the driver

    torch.set_num_threads(args.threads)
    sys.path.insert(0, args.reference)
    from architecture.transformer import HAFED
    from envs.WSI_cosine_env import WSICosineObservationEnv
    from modules.fglobal_mlp import FGlobal
    from rl_algorithms.ppo import Actor, Agent, Critic

    work = args.work
    shared = json.load(open(os.path.join(work, 'shared.json')))
    d = shared['dim']
    # The configs of the official code (CAMELYON16 column): config/camelyon_config.yml,
    # config/camelyon_rl_config.yml; frac_visit 0.2 and tau 0.95 as in the inference configs.
    conf = SimpleNamespace(D_feat=d, D_inner=128, dim_reduction=False, n_class=2, n_token=5,
                           n_token_1=1, n_token_2=5, n_masked_patch_1=10, n_masked_patch_2=20,
                           mask_drop=0.24, lr=4.14e-4, wd=1e-5, min_lr=0.0, warmup_epoch=0,
                           train_epoch=50, device=torch.device('cpu'), frac_visit=shared['frac'],
                           cosine_threshold=shared['tau'], only_ce_as_reward=True, gamma=1.0,
                           lam=0.94, clip=0.2, entropy_coef=0.001, use_entropy_loss=True,
                           max_grad_norm=0.5, num_epochs_on_single_roll_out=4, num_envs=2)

    def load_state(module, prefix):
        state = {}
        for key, value in module.state_dict().items():
            arr = read_array(work, f'weights/{prefix}{key}')
            state[key] = torch.from_numpy(arr.copy()).reshape(value.shape)
        module.load_state_dict(state)

    def build_hafed():
        hafed = HAFED(conf, n_token_1=conf.n_token_1, n_token_2=conf.n_token_2,
                      n_masked_patch_1=conf.n_masked_patch_1, n_masked_patch_2=conf.n_masked_patch_2,
                      mask_drop=conf.mask_drop)
        load_state(hafed, 'hafed.')
        return hafed

    out = {'task': args.task, 'n': args.n, 'threads': torch.get_num_threads(), 'seconds': [], 'cpuSeconds': []}

    if args.task == 'prepare':
        # The initial weights of both implementations: the official modules' own initialisation
        # (PyTorch nn.Linear defaults), seeded, written as float32 arrays by state-dict key.
        torch.manual_seed(shared['seed'])
        modules = {
            'hafed.': HAFED(conf, n_token_1=conf.n_token_1, n_token_2=conf.n_token_2, n_masked_patch_1=conf.n_masked_patch_1,
                            n_masked_patch_2=conf.n_masked_patch_2, mask_drop=conf.mask_drop),
            'fglobal.': FGlobal(ip_dim=3 * d, op_dim=d),
            'agent.': Agent(Actor(conf=conf), Critic(conf=conf), conf),
        }
        os.makedirs(os.path.join(work, 'weights'), exist_ok=True)
        count = 0
        for prefix, module in modules.items():
            for key, value in module.state_dict().items():
                base = os.path.join(work, 'weights', prefix + key)
                value.detach().numpy().astype('<f4').tofile(base + '.bin')
                json.dump({'shape': list(value.shape)}, open(base + '.json', 'w'))
                count += 1
        out['tensors'] = count
        out['torch'] = torch.__version__
        out['blas'] = sorted({line.split()[-1] for line in open('/proc/self/maps') if 'blas' in line.lower()})
        print(json.dumps(out))
        return

    torch.manual_seed(0)

    if args.task == 'gemm':
        # HAFED stage 1's two products at N patches (R = N k rows): the gate pre-activations
        # U W, [R, d] x [d, 2 D], and the kernel gradient U^T dH, [d, R] x [R, 2 D]
        gen = torch.Generator().manual_seed(shared['seed'])
        rows = args.n * shared['k']
        x = torch.randn(rows, d, generator=gen)
        w = torch.randn(d, 256, generator=gen)
        g = torch.randn(rows, 256, generator=gen)

        def products():
            y = x @ w
            dw = x.t() @ g
            return float(y[0, 0] + dw[0, 0])

        products()
        for _ in range(args.reps):
            c0 = cpu_seconds()
            t0 = time.perf_counter()
            products()
            out['seconds'].append(time.perf_counter() - t0)
            out['cpuSeconds'].append(cpu_seconds() - c0)
        out['flops'] = 2 * 2 * rows * d * 256

    elif args.task in ('hafed-train', 'hafed-infer'):
        hafed = build_hafed()
        u = torch.from_numpy(read_array(work, f'u_{args.n}'))[None]  # [1, N, k, d]
        warm = torch.from_numpy(read_array(work, 'u_warmup'))[None]
        label = torch.tensor([1])
        criterion = torch.nn.CrossEntropyLoss()
        if args.task == 'hafed-train':
            hafed.train()
            optimizer = torch.optim.AdamW(filter(lambda p: p.requires_grad, hafed.parameters()), lr=conf.lr, weight_decay=conf.wd)
            step_count = [0]

            def step(x):
                # the learning rate of utils/utils.py::adjust_learning_rate (half cosine, per iteration)
                epoch = step_count[0] / 100.0
                lr = conf.min_lr + (conf.lr - conf.min_lr) * 0.5 * (1.0 + math.cos(math.pi * epoch / conf.train_epoch))
                for group in optimizer.param_groups:
                    group['lr'] = lr
                step_count[0] += 1
                image_patches = x.to(conf.device, dtype=torch.float32)
                sub_preds, slide_preds, attn_1, attn_2, _features, _attn_raw = hafed(image_patches)
                loss1 = criterion(slide_preds, label)
                loss0 = criterion(sub_preds, label.repeat_interleave(conf.n_token_2))
                diff_loss_1 = torch.tensor(0.0)
                diff_loss_2 = torch.tensor(0.0)
                m2 = conf.n_token_2
                for i in range(m2):
                    for j in range(i + 1, m2):
                        diff_loss_2 = diff_loss_2 + torch.cosine_similarity(attn_2[:, i], attn_2[:, j], dim=-1).mean() / (m2 * (m2 - 1) / 2)
                loss = diff_loss_1 + diff_loss_2 + loss0 + loss1
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                return [loss0.item(), (diff_loss_1 + diff_loss_2).item(), loss1.item()]
        else:
            hafed.eval()

            def step(x):
                with torch.no_grad():
                    image_patches = x.to(conf.device, dtype=torch.float32)
                    _sub, slide_preds, *_ = hafed(image_patches)
                    return torch.softmax(slide_preds, dim=-1)[0].tolist()

        step(warm)
        for _ in range(args.reps):
            c0 = cpu_seconds()
            t0 = time.perf_counter()
            value = step(u)
            out['seconds'].append(time.perf_counter() - t0)
            out['cpuSeconds'].append(cpu_seconds() - c0)
        out['check'] = value

    elif args.task == 'episode':
        hafed = build_hafed()
        hafed.eval()
        fglobal = FGlobal(ip_dim=3 * d, op_dim=d)
        load_state(fglobal, 'fglobal.')
        fglobal.eval()
        agent = Agent(Actor(conf=conf), Critic(conf=conf), conf)
        load_state(agent, 'agent.')
        agent.eval()
        label = torch.tensor([1])

        def episode(z, v):
            # step7_inference.py::evaluate_policy, for one slide
            with torch.no_grad():
                state = z[None].clone()
                env = WSICosineObservationEnv(lr_features=state, hr_features=v, label=label, conf=conf)
                visited = []
                done = False
                while not done:
                    action, _, _ = agent.get_action(state, visited, is_eval=True)
                    state, _reward, done = env.step(action=action, state_update_net=fglobal, classifier_net=hafed, device=conf.device)
                    visited.append(action.item())
                slide_preds, _attn = hafed.classify(state)
                return visited, torch.softmax(slide_preds, dim=-1)[0].tolist()

        # warm-up: one episode on a slide of min(N, 1000) patches (the same for both implementations)
        warm_tag = str(min(args.n, 1000)) if os.path.exists(os.path.join(work, f'z_{min(args.n, 1000)}.bin')) else 'warmup'
        wz = torch.from_numpy(read_array(work, f'z_{warm_tag}'))
        wv = torch.from_numpy(read_array(work, f'v_{warm_tag}'))
        episode(wz, wv)
        z = torch.from_numpy(read_array(work, f'z_{args.n}'))
        v = torch.from_numpy(read_array(work, f'v_{args.n}'))
        for _ in range(args.reps):
            c0 = cpu_seconds()
            t0 = time.perf_counter()
            actions, probs = episode(z, v)
            out['seconds'].append(time.perf_counter() - t0)
            out['cpuSeconds'].append(cpu_seconds() - c0)
        out['actions'] = actions
        out['check'] = probs

    else:  # ppo
        agent = Agent(Actor(conf=conf), Critic(conf=conf), conf)
        load_state(agent, 'agent.')
        agent.train()

        def load_rollout(tag):
            # The rollout as step6 stores it: batch_obs [2T, N, d] (the state before each action),
            # the actions, their masked log-probabilities from the rollout, rewards and dones.
            meta = json.load(open(os.path.join(work, f'episodes_{tag}.json')))
            values = np.fromfile(os.path.join(work, f'episodes_{tag}.bin'), dtype='<f4')
            z = read_array(work, f'z_{tag}')
            n = z.shape[0]
            obs, acts, logps, rews, dones = [], [], [], [], []
            offset = 0
            for ep in meta['episodes']:
                s = torch.from_numpy(z.copy())
                T = len(ep['actions'])
                for t in range(T):
                    obs.append(s.clone())
                    rows = ep['changedRows'][t]
                    k = len(rows)
                    new = torch.from_numpy(values[offset:offset + k * d].reshape(k, d).copy())
                    offset += k * d
                    s[rows] = new
                    acts.append(ep['actions'][t])
                    logps.append(ep['logProbs'][t])
                    rews.append(ep['rewards'][t])
                    dones.append(t == T - 1)
            del z
            return (torch.stack(obs), torch.tensor(acts, dtype=torch.float), torch.tensor(logps, dtype=torch.float),
                    np.array(rews, dtype=np.float64).reshape(len(meta['episodes']), -1),
                    np.array(dones).reshape(len(meta['episodes']), -1), n)

        def fresh_optimizers():
            actor = torch.optim.AdamW(filter(lambda p: p.requires_grad, agent.actor.parameters()), lr=1e-5, weight_decay=1e-4)
            critic = torch.optim.AdamW(filter(lambda p: p.requires_grad, agent.critic.parameters()), lr=1e-5, weight_decay=1e-4)
            return actor, critic

        def gae(rewards, values, episode_ends, gamma, lam):
            # step6_rl_training.py::gae: bootstrap 0 after the last step, reset at episode ends
            notdone = 1 - episode_ends
            E, T = rewards.shape
            running = np.zeros((E,))
            adv = np.zeros((E, T))
            for t in reversed(range(T)):
                nxt = values[:, t + 1] if t + 1 < T else 0.0
                delta = rewards[:, t] + gamma * nxt * notdone[:, t] - values[:, t]
                running = delta + gamma * lam * notdone[:, t] * running
                adv[:, t] = running
            return adv

        def update(batch_obs, batch_acts, batch_log_probs, rews, dones, optimizers):
            actor_optimizer, critic_optimizer = optimizers
            with torch.no_grad():
                V_old, _, _ = agent.evaluate(batch_obs, batch_acts)
                A = gae(rews, V_old.view(conf.num_envs, -1).cpu().numpy(), dones, conf.gamma, conf.lam)
                A = torch.tensor(A, dtype=torch.float).flatten()
                returns = A + V_old.detach().flatten()
                A = (A - A.mean()) / (A.std() + 1e-8)
            losses = []
            for _ in range(conf.num_epochs_on_single_roll_out):
                V, logp, entropy = agent.evaluate(batch_obs, batch_acts)
                ratios = torch.exp(logp - batch_log_probs)
                surr1 = ratios * A
                surr2 = torch.clamp(ratios, 1 - conf.clip, 1 + conf.clip) * A
                actor_loss = (-torch.min(surr1, surr2)).mean()
                critic_loss = torch.nn.MSELoss()(V.flatten(), returns)
                actor_loss = actor_loss - conf.entropy_coef * entropy.mean()
                actor_optimizer.zero_grad()
                actor_loss.backward()
                torch.nn.utils.clip_grad_norm_(agent.actor.parameters(), conf.max_grad_norm)
                actor_optimizer.step()
                critic_optimizer.zero_grad()
                critic_loss.backward()
                torch.nn.utils.clip_grad_norm_(agent.critic.parameters(), conf.max_grad_norm)
                critic_optimizer.step()
                losses.append([actor_loss.item(), critic_loss.item()])
            return V_old.tolist(), losses

        update(*load_rollout('warmup')[:5], fresh_optimizers())
        rollout = load_rollout(str(args.n))
        out['numSamples'] = int(rollout[0].shape[0])
        for _ in range(args.reps):
            # every repetition starts from the shared initial weights and fresh optimisers
            load_state(agent, 'agent.')
            optimizers = fresh_optimizers()
            c0 = cpu_seconds()
            t0 = time.perf_counter()
            v_old, losses = update(*rollout[:5], optimizers)
            out['seconds'].append(time.perf_counter() - t0)
            out['cpuSeconds'].append(cpu_seconds() - c0)
        out['oldValues'] = v_old
        out['check'] = losses

    out['maxRssBytes'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(out))


if __name__ == '__main__':
    main()
