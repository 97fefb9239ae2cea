# SMMix, PVT-Small v1: pvt-t_smmix_8xb128-300e_in1k.py (SMMix's recipe; docs/methods.md, "SMMix") with PVT-Small's
# backbone.
_base_ = ["./pvt-t_smmix_8xb128-300e_in1k.py"]
model = dict(backbone=dict(type="pvt_small"))
