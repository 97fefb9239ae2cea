# SMMix, PVT-Large v1: pvt-t_smmix_8xb128-300e_in1k.py (SMMix's recipe; docs/methods.md, "SMMix") with PVT-Large's
# backbone, drop path 0.1 as there (main.py's default for every size; SMMix's command passes none, where PVT's own M/L
# recipe uses 0.3).
_base_ = ["./pvt-t_smmix_8xb128-300e_in1k.py"]
model = dict(backbone=dict(type="pvt_large"))
