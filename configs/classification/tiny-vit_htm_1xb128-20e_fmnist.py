_base_ = [
    "./_base_/models/tiny-vit-fmnist.py", "./_base_/datasets/fashion_mnist_bs128.py", "./_base_/schedules/adamw_fmnist.py",
    "./_base_/default_runtime.py", "./_base_/methods/htm.py",
]
# HTM scaled from the paper's CCT-7/3x1 on CIFAR-100 (256 tokens, 100 classes) to the tiny ViT (depth 4, 16 patch
# tokens + CLS, 10 classes):
#   layer 2 (0-based) as in the paper — two blocks in, the attention is already informative, two blocks remain;
#   ρ 0.08 — ρ is a saliency difference and saliencies sum to ~1 over the tokens: 0.005 ≈ 1.28× the uniform share
#     1/256, the same 1.28× of 1/16 is 0.08;
#   τ 0.12 — difficulty is 0.1·CE. τ 0.2 lets samples with CE ≤ 2.0 mix: 43% of the chance-level CE ln 100, above
#     the 1.40 entropy floor of a 50/50 Mixup target smoothed by 0.1 on 100 classes. On 10 classes τ 0.2 would admit
#     samples barely better than chance (ln 10 = 2.30); CE ≤ 1.2 is about half of ln 10 and, as on CIFAR-100, above
#     the floor of a 50/50 target (1.08 on 10 classes), so well-predicted mixed samples can qualify too;
#   λ_sn 0.001 unchanged (the ScoreNet's own weights are trained by AdamW, insensitive to the loss scale).
model = dict(_base_.method, token_mixup=dict(type="htm", layer=2, tau=0.12, rho=0.08, lambda_sn=0.001, pool="cls"))
