_base_ = [
    "./_base_/models/tiny-vit-fmnist.py", "./_base_/datasets/fashion_mnist_bs128.py", "./_base_/schedules/adamw_fmnist.py",
    "./_base_/default_runtime.py", "./_base_/methods/rlmix.py",
]
model = dict(mix={{_base_.method.mix}}, model_mixer={{_base_.method.model_mixer}},
             label_policy={{_base_.method.label_policy}}, smoothing={{_base_.method.smoothing}})
