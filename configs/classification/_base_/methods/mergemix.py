# MergeMix: the clean images' ToMe attention keeps each image's top-λN patches; plus a Mixup CE (two forwards).
# Official step (OpenMixup models/classifiers/mergemix.py; docs/methods.md, "MergeMix"): λ ~ Beta(1,1); a ToMe pass of
# the clean batch merges N/4 tokens over the blocks (49 of 196 for DeiT: r = 12,5,5,4,4,4,3,3,3,2,2,2); patch scores =
# head-summed last-block attention of each patch's token to the CLS; the top int(λ·N) patches stay, the others come
# from a partner (never the image itself); loss = smoothed CE of a Mixup α 0.8 batch + smoothed CE of the MergeMix
# batch mixed by λ_a = k/N. The last block's attention is read through the patch map it was computed with (the official
# code reads it through the map after that block's merge: official_last_merge=True).
method = dict(method=dict(type="mergemix", alpha=1.0, mixup_alpha=0.8, official_last_merge=False), smoothing=0.1)
