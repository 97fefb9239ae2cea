"""Occlusion and patch shuffling happen in pixel space, through the real pipeline (docs/methods.md, "Robustness
benchmarks"): the config's normalising transform is taken out of the dataset and into the model
(:class:`~classification.experiments.robustness.suites.NormalizedModel`), the perturbation acts on [0, 1] pixels in
between.

The classifier is wrapped by a spy that records what reaches it; undoing the config's normalisation on those inputs
gives back the pixels each suite made, which are checked against the clean pixels: occluded cells exactly black (0 in
pixel space, not the mean colour a zero in normalised space would be) and everything else untouched; shuffled images
a permutation of whole cells; clean pixels in [0, 1] (a normalisation applied twice leaves that range).
"""
import numpy as np
import pytest
import torch
from PIL import Image
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from classification.experiments.robustness import evaluate
from classification.experiments.robustness.suites import num_patches_to_drop
from mixpro_core import token_stride

SIZE, PATCH, RATIOS, GRIDS = 32, 8, (0.0, 0.25, 0.5, 0.9), (2, 4)
MEAN = torch.tensor(IMAGENET_DEFAULT_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(IMAGENET_DEFAULT_STD).view(1, 3, 1, 1)


class Spy(torch.nn.Module):
    """The classifier, recording each input it receives (normalised images (B,3,H,W))."""

    def __init__(self, model):
        super().__init__()
        self.model, self.seen = model, []
        self.token_stride = token_stride(model.backbone)

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.model(x)


def _cells(x: torch.Tensor, grid: int) -> torch.Tensor:
    """(B,C,H,W) → (B, grid·grid, C·(H/grid)·(W/grid)): the cells row-major, written out with plain slicing."""
    b, _, h, w = x.shape
    ph, pw = h // grid, w // grid
    return torch.stack([x[:, :, r * ph:(r + 1) * ph, c * pw:(c + 1) * pw].reshape(b, -1)
                        for r in range(grid) for c in range(grid)], 1)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Pixels of every pass of evaluate_robustness on 6 random RGB images: {"clean": x, ("occlusion", r): x,
    ("shuffle", g): x}, each (6,3,32,32), concatenated over the batches."""
    from mmengine.config import Config
    from mmengine.registry import MODELS
    from timm.data import ImageNetInfo

    tmp_path = tmp_path_factory.mktemp("robustness")
    wnid = ImageNetInfo().label_names()[0]
    folder = tmp_path / "data" / "val" / wnid
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    config = tmp_path / "tiny.py"
    config.write_text(
        'custom_imports = dict(imports=["classification.register_all"], allow_failed_imports=False)\n'
        'model = dict(type="MixClassifier", num_classes=1000, backbone=dict(type="tiny_vit", img_size=32, '
        'patch_size=8, in_chans=3, embed_dim=16, depth=1, num_heads=1, drop_path_rate=0.0), mix=[])\n'
        f'test_dataloader = dict(batch_size=4, num_workers=0, dataset=dict(type="ImageNetFolder", '
        f'root="{tmp_path / "data"}", split="val", transform=dict(type="timm", is_train=False, input_size=32)))\n')
    model = MODELS.build(Config.fromfile(str(config)).model)
    ckpt = tmp_path / "ckpt.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {}}, ckpt)
    spies = []
    real = evaluate.load_classifier

    def spied(cfg, checkpoint, **options):
        spies.append(Spy(real(cfg, checkpoint, **options)))
        return spies[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluate, "load_classifier", spied)
        evaluate.evaluate_robustness(str(config), str(ckpt), ["occlusion", "shuffle"], device="cpu", progress=False,
                                     occlusion_ratios=RATIOS, occlusion_patch_size=PATCH, shuffle_grids=GRIDS)
    keys = ["clean"] + [("occlusion", r) for r in RATIOS] + [("shuffle", g) for g in GRIDS]
    seen = spies[0].seen
    assert len(seen) == 2 * len(keys)  # two batches (4 + 2 images), each pass in this order
    return {k: torch.cat([seen[i] for i in (j, j + len(keys))]) * STD + MEAN for j, k in enumerate(keys)}


def test_clean_images_reach_the_model_normalised_once(recorded):
    clean = recorded["clean"]
    assert clean.min() >= -1e-6 and clean.max() <= 1 + 1e-6 and clean.max() > 0.9 and clean.min() < 0.1
    assert torch.allclose(clean * 255, (clean * 255).round(), atol=1e-3)  # 8-bit pixels, not a float mix


def test_occluded_cells_are_black_in_pixel_space_and_the_rest_untouched(recorded):
    clean = _cells(recorded["clean"], SIZE // PATCH)
    grid_cells = (SIZE // PATCH) ** 2
    for ratio in RATIOS:
        occluded = _cells(recorded[("occlusion", ratio)], SIZE // PATCH)
        black = (occluded.abs() < 1e-5).all(-1)  # (B, cells): every pixel of every channel is 0
        kept = torch.isclose(occluded, clean, atol=1e-5).all(-1)
        assert bool((black | kept).all()), ratio
        dropped = black & ~kept
        for batch in (dropped[:4], dropped[4:]):  # the same cells in every image of a batch
            assert torch.equal(batch, batch[:1].expand_as(batch)), ratio
        assert dropped.sum(-1).tolist() == [num_patches_to_drop(grid_cells, ratio)] * 6, ratio


def test_shuffled_images_are_a_permutation_of_whole_cells(recorded):
    for grid in GRIDS:
        clean, shuffled = _cells(recorded["clean"], grid), _cells(recorded[("shuffle", grid)], grid)
        for rows in (slice(0, 4), slice(4, 6)):  # one permutation per batch: cell j is cell perm[j] of the clean one
            match = (shuffled[rows, :, None] - clean[rows, None]).abs().amax(-1) < 1e-5  # (B, j, source)
            perm = match[0].float().argmax(-1)
            assert bool(match[0].any(-1).all()) and sorted(perm.tolist()) == list(range(grid * grid)), grid
            assert torch.equal(shuffled[rows], clean[rows][:, perm]), grid
            assert perm.tolist() != list(range(grid * grid)), grid  # a draw that moves nothing would prove nothing


def test_geometry_checks_refuse_each_bad_side_and_accept_the_smallest_cells():
    """(survivors of make mutate on suites.py) one side that does not divide is enough to refuse; a size of 0 is a
    ValueError, not a division by zero; 1-px patches and a 1×1 shuffle grid are legal."""
    from classification.experiments.robustness.suites import drop_patches, patch_grid, shuffle_patches

    for size in ((32, 30), (30, 32)):
        with pytest.raises(ValueError, match=f"patch size 8 does not divide the {size[0]}x{size[1]} input"):
            patch_grid(size, 8)
        with pytest.raises(ValueError, match=f"a 4x4 grid does not divide the {size[0]}x{size[1]} input"):
            shuffle_patches(torch.zeros(1, 1, *size), 4)
    with pytest.raises(ValueError, match="patch size 0 does not divide"):
        patch_grid((32, 32), 0)
    with pytest.raises(ValueError, match="a 0x0 grid does not divide"):
        shuffle_patches(torch.zeros(1, 1, 4, 4), 0)
    assert patch_grid((4, 6), 1) == (4, 6)
    x = torch.rand(2, 3, 4, 6)
    assert torch.equal(shuffle_patches(x, 1), x)
    assert int((drop_patches(x, 1, 5, torch.Generator().manual_seed(0))[0, 0] == 0).sum()) == 5


def test_drop_patches_takes_every_count_up_to_the_whole_grid_and_keeps_the_dtype():
    from classification.experiments.robustness.suites import drop_patches, num_patches_to_drop

    x = torch.rand(2, 3, 16, 16) + 0.1
    assert torch.equal(drop_patches(x, 4, 16), torch.zeros_like(x))  # ratio 1.0: all 16 cells
    with pytest.raises(ValueError, match=r"num_drop=17 outside 0\.\.16 \(a 4x4 grid of 4-px patches\)"):
        drop_patches(x, 4, 17)
    for dtype in (torch.bfloat16, torch.float16, torch.float64):
        assert drop_patches(x.to(dtype), 4, 3).dtype == dtype
    with pytest.raises(ValueError, match=r"drop ratio must be in \[0, 1\], got 1.5"):
        num_patches_to_drop(16, 1.5)


def test_split_normalize_takes_out_exactly_the_one_normalisation():
    """(survivors of make mutate on suites.py) a bare Normalize, a Compose without one (identity: mean 0, std 1),
    and the refusals: two Normalize steps, a nested Compose, a transform that is no Compose."""
    from torchvision import transforms as T

    from classification.experiments.robustness.suites import split_normalize

    norm = T.Normalize((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    assert split_normalize(norm) == (None, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    rest, mean, std = split_normalize(T.Compose([T.ToTensor()]))
    assert (mean, std) == ((0.0,), (1.0,)) and [type(t) for t in rest.transforms] == [T.ToTensor]
    assert split_normalize(None) == (None, (0.0,), (1.0,))
    twice = T.Compose([T.ToTensor(), norm, norm])
    with pytest.raises(ValueError, match=r"normalises 2 times; expected at most once"):
        split_normalize(twice)
    with pytest.raises(ValueError, match="nests a Compose; cannot locate its normalisation"):
        split_normalize(T.Compose([T.Compose([T.ToTensor()]), norm]))
    with pytest.raises(ValueError, match="cannot take the normalisation out of transform .*: expected a torchvision "
                                         "Compose"):
        split_normalize(lambda img: img)


@pytest.mark.gpu
def test_perturbations_of_cuda_images_stay_on_the_gpu_and_match_the_cpu():
    """The masks and permutations are drawn on the CPU generator and moved to the images' device."""
    from classification.experiments.robustness.suites import drop_patches, shuffle_patches

    x = torch.rand(2, 3, 16, 16)
    for fn, arg in ((drop_patches, dict(patch_size=4, num_drop=5)), (shuffle_patches, dict(grid=4))):
        cpu = fn(x, **arg, generator=torch.Generator().manual_seed(1))
        gpu = fn(x.cuda(), **arg, generator=torch.Generator().manual_seed(1))
        assert gpu.is_cuda and torch.equal(gpu.cpu(), cpu)
