# ResizeMix (Qin et al. 2020) in place of the baseline's CutMix: half of the batches get the whole partner image
# resized (bilinear) into a random box whose side is a fraction τ ~ U[0.1, 0.8] of the image's, the other half Mixup
# 0.8; area labels (λ = 1 − τ²·(box rounding)) with smoothing 0.1. ResizeMix batches carry a token mask, so
# TransMixLabels would apply its attention λ to them as to CutMix's, with no change to the policy.
method = dict(mix=[dict(type="resizemix", prob=0.5, scale=(0.1, 0.8), interpolation="bilinear"),
                   dict(type="mixup", prob=0.5, alpha=0.8)],
              label_policy=dict(type="AreaLabels"), smoothing=0.1)
