"""RL-Mix (Luu et al., AAAI 2023 Practical-DL workshop): R-Mix whose per-image saliency quantile q is chosen by a PPO
policy (stable-baselines3) instead of drawn uniformly (docs/methods.md, "R-Mix and RL-Mix").

:class:`RLMixer` (registered as 'rlmix'; an ``nn.Module`` whose ``get_extra_state`` carries the policy) is called as
every mixer, ``(images, labels, model, generator) -> MixBatch``, and mixes exactly as R-Mix
(:func:`~mixpro_core.rmix.rmix_from_cells`, λ_eff in ``lam_area``). Each image is one step of a one-step bandit:
observation (``obs_grid² + K``,) by :func:`observation` (pooled clean saliency scaled to mean 1, then the clean
softmax), action an index into :data:`~mixpro_core.rmix.QUANTILES`, reward :func:`saliency_reward` (cosine similarity
of the clean and mixed pixel saliency). Actions are sampled from the step's generator; PPO updates every ``n_steps``
transitions; the policy is per process. Needs the optional extra ``pip install .[rlmix]``: importing works without
it, building an :class:`RLMixer` raises ImportError naming the extra.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .mixing import MixBatch, random_partner, sample_beta
from .registry import MIXERS
from .rmix import (GRIDS, QUANTILES, _check_labels, cell_saliency, check_mixer_args, input_saliency, rmix_from_cells,
                   salient_cells)

__all__ = ["observation", "saliency_reward", "soft_targets", "threshold_choice_env", "RLMixer"]

INSTALL_HINT = "RL-Mix needs stable-baselines3 and gymnasium: pip install '.[rlmix]'"


def _import_rl():
    try:
        import gymnasium
        import stable_baselines3
    except ImportError as err:
        raise ImportError(f"{INSTALL_HINT} ({err})") from None
    return gymnasium, stable_baselines3


def observation(saliency: torch.Tensor, logits: torch.Tensor, obs_grid: int = 4) -> torch.Tensor:
    """RL-Mix observation (B, obs_grid² + K) float32: pixel saliency (B,H,W) pooled to ``obs_grid²`` cells (mean 1 per
    image), then softmax(logits (B,K))."""
    cells = cell_saliency(saliency.float(), obs_grid).flatten(1) * obs_grid ** 2
    return torch.cat([cells, logits.float().softmax(dim=1)], dim=1)


def saliency_reward(clean: torch.Tensor, mixed: torch.Tensor) -> torch.Tensor:
    """(B,) cosine similarity of the clean and the mixed pixel saliency maps (B,H,W), in [0, 1] (saliency ≥ 0)."""
    return F.cosine_similarity(clean.flatten(1).float(), mixed.flatten(1).float(), dim=1, eps=1e-12)


def soft_targets(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B,) class ids or (B,K) soft targets → (B,K) float."""
    return F.one_hot(labels.long(), num_classes).float() if labels.dim() == 1 else labels.float()


def _threshold_env_class():
    gymnasium, _ = _import_rl()

    class ThresholdChoiceEnv(gymnasium.Env):
        """One-step contextual bandit of the threshold choice: ``reset`` shows one of ``contexts`` (N, D) at random,
        ``step(a)`` pays ``rewards[n, a]`` (N, A) and ends the episode. RLMixer builds its PPO agent on this env's
        spaces (one zero context) and feeds the agent's rollout buffer from training batches; with a recorded table
        the env replays the bandit offline (e.g. ``PPO('MlpPolicy', env).learn(...)``)."""

        metadata = {"render_modes": []}

        def __init__(self, contexts: np.ndarray, rewards: np.ndarray):
            contexts, rewards = np.asarray(contexts, np.float32), np.asarray(rewards, np.float32)
            if contexts.ndim != 2 or rewards.ndim != 2 or len(contexts) != len(rewards) or not len(contexts):
                raise ValueError(f"contexts (N,D) and rewards (N,A) with the same N > 0 expected, got "
                                 f"{contexts.shape} and {rewards.shape}")
            self.contexts, self.rewards = contexts, rewards
            self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (contexts.shape[1],), np.float32)
            self.action_space = gymnasium.spaces.Discrete(rewards.shape[1])
            self._index = 0

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self._index = int(self.np_random.integers(len(self.contexts)))
            return self.contexts[self._index], {}

        def step(self, action):
            reward = float(self.rewards[self._index, int(action)])
            return self.contexts[self._index], reward, True, False, {}

    return ThresholdChoiceEnv


