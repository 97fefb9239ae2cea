# Swin recipe for CA-Swin (docs/methods.md, "Recipes"; Swin's code base, which the MixPro code is): adamw_300e_in1k.py
# (lr 1e-3 per 1024, 20 warm-up epochs, cosine to 1e-5, clipping at 5.0) with no weight decay on Swin's relative
# position bias tables either.
_base_ = ["./adamw_300e_in1k.py"]
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={"relative_position_bias_table": dict(decay_mult=0.0)}))
