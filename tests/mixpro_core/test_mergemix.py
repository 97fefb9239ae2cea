"""MergeMix (docs/methods.md, "MergeMix"): the ToMe schedule, bipartite merging against an explicit loop version, the
ToMe attention pass against a plain attention computation, the top-k mask and the partner."""
import pytest
import timm
import torch

from mixpro_core.mergemix import (bipartite_merge, derangement, mergemix_batch, tome_attention_pass, tome_schedule,
                                  top_k_mask)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_tome_schedule_matches_the_official_configs():
    # the official parse_r / check_parse_r (OpenMixup models/utils/merge.py), run on 12 blocks with inflection −0.5
    assert tome_schedule(12, 49) == [12, 5, 5, 4, 4, 4, 3, 3, 3, 2, 2, 2]
    assert tome_schedule(12, 98) == [8, 12, 11, 10, 10, 9, 8, 7, 7, 6, 5, 5]
    assert tome_schedule(12, 147) == [15, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7]
    assert sum(tome_schedule(6, 12)) == 12


def explicit_merge(metric, x, r):
    """Loop version of ToMe's bipartite matching with a protected CLS (one sample): (merged x, new index)."""
    t = metric.shape[0]
    m = metric / metric.norm(dim=-1, keepdim=True)
    a_pos, b_pos = list(range(0, t, 2)), list(range(1, t, 2))
    best = []
    for i, pa in enumerate(a_pos):
        sims = [float(m[pa] @ m[pb]) for pb in b_pos]
        j = max(range(len(b_pos)), key=lambda j: sims[j])
        best.append((-float("inf") if pa == 0 else sims[j], i, j))
    ranked = sorted(best, key=lambda e: -e[0])  # stable: ties keep the A order, as argsort here does not promise
    src = {i: j for _, i, j in ranked[:r]}
    unm = sorted(i for _, i, _ in ranked[r:])
    groups = [[a_pos[i]] for i in unm] + [[pb] for pb in b_pos]
    for i, j in src.items():
        groups[len(unm) + j].append(a_pos[i])
    new_index = torch.empty(t, dtype=torch.long)
    for g, members in enumerate(groups):
        new_index[members] = g
    merged = torch.stack([x[members].sum(0) for members in groups])
    return merged, new_index


@pytest.mark.parametrize("t,r", [(5, 1), (17, 4), (197, 12)])
def test_bipartite_merge_equals_the_explicit_loop_version(t, r):
    metric = torch.randn(3, t, 8, generator=gen(t))
    x = torch.randn(3, t, 6, generator=gen(r))
    merge, new_index = bipartite_merge(metric, r)
    merged = merge(x)
    for s in range(3):
        ref_x, ref_index = explicit_merge(metric[s], x[s], r)
        assert torch.equal(new_index[s], ref_index)
        assert torch.allclose(merged[s], ref_x, atol=1e-6)


def test_merging_keeps_the_total_size_and_the_cls_alone():
    metric = torch.randn(4, 197, 16, generator=gen(1))
    merge, new_index = bipartite_merge(metric, 12)
    size = merge(torch.ones(4, 197, 1))
    assert size.shape == (4, 185, 1)
    assert torch.equal(size.sum(dim=(1, 2)), torch.full((4,), 197.0))
    assert (new_index[:, 0] == 0).all() and (size[:, 0, 0] == 1).all()
    # the size of each new token is the number of original tokens mapped to it
    counts = torch.zeros(4, 185).scatter_add(1, new_index, torch.ones(4, 197))
    assert torch.equal(counts, size[..., 0])


def test_a_hand_built_case_merges_the_identical_pair():
    # T = 5: A = {0 (CLS), 2, 4}, B = {1, 3}; token 2 equals token 3, token 4 is near token 1
    metric = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [0, 1, 0.5]]).unsqueeze(0)
    merge, new_index = bipartite_merge(metric, 1)
    assert new_index[0].tolist() == [0, 2, 3, 3, 1]
    x = torch.arange(5.0).view(1, 5, 1)
    assert merge(x)[0, :, 0].tolist() == [0.0, 4.0, 1.0, 5.0]


def tiny_vit(depth=3):
    torch.manual_seed(0)
    model = timm.models.vision_transformer.VisionTransformer(img_size=16, patch_size=4, in_chans=1, num_classes=5,
                                                             embed_dim=24, depth=depth, num_heads=3)
    return model.eval()