def threshold_choice_env(contexts: np.ndarray, rewards: np.ndarray):
    """A ``ThresholdChoiceEnv`` (gymnasium) over ``contexts`` (N,D) and ``rewards`` (N,A) (see its docstring)."""
    return _threshold_env_class()(contexts, rewards)


@MIXERS.register("rlmix")
class RLMixer(nn.Module):
    """Model-aware mixer registered as 'rlmix': ``mixer(images, labels, model, generator) -> MixBatch`` RL-Mixes the
    batch. In a schedule (``mix=[dict(type='rlmix', prob=p, ...), ...]``) the other entries are the fallback.

    An ``nn.Module`` without parameters: the PPO agent lives outside the module tree (the classifier's optimiser must
    not see the policy's weights); the policy and its optimiser state travel in ``get_extra_state`` /
    ``set_extra_state``, i.e. in the classifier's checkpoints. The returned batch's ``stats`` hold its mean q and,
    when learning, its mean reward (``rlmix_q``, ``rlmix_reward``: tensors for the training log).

    Args:
        alpha: λ ~ Beta(α, α) per batch. grid: fixed g of the mixing cells (None: drawn from {2, 4} per batch).
        obs_grid: cells per side of the saliency in the observation.
        learn: update the policy from the rewards (costs one more input-gradient pass per batch); False acts only.
        n_steps, batch_size, n_epochs, learning_rate, ent_coef, net_arch: PPO settings (transitions per update,
            minibatch, epochs per update, Adam lr, entropy bonus, hidden layers of the policy and value nets).
        device: device of the policy ('cpu' — it is a small MLP — or 'auto').
        seed: seed of the policy's initial weights.
    """

    name = "rlmix"

    def __init__(self, num_classes: int, alpha: float = 1.0, grid: Optional[int] = None, obs_grid: int = 4,
                 learn: bool = True, n_steps: int = 1024, batch_size: int = 256, n_epochs: int = 4,
                 learning_rate: float = 3e-4, ent_coef: float = 0.01, net_arch=(64, 64), device: str = "cpu",
                 seed: int = 0):
        super().__init__()
        check_mixer_args("RL-Mix", alpha, grid)
        if not num_classes or num_classes < 2:
            raise ValueError(f"RL-Mix needs num_classes ≥ 2 (the observation holds the class probabilities), "
                             f"got {num_classes}")
        if n_steps < batch_size:
            raise ValueError(f"RL-Mix n_steps ({n_steps}) must hold at least one PPO minibatch ({batch_size})")
        _import_rl()
        from stable_baselines3 import PPO
        from stable_baselines3.common.logger import Logger

        self.alpha, self.grid = alpha, grid
        self.num_classes, self.obs_grid, self.learn = num_classes, obs_grid, learn
        obs_dim = obs_grid ** 2 + num_classes
        env = threshold_choice_env(np.zeros((1, obs_dim), np.float32), np.zeros((1, len(QUANTILES)), np.float32))
        # PPO(seed=...) would reseed the global random/numpy/torch generators of the training run: seed only the
        # policy's initialisation, in a forked torch RNG
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            agent = PPO("MlpPolicy", env, n_steps=n_steps, batch_size=batch_size, n_epochs=n_epochs,
                        learning_rate=learning_rate, ent_coef=ent_coef, gamma=0.0, gae_lambda=1.0, device=device,
                        policy_kwargs=dict(net_arch=list(net_arch)), verbose=0)
        agent.set_logger(Logger(folder=None, output_formats=[]))
        object.__setattr__(self, "agent", agent)  # outside the module tree: not a parameter of the classifier
        self.updates = 0

    # ------------------------------------------------------------------------------------------------- policy
    def act(self, obs: torch.Tensor, generator: Optional[torch.Generator] = None):
        """Sample one action per row of ``obs`` (B,D) from the policy with ``generator`` (CPU).
        Returns (actions (B,) long, values (B,), log_probs (B,)) on the CPU."""
        policy = self.agent.policy
        with torch.no_grad():
            x = obs.to(policy.device, torch.float32)
            dist = policy.get_distribution(x)
            probs = dist.distribution.probs.float().cpu()
            actions = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            log_probs = dist.log_prob(actions.to(policy.device)).cpu()
            values = policy.predict_values(x).squeeze(1).cpu()
        return actions, values, log_probs

    def record(self, obs: torch.Tensor, actions: torch.Tensor, values: torch.Tensor, log_probs: torch.Tensor,
               rewards: torch.Tensor) -> None:
        """Append B one-step episodes to the rollout buffer; run a PPO update each time it is full."""
        buffer = self.agent.rollout_buffer
        obs_np = obs.detach().float().cpu().numpy()
        act_np = actions.cpu().numpy()
        rew_np = rewards.detach().float().cpu().numpy()
        start = np.ones(1, np.float32)
        for i in range(len(obs_np)):
            buffer.add(obs_np[i:i + 1], act_np[i:i + 1], rew_np[i:i + 1], start, values[i:i + 1], log_probs[i:i + 1])
            if buffer.full:
                buffer.compute_returns_and_advantage(last_values=torch.zeros(1), dones=np.ones(1, np.float32))
                # the update runs inside the classifier's training step: full precision, gradients on
                with torch.autocast(self.agent.device.type, enabled=False), torch.enable_grad():
                    self.agent.train()
                buffer.reset()
                self.updates += 1

    def action_probs(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, len(QUANTILES)) the policy's probabilities of each q."""
        with torch.no_grad():
            x = obs.to(self.agent.policy.device, torch.float32)
            return self.agent.policy.get_distribution(x).distribution.probs.float().cpu()

    # -------------------------------------------------------------------------------------------------- mixing
    def forward(self, images: torch.Tensor, labels: torch.Tensor, model: nn.Module,
                generator: Optional[torch.Generator] = None) -> MixBatch:
        """RL-Mix one batch: R-Mix (MixBatch kind 'rmix') with q = QUANTILES[policy action] per image; learns
        when ``learn``."""
        if images.dim() != 4:
            raise ValueError(f"images must be (B,C,H,W), got shape {tuple(images.shape)}")
        b, device = images.shape[0], images.device
        _check_labels(labels, b, self.num_classes)
        gen_device = generator.device if generator is not None else device
        partner = random_partner(b, generator, device)
        lam = sample_beta(self.alpha, generator)
        grid = self.grid
        if grid is None:
            grid = GRIDS[int(torch.randint(len(GRIDS), (), generator=generator, device=gen_device))]
        saliency, logits = input_saliency(model, images, labels, return_logits=True)
        obs = observation(saliency, logits, self.obs_grid)
        act_generator = generator if generator is None or generator.device.type == "cpu" else None
        actions, values, log_probs = self.act(obs, act_generator)
        q = torch.tensor(QUANTILES, device=device)[actions.to(device)]
        batch = rmix_from_cells(images, salient_cells(cell_saliency(saliency, grid), q), partner, lam)
        batch.stats["rlmix_q"] = q.float().mean().detach()
        if self.learn:
            targets = soft_targets(labels.to(device), self.num_classes)
            lam_eff = batch.lam_area[:, None]
            mixed_targets = lam_eff * targets + (1 - lam_eff) * targets[partner]
            rewards = saliency_reward(saliency, input_saliency(model, batch.images, mixed_targets))
            self.record(obs, actions, values, log_probs, rewards)
            batch.stats["rlmix_reward"] = rewards.mean().detach()
        return batch

    # ------------------------------------------------------------------------------------------ checkpointing
    def get_extra_state(self) -> dict:
        """The policy's weights and optimiser state and the update count (the rollout buffer is not kept: a
        resumed run starts a fresh buffer)."""
        policy = self.agent.policy
        return {"policy": policy.state_dict(), "optimizer": policy.optimizer.state_dict(), "updates": self.updates}

    def set_extra_state(self, state: dict) -> None:
        if not isinstance(state, dict) or "policy" not in state:
            raise ValueError("RLMixer state must be a dict with the policy's state_dict under 'policy'")
        self.agent.policy.load_state_dict(state["policy"])
        if state.get("optimizer"):
            self.agent.policy.optimizer.load_state_dict(state["optimizer"])
        self.updates = int(state.get("updates", 0))
        self.agent.rollout_buffer.reset()

    def extra_repr(self) -> str:
        return (f"alpha={self.alpha}, grid={self.grid}, obs_grid={self.obs_grid}, learn={self.learn}, "
                f"n_steps={self.agent.n_steps}")
