"""Checks of a config and its ``--cfg-options`` before anything is built, each failure a one-line
:class:`~classification.foundation.errors.UserError` naming the file, key or value.

mmengine merges ``--cfg-options`` silently, new keys included. :func:`check_cfg_options` allows a key that the config
lacks only where something will read it: a parameter of what the enclosing dict is built into — its registered
``type`` (in mmengine's registries under the config's ``default_scope``, or mixpro_core's), or for sections built
without one, the Runner (top level), the train / val / test loop, ``OptimWrapper`` or ``DataLoader`` — where that
constructor takes ``**kwargs``, or a ``type`` no registry knows, any key; overriding a top-level key the Runner never
reads (a config-file variable, substituted when the file was read) is refused, and a value replacing a number or a
bool must be one. :func:`check_training_options` catches wrong loop / optimiser values and batch sizes,
:func:`check_class_counts` more class folders than classes and a top-k of as many classes, :func:`check_data_roots`
missing datasets. What only a model or dataset type knows, that type checks itself through a class-level hook the
engine looks up from the config's ``type`` (:func:`type_hook`): :func:`validate_training_config` (the model's
``check_training_config``), :func:`check_cache_sampler` (each dataset's ``check_loader_config``) and
:func:`check_class_counts` (a dataset's ``config_class_count``, a metric's ``check_class_count``).
"""
from __future__ import annotations

import difflib
import os.path as osp
from typing import Any, Callable, Iterable, List, Mapping, Optional, Sequence, Set, Union

from mmengine.config import Config
from mmengine.runner import Runner

from classification.foundation.errors import MissingPathError, UserError

# keys mmengine or we read besides the Runner's parameters (Runner.from_cfg / Runner / classification.foundation.host)
ROOT_EXTRAS = {"custom_imports", "model_wrapper_cfg", "runner_type", "compile", "activation_checkpointing",
               "efficient_conv_bn_eval", "load_from_partial", "load_from_ema"}
# keys the builders take out of a section before calling its constructor
SECTION_EXTRAS = {"optim_wrapper": {"constructor", "paramwise_cfg"}, "param_scheduler": {"convert_to_iter_based"},
                  "default_hooks": {"priority"}, "custom_hooks": {"priority"}, "train_cfg": {"by_epoch"}}
# filled by the builder, never by the config
RESERVED = {"self", "runner", "dataloader", "evaluator", "params", "optimizer"}
ENV_KEYS = {"cudnn_benchmark", "mp_cfg", "dist_cfg", "resource_limit", "num_threads"}  # Runner.setup_env, foundation/host.py


def load_config(path: str, cfg_options: Optional[Mapping[str, Any]] = None, *,
                import_custom_modules: bool = True) -> Config:
    """``Config.fromfile(path)`` with ``cfg_options`` applied (:func:`apply_cfg_options`); MissingPathError for a
    missing file. ``import_custom_modules=False`` leaves the config's ``custom_imports`` unimported (a reader of
    values only, such as the paper plan: no model code loaded; option keys under types that nothing registered then
    go unchecked)."""
    if not osp.isfile(path):
        raise MissingPathError(f"config not found: {path}")
    cfg = Config.fromfile(path, import_custom_modules=import_custom_modules)
    apply_cfg_options(cfg, cfg_options)
    return cfg


def apply_cfg_options(cfg: Config, cfg_options: Optional[Mapping[str, Any]]) -> None:
    """Merge ``cfg_options`` into ``cfg`` after :func:`check_cfg_options`."""
    if cfg_options:
        check_cfg_options(cfg, cfg_options)
        cfg.merge_from_dict(cfg_options)


def _registries() -> list:
    from mmengine import registry as mm
    return [mm.MODELS, mm.DATASETS, mm.DATA_SAMPLERS, mm.TRANSFORMS, mm.HOOKS, mm.LOOPS, mm.OPTIMIZERS,
            mm.OPTIM_WRAPPERS, mm.OPTIM_WRAPPER_CONSTRUCTORS, mm.PARAM_SCHEDULERS, mm.METRICS, mm.EVALUATOR,
            mm.LOG_PROCESSORS, mm.VISUALIZERS, mm.VISBACKENDS, mm.FUNCTIONS, mm.WEIGHT_INITIALIZERS,
            mm.MODEL_WRAPPERS, mm.RUNNERS, mm.TASK_UTILS]


