# TokenMix without a teacher (tokenmix-area): BEiT-style block masks, area-weighted BCE targets, no label maps.
# Official TokenMix step (Sense-X/TokenMix tokenmix.py; docs/methods.md, "TokenMix") with probability 0.5 per batch:
# λ0 = 0.5, a block mask of min(N, int(0.5·N) + extra_tokens) tokens (extra_tokens defaults to the grid width, 14 at
# 224 px), the flipped batch pasted inside it; otherwise Mixup α 0.8 (flipped partner). The official targets weigh each
# class by the share of the NFNet-F6 teacher's dense map that stays visible; this variant has no teacher, so the map is
# uniform and the weights are the kept / pasted areas. Loss: BCE with logits on every batch, smoothing 0.1.
method = dict(method=dict(type="tokenmix-area", switch_prob=0.5, mixup_alpha=0.8, lam=0.5), smoothing=0.1)
