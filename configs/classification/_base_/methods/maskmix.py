# MaskMix only (MixPro's image space without PAL): MixPro's 50% MaskMix / 25% CutMix / 25% Mixup with area labels on
# every batch — the ablation of PAL. mask_size comes from the model base (model.mix_defaults).
_base_ = ["./mixpro.py"]
method = dict(label_policy=dict(_delete_=True, type="AreaLabels"))
