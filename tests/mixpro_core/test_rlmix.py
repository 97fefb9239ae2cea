"""Pins RL-Mix (docs/methods.md, "R-Mix and RL-Mix"): R-Mix with the per-image quantile chosen by a PPO policy
(stable-baselines3); observation, reward, the mixing given the policy's choice, that PPO learns from the recorded
rewards, and its checkpoint state."""
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.registry import MODELS

import stable_baselines3  # noqa: F401  (the extra .[rlmix], installed by tools/setup.sh: a hard dependency of the
#                                        suite)

import classification.register_all  # noqa: F401  (registration)
from mixpro_core import MIXERS, RLMixer, build_mixer, build_schedule, random_partner, region_fractions, rmix, sample_beta
from mixpro_core.rlmix import observation, saliency_reward, threshold_choice_env
from mixpro_core.rmix import QUANTILES, _to_pixels, cell_saliency, input_saliency, salient_cells  # noqa: E402

def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def small_net(classes=5):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                         nn.Linear(32, classes))


def mixer(classes=5, **kw):
    return RLMixer(num_classes=classes, **kw)


def force_action(m: RLMixer, action: int):
    """Make the policy put all its probability on ``action`` (the last layer's bias dominates)."""
    net = m.agent.policy.action_net
    with torch.no_grad():
        net.weight.zero_()
        net.bias.fill_(-1e4)
        net.bias[action] = 1e4


def test_observation_is_pooled_saliency_and_class_probabilities():
    sal, logits = torch.rand(3, 16, 16), torch.randn(3, 5)
    obs = observation(sal, logits, obs_grid=4)
    assert obs.shape == (3, 16 + 5) and obs.dtype == torch.float32
    torch.testing.assert_close(obs[:, :16], cell_saliency(sal, 4).flatten(1) * 16)
    torch.testing.assert_close(obs[:, :16].mean(1), torch.ones(3))
    torch.testing.assert_close(obs[:, 16:], logits.softmax(1))


def test_reward_is_cosine_similarity_of_saliency_maps():
    a = torch.zeros(2, 4, 4)
    a[0, 0, 0] = a[1, :2] = 1.0
    b = a.clone()
    b[1] = 0
    b[1, 3, 3] = 2.0
    torch.testing.assert_close(saliency_reward(a, 3 * a), torch.ones(2))
    torch.testing.assert_close(saliency_reward(a, b), torch.tensor([1.0, 0.0]))


@pytest.mark.parametrize("action", [0, 4, 9])
def test_mixing_is_rmix_at_the_policy_quantile(action):
    """Given the policy's choice q, the batch is exactly R-Mix with that q (same partner and λ from the generator), and
    λ_eff = A_eq·λ + A_a with the A's the pixel fractions of the salient maps."""
    net, m = small_net(), mixer(learn=False, grid=2)
    force_action(m, action)
    x, y = torch.rand(6, 3, 16, 16), torch.tensor([0, 1, 2, 3, 4, 0])
    got = m(x, y, net, gen(3))
    want = rmix(x, y, net, 1.0, 2, gen(3), num_classes=5, quantiles=(QUANTILES[action],))
    for field in ("images", "partner", "lam_area", "pixel_mask"):
        torch.testing.assert_close(getattr(got, field), getattr(want, field))
    assert got.kind == "rmix" and got.stats["rlmix_q"].item() == pytest.approx(QUANTILES[action])
    g = gen(3)
    partner, lam = random_partner(6, g), sample_beta(1.0, g)
    salient = salient_cells(cell_saliency(input_saliency(net, x, y), 2), torch.full((6,), QUANTILES[action]))
    own = _to_pixels(salient, 16, 16)
    a_eq, a_own, a_partner = region_fractions(own, own[partner])
    assert torch.equal(got.partner, partner)
    torch.testing.assert_close(got.lam_area, a_eq * lam + a_own)
    torch.testing.assert_close(a_eq + a_own + a_partner, torch.ones(6))


def test_q_zero_and_top_quantile_masks():
    """q = 0 marks every cell salient (all pixels agree → pure blend); q = 0.99 keeps the top cell only."""
    net, m = small_net(), mixer(learn=False, grid=4)
    x, y = torch.rand(4, 3, 16, 16), torch.tensor([0, 1, 2, 3])
    force_action(m, 0)
    batch = m(x, y, net, gen(1))
    assert torch.allclose(batch.pixel_mask, batch.pixel_mask.flatten()[0].expand_as(batch.pixel_mask))
    force_action(m, 9)
    sal = input_saliency(net, x, y)
    batch = m(x, y, net, gen(1))
    top = salient_cells(cell_saliency(sal, 4), torch.full((4,), QUANTILES[9]))
    assert top.flatten(1).sum(1).tolist() == [1, 1, 1, 1]
    own = _to_pixels(top, 16, 16)
    disagree = own != own[batch.partner]
    torch.testing.assert_close(batch.pixel_mask[disagree], own[disagree].float())


