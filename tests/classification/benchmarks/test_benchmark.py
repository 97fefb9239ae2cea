"""classification.benchmarks.micro (tools/benchmark.py): every subcommand runs at tiny sizes and prints its Markdown
table with the machine and the command; the two CLS-attention paths agree; the CPU peak-memory measure sees torch
allocations; --json."""
import json

import pytest
import torch

import classification.benchmarks.micro as B
from classification.benchmarks.common import peak_extra_bytes

TINY = ["--batch", "2", "--repeats", "1", "--warmup", "0", "--device", "cpu"]


def check_header(out: str, command: str):
    assert "machine: " in out and "CPUs" in out and "GPU: " in out
    assert "stack: python " in out and f"torch {torch.__version__}" in out and "timm " in out
    assert f"command: `python tools/benchmark.py {command}" in out


def test_mix(capsys):
    result = B.main(["mix", "--size", "32", "--mask-size", "8", "--patch-size", "4", *TINY])
    out = capsys.readouterr().out
    check_header(out, "mix --size 32")
    assert "| mixer | ms / batch |" in out and "speed-up over the per-sample numpy reference" in out
    ms, speedup = result["data"]["ms"], result["data"]["speedup"]
    assert set(speedup) == {"mask generation", "MaskMix (masks + blend)"} and all(t > 0 for t in ms.values())
    assert speedup["mask generation"] == pytest.approx(ms["maskmix masks only (per-sample numpy reference)"]
                                                       / ms["maskmix masks only (ours, batched)"])
    assert speedup["MaskMix (masks + blend)"] == pytest.approx(
        ms["maskmix (per-sample numpy reference: masks + blend)"] / ms["maskmix (ours, batched: masks + blend)"])


def test_attention_paths_agree_and_json_is_written(capsys, tmp_path):
    path = tmp_path / "bench" / "attention.json"
    result = B.main(["attention", "--model", "tiny_vit", *TINY, "--json", str(path)])
    out = capsys.readouterr().out
    check_header(out, "attention --model tiny_vit")
    assert "| path | ms / forward | peak memory (MiB) |" in out and "max |ours − materialised|" in out
    data = result["data"]
    assert data["max_abs_diff"] < 1e-5
    assert data["peak_bytes"]["ours"] > 0 and data["peak_bytes"]["materialised"] > 0
    saved = json.loads(path.read_text())
    assert saved["data"]["max_abs_diff"] == data["max_abs_diff"] and saved["command"].startswith("python tools/")
    assert saved["machine"]["cpu_count"] >= 1


def test_materialised_attention_equals_ours_and_leaves_the_model_as_it_was():
    model = B.build_backbone("tiny_vit", "cpu").eval()
    x, _ = B.inputs("tiny_vit", 3, "cpu")
    with torch.no_grad():
        logits_ref, ref = B.materialised_cls_attention(model, x)
        logits, ours = B.forward_with_attention(model, x)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(logits, logits_ref, atol=1e-5, rtol=1e-5)
    assert model.blocks[-1].attn.fused_attn and not model.blocks[-1].attn.attn_drop._forward_hooks


def test_cpu_peak_memory_sees_a_known_allocation():
    def allocate():
        a = torch.ones(1_000_000)  # 4 MB, freed before the 8 MB one is made
        del a
        return torch.ones(2_000_000)
    peak = peak_extra_bytes(allocate, "cpu")
    assert 8_000_000 <= peak < 12_000_000


def test_step(capsys):
    result = B.main(["step", "--models", "tiny_vit", "--methods", "cutmix", "tlalign", "smmix", *TINY])
    out = capsys.readouterr().out
    check_header(out, "step --models tiny_vit")
    assert "| method | tiny_vit: ms / step (× none) | tiny_vit: peak MiB (× none) |" in out
    assert "TL-Align over plain CutMix (step time): tiny_vit" in out
    data = result["data"]["tiny_vit"]
    assert set(data["ratio"]) == set(data["peak_ratio"]) == {"none", "cutmix", "tlalign", "smmix"}
    ms, peak = data["ms"], data["peak_bytes"]  # each method's step time and peak memory over the step without mixing
    assert data["ratio"] == pytest.approx({m: t / ms["none"] for m, t in ms.items()})
    assert data["peak_ratio"] == pytest.approx({m: v / peak["none"] for m, v in peak.items()})
    assert peak["smmix"] > 0 and peak["none"] > 0
    with pytest.raises(SystemExit, match="unknown"):
        B.main(["step", "--models", "tiny_vit", "--methods", "tl-align", *TINY])


def test_step_runs_every_method_of_the_registry(monkeypatch):
    """Every registered method has a step entry, pinned in STEP_METHODS or with its defaults (a new one too)."""
    from mixpro_core import METHODS
    monkeypatch.setitem(METHODS._entries, "late-method", METHODS.get("tlalign"))
    methods = B.step_methods()
    assert methods["late-method"] == dict(method=dict(type="late-method"))
    assert set(methods) >= set(B.STEP_METHODS)
    for name in METHODS.names():
        assert name == "schedule" or any(m.get("method", {}).get("type") == name for m in methods.values()), name
    for name, keys in methods.items():  # each builds
        assert B.build_classifier("tiny_vit", "cpu", **keys).method is not None, name


def test_throughput(capsys):
    result = B.main(["throughput", "--model", "tiny_vit", *TINY])
    out = capsys.readouterr().out
    check_header(out, "throughput --model tiny_vit")
    assert "timm.data.Mixup" in out and "img/s" in out
    stats = result["data"]["stats"]
    for pipeline in ("ours", "timm"):  # img/s = B / mean step time (batch 2)
        assert stats[pipeline]["img_per_s"] == pytest.approx(2e3 / stats[pipeline]["mean_ms"])
    assert result["data"]["ratio"] == pytest.approx(stats["ours"]["img_per_s"] / stats["timm"]["img_per_s"])
    with pytest.raises(SystemExit, match="even batch"):
        B.main(["throughput", "--model", "tiny_vit", "--batch", "3", "--repeats", "1", "--warmup", "0"])


def peaked_backbone(build):
    """``build`` with the last block's queries and keys scaled ×8: a peaked CLS attention, which a uniform row (what
    the untrained model nearly gives) misses by far more than the bf16 tolerance."""
    def peaked(name, device):
        model = build(name, device)
        attn = model.blocks[-1].attn
        with torch.no_grad():
            attn.qkv.weight[:2 * attn.qkv.in_features] *= 8.0
            attn.qkv.bias[:2 * attn.qkv.in_features] *= 8.0
        return model
    return peaked


def test_bf16_autocast_runs_on_the_cpu_too(capsys, monkeypatch):
    monkeypatch.setattr(B, "build_backbone", peaked_backbone(B.build_backbone))
    model = B.build_backbone("tiny_vit", "cpu")
    with torch.no_grad():
        _, reference = B.materialised_cls_attention(model, B.inputs("tiny_vit", 2, "cpu")[0])  # fp32
    assert (reference - reference.sum(1, keepdim=True) / reference.shape[1]).abs().max() > 0.2, "not peaked"
    att = B.main(["attention", "--model", "tiny_vit", "--amp", "bf16", *TINY])
    assert "bf16 autocast" in capsys.readouterr().out and att["data"]["max_abs_diff"] < 1e-2
    step = B.main(["step", "--models", "tiny_vit", "--amp", "bf16", *TINY])
    assert set(step["data"]["tiny_vit"]["ms"]) == set(B.step_methods())
