# SMMix (ICCV 2023; ChenMnZ/SMMix @14b1edc: smmix.py, deit.py, engine.py, main.py; docs/methods.md, "SMMix"): per batch
# with probability 0.5 SMMix — a clean pass (eval mode, no grad, fp32) scores the patches by the attention they receive
# in the last block, one window side s from int(0.25·side) … int(0.75·side) tokens (3 … 10 on DeiT's 14×14 grid), the
# partner's (flipped batch) most-attended s×s window replaces the image's least-attended one, λ = (N − s²)/N, loss =
# soft CE(λ-mixed target) + ½[CE(region head on the kept tokens, ŷ_a) + CE(region head on the pasted tokens, ŷ_b)] +
# KL(softmax(λ·z + (1 − λ)·z_partner) ‖ softmax(logits)) — otherwise Mixup α 0.8 with the flipped batch; smoothing 0.1.
# The region head (method.token_head) is unused on Mixup batches: DDP must look for unused parameters.
method = dict(method=dict(type="smmix", switch_prob=0.5, mixup_alpha=0.8, min_side_ratio=0.25, max_side_ratio=0.75),
              smoothing=0.1)
model_wrapper_cfg = dict(type="MMDistributedDataParallel", find_unused_parameters=True)