def explicit_last_attention_to_cls(model, images):
    """Head-summed softmax attention of every token to the CLS in the last block of a plain forward: (B, T)."""
    seen = {}
    attn = model.blocks[-1].attn
    handle = attn.qkv.register_forward_hook(lambda m, i, o: seen.__setitem__("qkv", o))
    model(images)
    handle.remove()
    b, t, _ = seen["qkv"].shape
    q, k, _ = seen["qkv"].reshape(b, t, 3, attn.num_heads, -1).permute(2, 0, 3, 1, 4)
    a = ((q @ k.transpose(-2, -1)) * attn.scale).softmax(-1)
    return a[..., 0].sum(1)


def test_tome_pass_without_merging_is_the_plain_attention_to_the_cls():
    model, x = tiny_vit(), torch.randn(2, 1, 16, 16, generator=gen(2))
    scores = tome_attention_pass(model, x, [0, 0, 0])
    assert torch.allclose(scores, explicit_last_attention_to_cls(model, x)[:, 1:], atol=1e-5)


def test_the_last_blocks_merge_comes_after_its_attention():
    model, x = tiny_vit(), torch.randn(2, 1, 16, 16, generator=gen(3))
    plain = explicit_last_attention_to_cls(model, x)[:, 1:]
    # a merge in the last block only cannot change the attention it follows ...
    assert torch.allclose(tome_attention_pass(model, x, [0, 0, 3]), plain, atol=1e-5)
    # ... but the official read goes through the map after that merge (other rows)
    official = tome_attention_pass(model, x, [0, 0, 3], official_last_merge=True)
    assert not torch.allclose(official, plain, atol=1e-3)


def test_scores_of_merged_patches_are_their_tokens_scores():
    model, x = tiny_vit(depth=2), torch.randn(2, 1, 16, 16, generator=gen(4))
    scores = tome_attention_pass(model, x, [4, 0])
    # 16 patches, 4 merged away: exactly 12 distinct token scores per image (merged patches share one)
    for s in range(2):
        assert len(torch.unique(scores[s])) == 12


def test_top_k_mask_keeps_exactly_the_k_best():
    scores = torch.rand(5, 49, generator=gen(5))
    for k in (0, 1, 24, 49):
        mask = top_k_mask(scores, k)
        assert (mask.sum(1) == k).all()
        if 0 < k < 49:
            kept_min = torch.where(mask.bool(), scores, torch.inf).min(1).values
            dropped_max = torch.where(mask.bool(), -torch.inf, scores).max(1).values
            assert (kept_min > dropped_max).all()


def test_partner_is_never_the_image_itself():
    for s in range(200):
        p = derangement(3 + s % 6, gen(s))
        assert sorted(p.tolist()) == list(range(len(p)))
        assert not (p == torch.arange(len(p))).any()
    p = derangement(5, gen(0), tries=0)  # the fallback single cycle
    assert not (p == torch.arange(5)).any()


def test_mergemix_batch_keeps_k_top_patches_of_each_image():
    x = torch.randn(4, 1, 28, 28, generator=gen(6))
    scores = torch.rand(4, 49, generator=gen(7))
    batch = mergemix_batch(x, scores, lam=0.5, patch_size=4, generator=gen(8))
    k = int(0.5 * 49)
    assert (batch.token_mask.sum(1) == k).all()
    assert torch.equal(batch.token_mask, top_k_mask(scores, k))
    m = batch.pixel_mask
    assert torch.equal(batch.images, x * m + x[batch.partner] * (1 - m))
    assert torch.allclose(batch.lam_area, torch.full((4,), k / 49))
    assert not (batch.partner == torch.arange(4)).any()


def explicit_tome_scores(model, images, schedule):
    """Loop version of the ToMe pass for one image: tokens carry their set of original positions; a merged token is
    the member-count-weighted mean of what it merges; patch p scores its token's head-summed attention to the CLS
    in the last block."""
    x = model.norm_pre(model._pos_embed(model.patch_embed(images)))[0]
    members = [[i] for i in range(x.shape[0])]
    for i, (block, r) in enumerate(zip(model.blocks, schedule)):
        attn = block.attn
        t = x.shape[0]
        q, k, v = attn.qkv(block.norm1(x)).reshape(t, 3, attn.num_heads, -1).permute(1, 2, 0, 3)
        a = ((q @ k.transpose(-2, -1)) * attn.scale).softmax(-1)
        x = x + attn.proj((a @ v).transpose(0, 1).reshape(t, -1))
        if i == len(schedule) - 1:
            column = a[..., 0].sum(0)
            owner = {p: g for g, ms in enumerate(members) for p in ms}
            return torch.stack([column[owner[p]] for p in range(1, sum(map(len, members)))])
        if r:
            sizes = torch.tensor([float(len(m)) for m in members]).unsqueeze(1)
            merged, new_index = explicit_merge(k.mean(0), x * sizes, r)
            new_members = [[] for _ in range(merged.shape[0])]
            for old, new in enumerate(new_index.tolist()):
                new_members[new] += members[old]
            members = new_members
            x = merged / torch.tensor([float(len(m)) for m in members]).unsqueeze(1)
        x = x + block.mlp(block.norm2(x))


