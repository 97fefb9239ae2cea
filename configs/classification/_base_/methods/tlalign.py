# TL-Align (ICCV 2023; Euphoria16/TL-Align @4da0621: tla.py, timm/models/vision_transformer.py, engine.py,
# main_tla.py; docs/methods.md, "TL-Align"): every batch token-grid CutMix (λ ~ Beta(1, 1) redrawn while 1, one box on
# the token grid, flipped-batch partner, λ = 1 − box tokens / N), each token's label ratio propagated through every
# block as ρ ← (Ā·ρ + ρ)/2, soft-target CE of the logits against ρ_CLS·ŷ_a + (1 − ρ_CLS)·ŷ_b, smoothing 0.1. The
# official Mixup branch is not used (main_tla.py sets Mixup α 0; the branch would crash on its missing token mask).
method = dict(method=dict(type="tlalign", alpha=1.0), smoothing=0.1)
