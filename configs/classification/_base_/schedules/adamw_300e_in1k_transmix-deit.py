# TransMix's DeiT-S recipe (Beckschen/TransMix, configs/deit_s_transmix.yaml; docs/methods.md, "TransMix column
# recipe"), also used for DeiT-T, for which TransMix released none: adamw_300e_in1k.py (lr 1e-3 per 1024 images,
# 20 warm-up epochs from 1e-6, cosine to 1e-5, 300 epochs) with weight decay 0.03 instead of 0.05 and no gradient
# clipping (the TransMix train.py default) instead of 5.0.
_base_ = ["./adamw_300e_in1k.py"]
optim_wrapper = dict(optimizer=dict(weight_decay=0.03), clip_grad=None)
