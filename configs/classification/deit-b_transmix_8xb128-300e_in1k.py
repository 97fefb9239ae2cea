# TransMix column, DeiT-B: TransMix's published DeiT recipe (Beckschen/TransMix: configs/deit_b_transmix.yaml;
# docs/methods.md, "TransMix column recipe"), not the MixPro DeiT recipe of this row's baseline and MixPro configs.
# Differences from those: CutMix/Mixup switch probability 0.8 instead of 0.5 (methods/transmix-deit.py); an EMA of the
# weights, decay 0.99996, which validation, the best checkpoint and the saved weights use (default_runtime_ema.py); 5
# warm-up epochs instead of 20; no gradient clipping; no random erasing; random bilinear/bicubic resizing in training.
# Kept from the MixPro recipe, unlike TransMix's files: total batch 1024 at lr 1e-3 (as its DeiT-S file was first
# released; both files now say 256 at the same lr, 4x the lr per image, and its train.py does not scale the lr), 300
# epochs without timm's 10 cool-down epochs at the minimum lr, the cosine stepped per iteration (timm: per epoch).
_base_ = [
    "./_base_/models/deit-b.py", "./_base_/datasets/imagenet_bs128_transmix.py",
    "./_base_/schedules/adamw_300e_in1k_transmix-deit-b.py", "./_base_/default_runtime_ema.py",
    "./_base_/methods/transmix-deit.py",
]
model = dict(_base_.method)
