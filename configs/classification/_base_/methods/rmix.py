# R-Mix (AAAI 2023 workshop): saliency from the input gradient of one extra clean forward/backward, a random
# per-image saliency quantile q ∈ {0, 0.11, …, 0.99}, λ ~ Beta(1, 1); g×g cells with g drawn from {2, 4} per batch
# (grid=None). Every batch is R-Mixed (prob 1.0; lower it and add other entries to `mix` to fall back to them on the
# other batches). Its label A_eq(λy_a+(1−λ)y_b) + A_a·y_a + A_b·y_b is an area label with λ_eff = A_eq·λ + A_a, so
# AreaLabels with smoothing 0.1 gives it exactly. Costs one extra forward + backward per step.
method = dict(mix=[dict(type="rmix", prob=1.0, alpha=1.0, grid=None)],
              label_policy=dict(type="AreaLabels"), smoothing=0.1)
