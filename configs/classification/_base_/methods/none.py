# Each method base defines `method`: every model key of the method (mix, label_policy, smoothing, token_mixup).
# A leaf config applies it in one line, `model = dict(_base_.method)` (plus any keys the leaf changes).
# No mixing: plain label-smoothed cross-entropy.
method = dict(mix=[], label_policy=dict(type="AreaLabels"), smoothing=0.1)