def registered(name: str, scope: Optional[str]) -> List[Callable]:
    """Everything registered as ``name``: in mmengine's registries (through ``scope``'s child registries, as the
    builders search) and in mixpro_core's (mixers, label policies)."""
    from mixpro_core.registry import LABEL_POLICIES, MIXERS
    found = []
    for registry in _registries():
        with registry.switch_scope_and_registry(scope) as scoped:
            obj = scoped.get(name)
        if obj is not None and obj not in found:
            found.append(obj)
    found += [r.get(name) for r in (MIXERS, LABEL_POLICIES) if name in r]
    return found


def _parameters(fn: Callable) -> Optional[Set[str]]:
    """The keyword names ``fn`` (a class: its constructor) takes; None when it takes ``**kwargs``."""
    from mixpro_core.registry import accepted_names
    try:
        return accepted_names(fn)
    except (TypeError, ValueError):  # no signature (a builtin): cannot tell
        return None


def _section_targets(cfg: Config, path: Sequence[Union[str, int]], node: Mapping) -> Optional[List[Callable]]:
    """What the dict at ``path`` is built into: [] when nothing takes new keys, None when anything may."""
    from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop, TestLoop, ValLoop
    kind = node.get("type")
    if isinstance(kind, str):
        return registered(kind, cfg.get("default_scope")) or None  # unknown to every registry: cannot tell
    if kind is not None:
        return [kind]
    if not path:
        return [Runner]
    if len(path) == 1:
        from mmengine.optim import OptimWrapper
        from mmengine.runner import LogProcessor
        from torch.utils.data import DataLoader
        name = path[0]
        if name == "train_cfg":
            return [EpochBasedTrainLoop if node.get("by_epoch", True) else IterBasedTrainLoop]
        implied = {"val_cfg": ValLoop, "test_cfg": TestLoop, "optim_wrapper": OptimWrapper,
                   "log_processor": LogProcessor, "randomness": Runner.set_randomness}
        if name in implied:
            return [implied[name]]
        if str(name).endswith("_dataloader"):
            return [DataLoader]
    return []


def _options(targets: Sequence[Callable], path: Sequence[Union[str, int]]) -> Optional[Set[str]]:
    """The keys the section at ``path`` takes (None: any)."""
    names: Set[str] = set()
    for target in targets:
        taken = _parameters(target)
        if taken is None:
            return None
        names |= taken
    if not path:
        names |= ROOT_EXTRAS
    elif path == ("env_cfg",):
        names |= ENV_KEYS
    elif path[0] in SECTION_EXTRAS:
        names |= SECTION_EXTRAS[path[0]]
    return names - RESERVED