def test_learning_reward_reaches_the_policy_and_leaves_the_model_alone():
    """learn=True: one more saliency pass on the mixed batch gives rewards in [0, 1]; a full buffer triggers a PPO
    update; the classifier's parameters get no gradients and its global torch RNG is untouched."""
    net, m = small_net(), mixer(n_steps=8, batch_size=8)
    x, y = torch.rand(8, 3, 16, 16), torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])
    before = [p.detach().clone() for p in m.agent.policy.parameters()]
    rng = torch.get_rng_state()
    batch = m(x, y, net, gen(0))
    assert torch.equal(rng, torch.get_rng_state())
    assert m.updates == 1 and 0.0 <= batch.stats["rlmix_reward"].item() <= 1.0
    assert any(not torch.equal(b, p) for b, p in zip(before, m.agent.policy.parameters()))
    assert all(p.grad is None for p in net.parameters())


def test_ppo_learns_the_best_threshold_from_recorded_rewards():
    """A bandit whose reward is 1 for q-index 7 only: the recorded transitions train the policy to choose it."""
    m = mixer(n_steps=256, batch_size=64, learning_rate=3e-3, ent_coef=0.0)
    g = gen(0)
    obs = torch.rand(256, 16 + 5)
    for _ in range(15):
        actions, values, log_probs = m.act(obs, g)
        m.record(obs, actions, values, log_probs, (actions == 7).float())
    assert m.updates == 15
    assert m.action_probs(obs)[:, 7].mean() > 0.9


def test_actions_come_from_the_generator():
    m = mixer()
    obs = torch.rand(64, 21)
    a1, v1, l1 = m.act(obs, gen(5))
    a2, v2, l2 = m.act(obs, gen(5))
    assert torch.equal(a1, a2) and torch.equal(l1, l2) and torch.equal(v1, v2)
    assert not torch.equal(a1, m.act(obs, gen(6))[0])


def test_policy_state_travels_in_the_classifier_checkpoint():
    """The policy is not a parameter of the classifier (its optimiser must not step it) but is in its state dict."""
    cfg = dict(type="MixClassifier", num_classes=10, mix=[dict(type="rlmix", prob=1.0, seed=0)],
               backbone=dict(type="tiny_vit", img_size=16, patch_size=4, embed_dim=16, depth=2, num_heads=2))
    a = MODELS.build(cfg)
    b = MODELS.build({**cfg, "mix": [dict(type="rlmix", prob=1.0, seed=1)]})
    ma, mb = a.method.mixer.find("rlmix"), b.method.mixer.find("rlmix")
    assert MIXERS.get("rlmix") is RLMixer and ma.num_classes == 10, "num_classes reaches it from the classifier"
    obs = torch.rand(32, 26)
    assert not torch.allclose(ma.action_probs(obs), mb.action_probs(obs))
    assert not any(n.startswith("method.mixer") for n, _ in a.named_parameters())
    ma.updates = 3
    state = a.state_dict()
    assert "method.mixer.mixers.0._extra_state" in state
    b.load_state_dict(state)
    torch.testing.assert_close(ma.action_probs(obs), mb.action_probs(obs))
    assert mb.updates == 3
    loss = a(torch.rand(4, 1, 16, 16), torch.tensor([0, 1, 2, 3]), mode="loss")
    assert set(loss) == {"loss", "rlmix_q", "rlmix_reward"}


def test_rlmix_falls_back_to_the_other_schedule_entries():
    net = small_net()
    schedule = build_schedule([dict(type="rlmix", prob=0.5, learn=False), dict(type="mixup", prob=0.5)],
                              dict(num_classes=5))
    x, y = torch.rand(4, 3, 16, 16), torch.tensor([0, 1, 2, 3])
    batches = [schedule(x, y, net, gen(s)) for s in range(10)]
    assert {b.kind for b in batches} == {"rmix", "mixup"}
    assert all(("rlmix_q" in b.stats) == (b.kind == "rmix") for b in batches)


def test_threshold_env_is_a_valid_gymnasium_env():
    from stable_baselines3.common.env_checker import check_env
    env = threshold_choice_env(np.random.rand(5, 21), np.random.rand(5, len(QUANTILES)))
    check_env(env)
    obs, _ = env.reset(seed=0)
    _, reward, terminated, truncated, _ = env.step(3)
    row = int(np.flatnonzero((env.contexts == obs).all(1))[0])
    assert terminated and not truncated and reward == pytest.approx(float(env.rewards[row, 3]))
    with pytest.raises(ValueError, match="same N"):
        threshold_choice_env(np.zeros((2, 3)), np.zeros((3, 10)))


def test_errors(monkeypatch):
    with pytest.raises(ValueError, match="alpha"):
        mixer(alpha=0.0)
    with pytest.raises(ValueError, match=r"mixer \(rlmix\): unknown key\(s\) \['prob'\]"):
        build_mixer(dict(type="rlmix", prob=1.0), dict(num_classes=5))  # prob belongs to the schedule entry
    with pytest.raises(ValueError, match="n_steps"):
        mixer(n_steps=16, batch_size=64)
    monkeypatch.setitem(sys.modules, "stable_baselines3", None)
    with pytest.raises(ImportError, match=r"\.\[rlmix\]"):
        mixer()
