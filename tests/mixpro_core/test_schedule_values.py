"""The schedule's documented contract (mixpro_core/schedule.py, docs/methods.md "Method schedule") as values, for the
parts the frequency tests do not reach (found by ``make mutate MODULES=mixpro_core/schedule.py``): a class mixer gets
its options and the defaults it takes, never a per-batch argument from the config; the ``model`` a schedule is called
with reaches a mixer that asks for it; a single certain entry draws no uniform, two entries always draw one.
"""
import pytest
import torch

from mixpro_core import MIXERS, MixBatch, MixSchedule, build_mixer, build_schedule, no_mix


class Recorder(torch.nn.Module):
    """A stateful (class) mixer recording its constructor options and its calls."""

    def __init__(self, alpha=1.0, patch_size=None):
        super().__init__()
        self.alpha, self.patch_size, self.calls = alpha, patch_size, []

    def forward(self, images, labels=None, model=None, generator=None):
        self.calls.append(dict(labels=labels, model=model, generator=generator))
        return no_mix(images)


@pytest.fixture
def registered():
    """Recorder as mixer 'test-recorder' and a function mixer 'test-model-user' that stores the model it gets."""
    seen = {}

    def model_user(images, model, generator=None, strength=0.5):
        seen.update(model=model, strength=strength)
        return no_mix(images)

    MIXERS.register("test-recorder")(Recorder)
    MIXERS.register("test-model-user")(model_user)
    try:
        yield seen
    finally:
        MIXERS._entries.pop("test-recorder")
        MIXERS._entries.pop("test-model-user")


def test_a_class_mixer_gets_its_options_and_only_the_defaults_it_takes(registered):
    mixer = build_mixer(dict(type="test-recorder", alpha=0.3), defaults=dict(patch_size=16, num_classes=10))
    assert isinstance(mixer, Recorder) and (mixer.alpha, mixer.patch_size) == (0.3, 16)
    overridden = build_mixer(dict(type="test-recorder", patch_size=8), defaults=dict(patch_size=16))
    assert (overridden.alpha, overridden.patch_size) == (1.0, 8)  # the config's options win over defaults
    for reserved in ("labels", "model", "generator", "images"):  # filled per batch, never from a config
        with pytest.raises(ValueError, match=rf"mixer \(test-recorder\): unknown key\(s\) \['{reserved}'\]"):
            build_mixer(dict(type="test-recorder", **{reserved: None}))
    with pytest.raises(ValueError, match=r"mixer \(test-recorder\): unknown key\(s\) \['beta'\]"):
        build_mixer(dict(type="test-recorder", beta=2.0))


def test_the_schedule_passes_labels_model_and_generator_through(registered):
    model, labels, gen = torch.nn.Linear(1, 1), torch.arange(2), torch.Generator().manual_seed(0)
    schedule = build_schedule([dict(type="test-recorder", prob=1.0)])
    assert isinstance(schedule(torch.zeros(2, 1, 4, 4), labels, model, gen), MixBatch)
    call = schedule.mixers[0].calls[-1]
    assert call["labels"] is labels and call["model"] is model and call["generator"] is gen
    function = build_schedule([dict(type="test-model-user", prob=1.0, strength=0.2)])
    function(torch.zeros(2, 1, 4, 4), labels, model, gen)
    assert registered == dict(model=model, strength=0.2)


def test_a_function_mixer_prints_its_name_and_options(registered):
    mixer = build_mixer(dict(type="test-model-user", strength=0.2))
    assert mixer.extra_repr() == "test-model-user, strength=0.2"


def _draws(schedule: MixSchedule) -> bool:
    """Whether one ``choose`` consumes randomness from its generator."""
    gen = torch.Generator().manual_seed(7)
    before = gen.get_state()
    schedule.choose(gen)
    return not torch.equal(before, gen.get_state())


def test_only_a_single_certain_entry_skips_the_uniform(registered):
    one = build_mixer(dict(type="test-recorder"))
    assert not _draws(MixSchedule([(one, 1.0)]))  # certain: no draw, so the mixer's own stream is unchanged
    assert _draws(MixSchedule([(one, 0.9)]))
    assert _draws(MixSchedule([(one, 1.0), (build_mixer(dict(type="test-recorder")), 0.0)]))
    assert not _draws(MixSchedule([]))
    assert MixSchedule([(one, 1.0)]).choose(None) == 0


def test_a_class_mixer_taking_any_keyword_still_refuses_the_per_batch_names(registered):
    class Open(torch.nn.Module):
        def __init__(self, **options):
            super().__init__()
            self.options = options

    MIXERS.register("test-open")(Open)
    try:
        assert build_mixer(dict(type="test-open", alpha=0.3), defaults=dict(patch_size=16)).options == dict(
            alpha=0.3, patch_size=16)
        with pytest.raises(ValueError, match=r"mixer \(test-open\): unknown key\(s\) \['labels'\]; allowed: any"):
            build_mixer(dict(type="test-open", labels=None))
    finally:
        MIXERS._entries.pop("test-open")


@pytest.mark.parametrize("cfg", ["mixup", dict(type="mixup", prob=1.0), 3])
def test_a_schedule_that_is_not_a_list_is_refused_as_such(cfg):
    with pytest.raises(ValueError, match="mix must be a list of mixer configs"):
        build_schedule(cfg)


def test_find_returns_the_first_mixer_of_a_name(registered):
    schedule = build_schedule([dict(type="test-model-user", prob=0.3, strength=0.1),
                               dict(type="mixup", prob=0.3), dict(type="test-model-user", prob=0.3, strength=0.9)])
    assert schedule.find("test-model-user") is schedule.mixers[0] and schedule.find("mixup") is schedule.mixers[1]
    assert schedule.find("cutmix") is None
