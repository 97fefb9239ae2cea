# TokenMixup, vertical (VTM; NeurIPS 2022) on top of the baseline's Mixup 0.8 / CutMix 1.0 (switch 0.5). The paper's
# CCT-7/3x1 CIFAR-100 setting: at block 2 (0-based) the attention's keys/values also take the κ = 80 most salient input
# tokens of each lower block (blocks 0 and 1: 160 extra tokens beside CCT's 256); training only, labels unchanged.
# Models with other token counts scale κ in their leaf config (see tiny-vit_vtm_1xb128-20e_fmnist.py).
_base_ = ["./baseline.py"]
method = dict(token_mixup=dict(type="vtm", layer=2, kappa=80))
