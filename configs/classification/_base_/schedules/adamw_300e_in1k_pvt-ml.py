# PVT-M/L recipe (docs/methods.md, "Recipes"; PVT's official configs): the PVT recipe, gradient clipping at norm 1.0.
_base_ = ["./adamw_300e_in1k_pvt.py"]
optim_wrapper = dict(clip_grad=dict(_delete_=True, max_norm=1.0))
