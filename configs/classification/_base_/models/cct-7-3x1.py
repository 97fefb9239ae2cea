# CCT-7/3x1 (Compact Convolutional Transformer) for 32×32 CIFAR images: one 3×3 conv + max-pool tokenizer → 16×16
# tokens (token stride 2), 7 layers, dim 256, 4 heads, MLP ratio 2, learnable positional embedding, sequence pooling
# (no CLS token), attention dropout 0.1, stochastic depth 0.1; 3.78M parameters with 100 classes.
model = dict(type="MixClassifier", num_classes=100,
             backbone=dict(type="cct_7_3x1", img_size=32, drop_path_rate=0.1))
