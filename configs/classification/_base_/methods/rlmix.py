# RL-Mix (AAAI 2023 workshop): R-Mix whose per-image saliency quantile q ∈ {0, 0.11, …, 0.99} is the action of a PPO
# policy (stable-baselines3; `pip install .[rlmix]`). Observation: the clean saliency pooled to 4×4 cells + the
# class probabilities; reward: cosine similarity of the clean and the mixed image's saliency. λ ~ Beta(1, 1), g from
# {2, 4} per batch, every batch RL-Mixed; PPO updates every 1024 images (4 epochs of minibatches of 256, lr 3e-4,
# entropy bonus 0.01). Label as R-Mix: an area label with λ_eff = A_eq·λ + A_a (AreaLabels, smoothing 0.1).
# Costs two extra input-gradient passes per step (clean saliency, mixed-image reward).
method = dict(mix=[dict(type="rlmix", prob=1.0, alpha=1.0, grid=None, obs_grid=4, learn=True, n_steps=1024,
                        batch_size=256, n_epochs=4, learning_rate=3e-4, ent_coef=0.01)],
              label_policy=dict(type="AreaLabels"), smoothing=0.1)
