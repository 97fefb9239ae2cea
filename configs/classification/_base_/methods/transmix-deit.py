# TransMix as its authors trained DeiT (Beckschen/TransMix, configs/deit_{s,b}_transmix.yaml: mixup 0.8, cutmix 1.0,
# switch probability 0.8 = CutMix on 80% of the batches, Mixup on 20%); labels as transmix.py. The TransMix column's
# DeiT configs only (docs/methods.md, "TransMix column recipe"); the baseline and MixPro keep the 0.5 switch.
_base_ = ["./transmix.py"]
method = dict(mix=[dict(type="cutmix", prob=0.8, alpha=1.0), dict(type="mixup", prob=0.2, alpha=0.8)])
