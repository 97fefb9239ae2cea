"""classification.experiments.robustness.evaluate and classification.experiments.robustness.report
(tools/robustness.py): occlusion / shuffle geometry, FGSM / PGD budgets, the ImageNet-A/R class restriction, the
ImageNet-O AUPR, and the CLI end to end on a tiny Fashion-MNIST model."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import average_precision_score
from torch import nn

from classification.data.transforms import (FASHION_MNIST_MEAN, FASHION_MNIST_STD, build_fashion_mnist_transform,
                                            build_transform)
from classification.experiments.robustness import report as robustness_report
from classification.experiments.robustness.attacks import fgsm, pgd
from classification.experiments.robustness.evaluate import evaluate_robustness
from classification.experiments.robustness.suites import (NormalizedModel, class_subset_indices,
                                                          default_occlusion_patch_size, default_shuffle_grids,
                                                          drop_patches, folder_wnids, imagenet_wnids, max_softmax,
                                                          num_patches_to_drop, ood_aupr, restrict_logits,
                                                          shuffle_patches, split_normalize)

from classification.foundation.host import ROOT
CONFIG = osp.join(ROOT, "configs/classification/tiny-vit_mixpro_1xb128-20e_fmnist.py")
FMNIST = "/usr/share/datasets/fashion-mnist"
needs_fmnist = pytest.mark.needs_data(FMNIST)


def patch_view(images, p):
    """(B,C,H,W) → (B, gh*gw, C*p*p): the patches of each image in row-major grid order."""
    b, c, h, w = images.shape
    return images.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5).reshape(b, (h // p) * (w // p), -1)


# ---------------------------------------------------------------------------------------------------- occlusion
@pytest.mark.parametrize("num_patches", [196, 16])
def test_num_patches_to_drop_is_k_g_div_10(num_patches):
    assert [num_patches_to_drop(num_patches, k / 10) for k in range(10)] == [k * num_patches // 10
                                                                             for k in range(10)]
    assert num_patches_to_drop(num_patches, 1.0) == num_patches
    with pytest.raises(ValueError):
        num_patches_to_drop(num_patches, 1.5)


@pytest.mark.parametrize("size,patch", [(224, 16), (28, 7), (32, 8)])
def test_drop_patches_zeroes_exactly_k_patches_same_cells_for_the_batch(size, patch):
    images = torch.rand(3, 2, size, size) * 0.9 + 0.1  # no pixel is 0 before dropping
    grid = (size // patch) ** 2
    for k in range(10):
        num_drop = k * grid // 10
        out = drop_patches(images, patch, num_drop, torch.Generator().manual_seed(k))
        patches, before = patch_view(out, patch), patch_view(images, patch)
        zeroed = (patches == 0).all(dim=2)  # (B, G)
        assert (zeroed.sum(dim=1) == num_drop).all()
        assert (zeroed == zeroed[0]).all(), "every image of the batch must lose the same cells"
        assert torch.equal(patches[~zeroed], before[~zeroed]), "kept patches must be unchanged"
        assert ((patches != 0) | zeroed.unsqueeze(2)).all(), "only whole patches are zeroed"


def test_drop_patches_is_seeded_and_checks_geometry():
    images = torch.rand(2, 1, 32, 32) + 0.1
    a = drop_patches(images, 8, 5, torch.Generator().manual_seed(3))
    b = drop_patches(images, 8, 5, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="does not divide"):
        drop_patches(images, 7, 1)
    with pytest.raises(ValueError, match="num_drop"):
        drop_patches(images, 8, 17)


def test_default_geometry():
    assert default_occlusion_patch_size(224, 16) == 16 and default_occlusion_patch_size(224, 14) == 16
    assert default_occlusion_patch_size(28, 7) == 7 and default_occlusion_patch_size(32, 8) == 8
    assert default_shuffle_grids(224) == (2, 4, 8, 14, 16)
    assert default_shuffle_grids(28) == (2, 4, 7, 14)
    assert default_shuffle_grids(32) == (2, 4, 8, 16)


# ------------------------------------------------------------------------------------------------------ shuffle
@pytest.mark.parametrize("size,grid", [(224, 14), (28, 7), (32, 4)])
def test_shuffle_is_one_permutation_of_the_patches(size, grid):
    images = torch.rand(3, 2, size, size)  # random pixels: every patch is unique
    out = shuffle_patches(images, grid, torch.Generator().manual_seed(0))
    p = size // grid
    before, after = patch_view(images, p), patch_view(out, p)
    # for each output cell, the input cell it came from (exact match)
    source = (after.unsqueeze(2) == before.unsqueeze(1)).all(dim=3).float().argmax(dim=2)  # (B, G)
    assert torch.equal(after, torch.gather(before, 1, source.unsqueeze(2).expand_as(before)))
    assert sorted(source[0].tolist()) == list(range(grid * grid)), "a permutation of the cells"
    assert (source == source[0]).all(), "one permutation for the whole batch"
    assert not torch.equal(source[0], torch.arange(grid * grid))
    again = shuffle_patches(images, grid, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    with pytest.raises(ValueError, match="does not divide"):
        shuffle_patches(images, 5 if size % 5 else 3)


# ------------------------------------------------------------------------------------------------ normalisation
def test_split_normalize_moves_the_config_normalisation_into_the_model():
    rest, mean, std = split_normalize(build_fashion_mnist_transform(is_train=False))
    assert (mean, std) == (FASHION_MNIST_MEAN, FASHION_MNIST_STD)
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8))
    pixels = rest(img)
    assert 0 <= pixels.min() and pixels.max() <= 1
    normed = NormalizedModel(nn.Identity(), mean, std)(pixels.unsqueeze(0))[0]
    assert torch.allclose(normed, build_fashion_mnist_transform(is_train=False)(img), atol=1e-6)

    rest, mean, std = split_normalize(build_transform(is_train=False, input_size=32))
    assert np.allclose(mean, (0.485, 0.456, 0.406)) and np.allclose(std, (0.229, 0.224, 0.225))
    assert rest(Image.new("RGB", (40, 50))).shape == (3, 32, 32)
    assert split_normalize(None)[1:] == ((0.0,), (1.0,))
    with pytest.raises(ValueError):
        split_normalize(lambda im: im)


# ------------------------------------------------------------------------------------------------------ attacks
def linear_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 5))
    with torch.no_grad():
        model[1].weight.mul_(20)
    return model.eval()


def attack_batch(model):
    images = torch.rand(256, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 0.5 + 0.25  # no clamping
    with torch.no_grad():
        labels = model(images).argmax(1)  # clean accuracy 100 %
    return images, labels


def sample_loss(model, images, labels):
    with torch.no_grad():
        return nn.functional.cross_entropy(model(images), labels, reduction="none")


@pytest.mark.parametrize("eps", [1 / 255, 2 / 255, 4 / 255])
def test_attacks_stay_in_the_eps_ball_and_in_pixel_range(eps):
    model = linear_model()
    images = torch.rand(16, 3, 8, 8, generator=torch.Generator().manual_seed(2))  # full range: clamping active
    labels = torch.randint(0, 5, (16,), generator=torch.Generator().manual_seed(3))
    for adv in (fgsm(model, images, labels, eps), pgd(model, images, labels, eps, generator=torch.Generator())):
        assert (adv - images).abs().max() <= eps + 1e-6
        assert adv.min() >= 0 and adv.max() <= 1
        assert not adv.requires_grad
    assert all(p.grad is None for p in model.parameters()), "attacks must not accumulate parameter gradients"


def test_attacks_raise_the_loss_and_lower_accuracy():
    model = linear_model()
    images, labels = attack_batch(model)
    eps = 4 / 255
    clean = sample_loss(model, images, labels)
    adv_fgsm = fgsm(model, images, labels, eps)
    # loss is convex in the input of a linear model: the signed-gradient step cannot lower it
    assert (sample_loss(model, adv_fgsm, labels) > clean).all()
    adv_pgd = pgd(model, images, labels, eps, steps=10, generator=torch.Generator().manual_seed(0))
    assert sample_loss(model, adv_pgd, labels).mean() > clean.mean()
    for adv in (adv_fgsm, adv_pgd):
        with torch.no_grad():
            assert (model(adv).argmax(1) == labels).float().mean() < 0.95
    again = pgd(model, images, labels, eps, steps=10, generator=torch.Generator().manual_seed(0))
    assert torch.equal(adv_pgd, again), "PGD's random start is seeded by its generator"
    # PGD's α defaults to ε/4; zero steps is the random start alone
    start = pgd(model, images, labels, eps, steps=0, generator=torch.Generator().manual_seed(0))
    assert 0 < (start - images).abs().max() <= eps + 1e-6


# ---------------------------------------------------------------------------------------------- ImageNet-A / R / O
def test_class_subset_restricts_logits_to_the_folder_classes():
    wnids = [f"n{i:08d}" for i in range(20)]
    folders = ["n00000003", "n00000007", "n00000011", "n00000016", "n00000019"]
    indices = class_subset_indices(folders, wnids)
    assert indices.dtype == torch.long and indices.tolist() == [3, 7, 11, 16, 19]
    logits = torch.arange(20.0).repeat(2, 1) * torch.tensor([[1.0], [-1.0]])
    restricted = restrict_logits(logits, indices)
    assert restricted.tolist() == [[3.0, 7.0, 11.0, 16.0, 19.0], [-3.0, -7.0, -11.0, -16.0, -19.0]]
    assert restricted.argmax(1).tolist() == [4, 0]  # folder labels, not ImageNet indices
    with pytest.raises(ValueError, match="n09999999"):
        class_subset_indices(["n00000003", "n09999999"], wnids)


def test_imagenet_index_ships_with_timm():
    wnids = imagenet_wnids()
    assert len(wnids) == 1000 and wnids[0] == "n01440764" and len(set(wnids)) == 1000


def test_folder_errors(tmp_path):
    missing = str(tmp_path / "imagenet-a")
    with pytest.raises(FileNotFoundError, match="imagenet-a"):
        folder_wnids(missing)
    (tmp_path / "imagenet-r" / "n01440764").mkdir(parents=True)
    (tmp_path / "imagenet-r" / "not_a_wnid").mkdir()
    with pytest.raises(ValueError, match="not_a_wnid"):
        class_subset_indices(folder_wnids(str(tmp_path / "imagenet-r")), imagenet_wnids())


def test_aupr_matches_sklearn_and_its_direction():
    in_conf, out_conf = [0.9, 0.8, 0.7], [0.6, 0.85]
    # ranking by -confidence: out(0.6) in in out(0.85) in → AP = (1/1 + 2/4) / 2
    assert ood_aupr(in_conf, out_conf) == pytest.approx(75.0)
    expected = 100 * average_precision_score([0, 0, 0, 1, 1], [-0.9, -0.8, -0.7, -0.6, -0.85])
    assert ood_aupr(torch.tensor(in_conf), torch.tensor(out_conf)) == pytest.approx(expected)
    rng = np.random.default_rng(0)
    confident = ood_aupr(rng.uniform(0.8, 1.0, 100), rng.uniform(0.3, 0.9, 50))
    unsure = ood_aupr(rng.uniform(0.3, 0.9, 100), rng.uniform(0.3, 0.9, 50))
    assert confident > unsure
    assert ood_aupr([0.9, 0.95], [0.1, 0.2]) == pytest.approx(100.0)
    assert torch.allclose(max_softmax(torch.tensor([[0.0, 0.0], [10.0, -10.0]])), torch.tensor([0.5, 1.0]),
                          atol=1e-6)


def write_images(folder, count, size=36):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(len(str(folder)))
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i}.png")


def test_imagenet_suites_end_to_end(tmp_path):
    """A 1000-class tiny model whose head always answers the class of the first ImageNet-A folder."""
    from mmengine.config import Config
    from mmengine.registry import MODELS
    wnids = imagenet_wnids()
    first, second = wnids[5], wnids[900]
    for root, count in (("imagenet-a", 2), ("imagenet-o", 3), ("val", 3)):
        for wnid in (first, second):
            write_images(tmp_path / "data" / root / wnid, count)
    config = tmp_path / "tiny_in1k.py"
    config.write_text(
        'custom_imports = dict(imports=["classification.register_all"], allow_failed_imports=False)\n'
        'model = dict(type="MixClassifier", num_classes=1000, backbone=dict(type="tiny_vit", img_size=32, '
        'patch_size=8, in_chans=3, embed_dim=16, depth=1, num_heads=1, drop_path_rate=0.0), '
        'mix=[])\n'
        f'test_dataloader = dict(batch_size=4, num_workers=0, dataset=dict(type="ImageNetFolder", '
        f'root="{tmp_path / "data"}", split="val", transform=dict(type="timm", is_train=False, input_size=32)))\n')
    model = MODELS.build(Config.fromfile(str(config)).model)
    with torch.no_grad():
        model.backbone.head.weight.zero_()
        model.backbone.head.bias.zero_()
        model.backbone.head.bias[5] = 10.0
    ckpt = tmp_path / "ckpt.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {}}, ckpt)
    result = evaluate_robustness(str(config), str(ckpt), ["imagenet-a", "imagenet-o"], device="cpu",
                                 imagenet_a=str(tmp_path / "data" / "imagenet-a"),
                                 imagenet_o=str(tmp_path / "data" / "imagenet-o"), progress=False)
    assert set(result) == {"checkpoint", "clean_top1", "imagenet-a", "imagenet-o"}
    assert result["imagenet-a"] == pytest.approx(50.0)  # always folder 0: right on half of the images
    assert result["imagenet-o"] == pytest.approx(100 * 6 / 12)  # constant confidence: AUPR = share of anomalies
    with pytest.raises(FileNotFoundError, match="imagenet-r"):
        evaluate_robustness(str(config), str(ckpt), ["imagenet-r"], device="cpu",
                            imagenet_r=str(tmp_path / "data" / "imagenet-r"), progress=False)


# ------------------------------------------------------------------------------------------------------------ CLI
def test_cli_bad_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.py"):
        robustness_report.main([str(tmp_path / "nope.py"), str(tmp_path / "ckpt.pth")])
    with pytest.raises(FileNotFoundError, match="ckpt.pth"):
        robustness_report.main([CONFIG, str(tmp_path / "ckpt.pth")])
    with pytest.raises(FileNotFoundError, match="ckpt.pth"):
        evaluate_robustness(CONFIG, str(tmp_path / "ckpt.pth"), device="cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            evaluate_robustness(CONFIG, str(tmp_path / "ckpt.pth"), amp=True)


@pytest.mark.slow
@needs_fmnist
def test_cli_end_to_end_on_fashion_mnist(tmp_path):
    from mmengine.config import Config
    from mmengine.registry import MODELS
    import classification.register_all  # noqa: F401  (registration)
    cfg = Config.fromfile(CONFIG)
    checkpoints = []
    for seed, method in enumerate(("mixpro", "baseline")):
        torch.manual_seed(seed)
        path = tmp_path / method / "epoch_1.pth"
        path.parent.mkdir()
        torch.save({"state_dict": MODELS.build(cfg.model).state_dict(), "meta": {}}, path)
        checkpoints.append(str(path))
    out = tmp_path / "out"
    result = robustness_report.main([CONFIG, checkpoints[0], "--compare", checkpoints[1], "--max-samples", "64",
                        "--suite", "occlusion,shuffle,fgsm,pgd", "--out-dir", str(out), "--device", "cpu",
                        "--num-workers", "0", "--batch-size", "32", "--attack-max-samples", "32", "--quiet"])
    saved = json.loads((out / "robustness.json").read_text())
    assert saved == json.loads(json.dumps(result))
    assert saved["config"] == CONFIG and list(saved["models"]) == ["mixpro", "baseline"]
    size = cfg.model.backbone.img_size
    for name, entry in saved["models"].items():
        assert set(entry) == {"checkpoint", "clean_top1", "occlusion", "shuffle", "fgsm", "pgd"}
        assert entry["checkpoint"] == checkpoints[0 if name == "mixpro" else 1]
        assert list(entry["occlusion"]) == [f"0.{k}" for k in range(10)]
        assert list(entry["shuffle"]) == [f"{g}x{g}" for g in default_shuffle_grids(size)]
        assert list(entry["fgsm"]) == list(entry["pgd"]) == ["1/255", "2/255", "4/255"]
        values = [entry["clean_top1"], *entry["occlusion"].values(), *entry["shuffle"].values()]
        assert all(0 <= v <= 100 and (v * 64 / 100) == pytest.approx(round(v * 64 / 100)) for v in values)
        attacked = [*entry["fgsm"].values(), *entry["pgd"].values()]  # on the first 32 samples only
        assert all(0 <= v <= 100 and (v * 32 / 100) == pytest.approx(round(v * 32 / 100)) for v in attacked)
        assert entry["occlusion"]["0.0"] == entry["clean_top1"]
    table = (out / "robustness.md").read_text()
    assert "| mixpro |" in table and "| baseline |" in table and "occ 0.5" in table
    assert "first 32 test samples" in table
    for plot in ("occlusion", "shuffle", "fgsm", "pgd"):
        with open(out / f"{plot}.png", "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_occlusion_on_several_grids_keeps_the_first_grid_stream_and_drops_half_of_each_grid():
    """--occlusion-patch 8 4 16 at 32×32: ``occlusion`` is exactly the single-grid result (same random stream),
    ``occlusion_by_patch`` has one entry per grid, and at ratio 0.5 each grid zeroes exactly half of its cells."""
    from contextlib import nullcontext
    from classification.experiments.robustness.evaluate import _evaluate_test_set
    seen = []

    class Spy(nn.Module):  # class 1 iff the top-left 4×4 cell is intact: accuracy depends on the dropped cells
        def forward(self, x):
            seen.append(x.clone())
            return torch.stack([x[:, 0, :4, :4].sum((1, 2)) * 0, (x[:, 0, :4, :4] > 0).all(-1).all(-1) * 1.0], 1)

    loader = [dict(inputs=torch.ones(4, 1, 32, 32), data_samples=torch.ones(4)) for _ in range(6)]

    def run(patches):
        seen.clear()
        return _evaluate_test_set(Spy(), loader, ("occlusion",), seed=3, occlusion_ratios=(0.5,),
                                  occlusion_patch_size=patches, shuffle_grids=None, epsilons=(), pgd_steps=1,
                                  device=torch.device("cpu"), autocast=nullcontext, token_stride=8, progress=False,
                                  desc="test")

    single = run(8)
    several = run([8, 4, 16])
    assert "occlusion_by_patch" not in single
    assert several["occlusion"] == single["occlusion"] and list(several["occlusion_by_patch"]) == ["8", "4", "16"]
    assert several["occlusion_by_patch"]["8"] == single["occlusion"]
    # per batch: clean, then grids 8, 4, 16: half of the pixels zeroed in each occluded pass
    for i, x in enumerate(seen):
        zero_share = float((x == 0).float().mean())
        assert zero_share == (0.0 if i % 4 == 0 else 0.5)
    accuracies = [several["occlusion_by_patch"][p]["0.5"] for p in ("8", "4", "16")]
    assert all(0 <= a <= 100 for a in accuracies) and several["clean_top1"] == 100.0
    with pytest.raises(ValueError, match="positive integers"):
        run([4, 0])
