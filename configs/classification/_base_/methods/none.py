# Each method base defines `method`: every model key of the method (mix, label_policy, smoothing, token_mixup, or
# method). A leaf config applies it in one line, `model = dict(_base_.method)` (plus any keys the leaf changes); a
# MixClassifier config without model.mix or model.method is refused. An ablation or variant inherits the base it
# changes (`_base_ = ["./mixpro.py"]`) and sets only what differs (mmengine merges the dicts; a list is replaced).
# No mixing: plain label-smoothed cross-entropy, said explicitly (mix=None; the model logs "no mixing").
method = dict(mix=None, label_policy=dict(type="AreaLabels"), smoothing=0.1)
