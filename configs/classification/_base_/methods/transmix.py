# TransMix: the baseline's Mixup/CutMix and smoothing; on batches with a token mask (CutMix) λ = (λ_area + λ_attn)/2.
_base_ = ["./baseline.py"]
method = dict(label_policy=dict(_delete_=True, type="TransMixLabels"))