@torch.no_grad()
def test_tome_pass_equals_the_explicit_loop_version_over_several_merges():
    model, x = tiny_vit(depth=4), torch.randn(2, 1, 16, 16, generator=gen(9))
    schedule = [3, 2, 2, 1]
    scores = tome_attention_pass(model, x, schedule)
    for s in range(2):
        assert torch.allclose(scores[s], explicit_tome_scores(model, x[s:s + 1], schedule), atol=1e-5)


def smoothed_ce(logits, targets):
    return -(targets * torch.log_softmax(logits, 1)).sum(1).mean()


@torch.no_grad()
@pytest.mark.parametrize("official", [False, True])
def test_mergemix_step_is_mixup_ce_plus_the_top_k_batch_ce(official):
    from mixpro_core.mergemix import MergeMix

    model, eps, k_cls = tiny_vit(depth=3), 0.1, 5
    x = torch.randn(6, 1, 16, 16, generator=gen(10))
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    seen = []
    model.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
    method = MergeMix(model, num_classes=k_cls, smoothing=eps, patch_size=4, merge_num=6,
                      official_last_merge=official)
    assert method.schedule == [3, 2, 1]
    result = method(model, x, labels, gen(11))
    assert len(seen) == 2
    soft = torch.nn.functional.one_hot(labels, k_cls).float() * (1 - eps) + eps / k_cls
    # the MergeMix batch: each image keeps its k best-scored patches, the rest from one other image
    scores = tome_attention_pass(model, x, [3, 2, 1], official_last_merge=official)
    k = round(float(result.lam[0]) * 16)
    patches = lambda t: t.view(-1, 4, 4, 4, 4).permute(0, 1, 3, 2, 4).reshape(t.shape[0], 16, 16)
    mixed, clean = patches(seen[1]), patches(x)
    partner = []
    for i in range(6):
        own = (mixed[i] == clean[i]).all(1)
        assert torch.equal(own.float(), top_k_mask(scores[i:i + 1], k)[0])
        j = [j for j in range(6) if j != i and (mixed[i][~own] == clean[j][~own]).all()]
        assert len(j) == 1
        partner.append(j[0])
    lam_a = k / 16
    mergemix_ce = smoothed_ce(model(seen[1]), lam_a * soft + (1 - lam_a) * soft[partner])
    # the Mixup batch: one λ, partner a permutation without fixed points
    d = seen[0] - x
    mix_partner = [next(j for j in range(6) if j != i and torch.allclose(
        d[i] / (x[j] - x[i]), (d[i] / (x[j] - x[i])).median().expand_as(d[i]), atol=1e-4)) for i in range(6)]
    lam_m = 1 - float((d[0] / (x[mix_partner[0]] - x[0])).median())
    mixup_ce = smoothed_ce(model(seen[0]), lam_m * soft + (1 - lam_m) * soft[mix_partner])
    assert torch.allclose(result.stats["mergemix_ce"], mergemix_ce, atol=1e-5)
    assert torch.allclose(result.stats["mixup_ce"], mixup_ce, atol=1e-4)
    assert torch.allclose(result.loss, mixup_ce + mergemix_ce, atol=1e-4)
    assert not any("loss" in name for name in result.stats)


def test_mergemix_rejects_a_backbone_without_cls_token():
    from mixpro_core.mergemix import MergeMix

    model = timm.models.vision_transformer.VisionTransformer(img_size=16, patch_size=4, in_chans=1, num_classes=5,
                                                             embed_dim=24, depth=2, num_heads=3, class_token=False,
                                                             global_pool="avg")
    with pytest.raises(ValueError, match="CLS token"):
        MergeMix(model, num_classes=5, patch_size=4)