def _closest(word: str, candidates: Iterable[str]) -> str:
    match = difflib.get_close_matches(word, sorted(set(map(str, candidates))), n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ""


def _where(targets: Sequence[Callable]) -> str:
    return " / ".join(getattr(t, "__qualname__", getattr(t, "__name__", repr(t))) for t in targets)


def check_cfg_options(cfg: Config, options: Mapping[str, Any]) -> None:
    """Refuse an ``--cfg-options`` key that would be merged silently without effect (see the module docstring)."""
    runner_keys = _options([Runner], ())
    tree = cfg.to_dict()
    for key, value in options.items():
        option = f"--cfg-options {key}={value!r}"
        first = key.split(".")[0]
        if first in tree and first not in runner_keys:
            raise UserError(f"{option}: '{first}' is a variable of the config file, already substituted where the "
                            f"file uses it: overriding it changes nothing; override the keys that use it instead")
        node: Any = tree
        path: tuple = ()
        for part in key.split("."):
            if isinstance(node, (list, tuple)):
                if not part.isdigit() or int(part) >= len(node):
                    raise UserError(f"{option}: '{_dotted(path)}' is a list of {len(node)} entries; '{part}' is not "
                                    f"one of its indices")
                node, path = node[int(part)], path + (int(part),)
            elif not isinstance(node, Mapping):
                raise UserError(f"{option}: '{_dotted(path)}' is {node!r}, which has no key '{part}'")
            elif part in node:
                node, path = node[part], path + (part,)
            else:
                _check_new_key(cfg, option, node, path, part)
                break
        else:
            _check_value_type(option, node, value)


def _check_value_type(option: str, old: Any, new: Any) -> None:
    """A value replacing a number must be a number, one replacing a bool a bool (``None`` replaces and is replaced
    by anything; strings, lists and dicts are left to what reads them)."""
    if old is None or new is None:
        return
    if isinstance(old, bool):
        expected, ok = "True or False", isinstance(new, bool)
    elif isinstance(old, int):
        expected, ok = "an integer", isinstance(new, int) and not isinstance(new, bool)
    elif isinstance(old, float):
        expected, ok = "a number", isinstance(new, (int, float)) and not isinstance(new, bool)
    else:
        return
    if not ok:
        raise UserError(f"{option}: expected {expected}, like the value it replaces ({old!r})")


def _dotted(path: Sequence[Union[str, int]]) -> str:
    return ".".join(map(str, path))


def _check_new_key(cfg: Config, option: str, node: Mapping, path: tuple, part: str) -> None:
    """``part`` is not in the dict ``node`` at ``path``: allowed only where its constructor takes it."""
    targets = _section_targets(cfg, path, node)
    names = None if targets is None else _options(targets, path)
    if names is None or part in names:
        return
    if not path:
        raise UserError(f"{option}: the config has no key '{part}'{_closest(part, set(node) | names)}")
    if not targets:
        raise UserError(f"{option}: '{_dotted(path)}' has no key '{part}' and nothing would read a new one (its "
                        f"keys: {', '.join(sorted(map(str, node)))}){_closest(part, node)}")
    raise UserError(f"{option}: '{_dotted(path)}' is built into {_where(targets)}, which takes no option "
                    f"'{part}'{_closest(part, names | set(node))}")


def check_training_options(cfg: Config) -> None:
    """The train / val batch sizes and the train loop's lengths and intervals are integers (at least 1; ``val_begin``
    at least 0) and the optimiser
    config builds: a dry build on one dummy parameter catches unknown keywords and invalid values (lr < 0, betas
    outside [0, 1), ...) before the Runner is made."""
    check_batch_sizes(cfg, ("train_dataloader", "val_dataloader"))
    loop = cfg.get("train_cfg") or {}
    for key in ("max_epochs", "max_iters", "val_interval", "val_begin"):
        value = loop.get(key)
        lowest = 0 if key == "val_begin" else 1
        if key in loop and (not isinstance(value, int) or isinstance(value, bool) or value < lowest):
            raise UserError(f"train_cfg.{key}={value!r}: must be an integer of at least {lowest}")
    optimizer = (cfg.get("optim_wrapper") or {}).get("optimizer")
    if not isinstance(optimizer, Mapping) or "type" not in optimizer:
        return
    import torch
    from mmengine.registry import OPTIMIZERS
    dummy = torch.nn.Parameter(torch.zeros(1))
    with OPTIMIZERS.switch_scope_and_registry(cfg.get("default_scope")) as registry:
        try:
            registry.build(dict(optimizer, params=[dummy]))
        except (TypeError, ValueError, KeyError) as err:
            raise UserError(f"optim_wrapper.optimizer={dict(optimizer)!r}: {err}") from err
        except RuntimeError:  # device-dependent (e.g. fused=True on a CPU tensor): the Runner's build decides
            pass


def check_batch_sizes(cfg: Config, loaders: Sequence[str]) -> None:
    """The ``batch_size`` of each of ``loaders`` that sets one is an integer of at least 1."""
    for name in loaders:
        loader = cfg.get(name)
        if isinstance(loader, Mapping) and "batch_size" in loader:
            value = loader["batch_size"]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UserError(f"{name}.batch_size={value!r}: must be an integer of at least 1")


def model_num_classes(cfg: Config) -> Optional[int]:
    """The class count the config's model is built with (``model.num_classes``, else the backbone's), None if it
    sets none."""
    model = cfg.get("model") or {}
    for node in (model, model.get("backbone") or {}):
        value = node.get("num_classes") if isinstance(node, Mapping) else None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def type_hook(registry, node: Any, name: str) -> Any:
    """The class-level hook ``name`` (a classmethod, or a class attribute) of the type that the config dict ``node``
    builds: its ``type``, a name registered in ``registry`` (mmengine's root registries, where our classes are
    registered: the engine imports none of them) or the class itself; None where ``node`` names no such type or the
    type defines no such hook. The engine asks types through these hooks instead of naming them (docs/development.md,
    "How it fits together")."""
    kind = node.get("type") if isinstance(node, Mapping) else None
    cls = registry.get(kind) if isinstance(kind, str) else kind
    return getattr(cls, name, None) if isinstance(cls, type) else None


def _class_folders(dataset: Mapping) -> Optional[int]:
    """The number of class folders the dataset config reads: its type's ``config_class_count(dataset_cfg)``
    (:func:`type_hook`; an image-folder dataset), None where the type has none or the count is unknown."""
    from mmengine.registry import DATASETS
    count = type_hook(DATASETS, dataset, "config_class_count")
    return None if count is None else count(dataset)


def check_class_counts(cfg: Config, loaders: Sequence[str], evaluators: Sequence[str]) -> None:
    """Before anything is built: an image-folder dataset of ``loaders`` with more class folders than the model has
    classes (its labels would fall outside the logits), and each metric of the ``evaluators`` checked by its type's
    ``check_class_count(key, metric_cfg, num_classes)`` (:func:`type_hook`; a top-k accuracy with k at least the
    class count). The class count is the dataset's class folders where known, else the model's ``num_classes``."""
    classes = model_num_classes(cfg)
    for name in loaders:
        loader = cfg.get(name)
        dataset = loader.get("dataset") if isinstance(loader, Mapping) else None
        found = _class_folders(dataset) if isinstance(dataset, Mapping) else None
        if found is None:
            continue
        if classes is not None and found > classes:
            raise UserError(f"{name}.dataset: {osp.join(dataset['root'], dataset.get('split', 'train'))} holds "
                            f"{found} class folders but the model has num_classes={classes}: set model.num_classes="
                            f"{found}")
        classes = found if classes is None else min(classes, found)
    if classes is None:
        return
    from mmengine.registry import METRICS
    for name in evaluators:
        entries = cfg.get(name)
        for i, entry in enumerate(entries if isinstance(entries, (list, tuple)) else [entries]):
            check = type_hook(METRICS, entry, "check_class_count")
            if check is not None:
                check(name if not isinstance(entries, (list, tuple)) else f"{name}.{i}", entry, classes)


def check_data_roots(cfg: Config, loaders: Sequence[str]) -> None:
    """MissingPathError when a ``root`` / ``data_root`` of the datasets of ``loaders`` (wrapped datasets included) is
    not a folder or file on this machine, with the dataset type's ``missing_root_hint`` (:func:`type_hook`) if any."""
    from mmengine.registry import DATASETS

    def visit(node: Any, where: str) -> None:
        if isinstance(node, (list, tuple)):
            for i, item in enumerate(node):
                visit(item, f"{where}.{i}")
        elif isinstance(node, Mapping):
            for key in ("root", "data_root"):
                path = node.get(key)
                if isinstance(path, str) and path and "://" not in path and not osp.exists(path):
                    hint = type_hook(DATASETS, node, "missing_root_hint")
                    raise MissingPathError(f"{where}.{key}: dataset folder {path} does not exist"
                                           + (f" ({hint})" if hint else ""))
            for key in ("dataset", "datasets"):
                if key in node:
                    visit(node[key], f"{where}.{key}")

    for name in loaders:
        loader = cfg.get(name)
        if isinstance(loader, Mapping):
            visit(loader.get("dataset"), f"{name}.dataset")


def validate_training_config(cfg) -> None:
    """The model's own checks of a training config (one with a ``train_dataloader``): its type's
    ``check_training_config(cfg)`` (:func:`type_hook`), e.g. a MixClassifier run that cannot mix."""
    from mmengine.registry import MODELS
    check = type_hook(MODELS, cfg.get("model"), "check_training_config")
    if check is not None and cfg.get("train_dataloader"):
        check(cfg)


def check_cache_sampler(cfg) -> None:
    """Each dataloader (train/val/test) of the config ``cfg`` checked by its dataset type's
    ``check_loader_config(key, dataset_cfg, sampler_cfg)`` (:func:`type_hook`), e.g. an ImageNetZip that caches only
    each rank's shard read by a sampler that deals other indices."""
    from mmengine.registry import DATASETS
    for key in ("train_dataloader", "val_dataloader", "test_dataloader"):
        loader = cfg.get(key) or {}
        dataset = loader.get("dataset") or {}
        check = type_hook(DATASETS, dataset, "check_loader_config")
        if check is not None:
            check(key, dataset, loader.get("sampler") or {})
