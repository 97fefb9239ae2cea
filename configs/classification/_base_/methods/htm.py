# TokenMixup, horizontal (HTM; NeurIPS 2022) on top of the baseline's Mixup 0.8 / CutMix 1.0 (switch 0.5), as in the
# paper's CIFAR runs. The paper's CCT-7/3x1 CIFAR-100 setting (256 tokens, 100 classes): HTM before block 2 (0-based),
# difficulty = 0.1·ScoreNet CE ≤ τ 0.2, saliency-difference threshold ρ 0.005, ScoreNet loss weight λ_sn 0.001,
# ScoreNet pooling 'cls' with a CLS token / 'attention' (CCT's sequence pooling) without (pool=None). HTM starts from
# the area targets of the image-mixed batch: AreaLabels, smoothing 0.1. Models with other token counts or class
# counts scale ρ and τ in their leaf config (see tiny-vit_htm_1xb128-20e_fmnist.py).
_base_ = ["./baseline.py"]
method = dict(token_mixup=dict(type="htm", layer=2, tau=0.2, rho=0.005, lambda_sn=0.001, pool=None))
