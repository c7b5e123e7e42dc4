"""Training configuration: one validated, frozen record (``FitConfig``) per run.

Load it from YAML or JSON with :func:`load_config`, override fields with
:func:`FitConfig.replace`, write it back with :func:`save_config`. Every field
has a default, so ``FitConfig()`` is a sensible MNIST run.

>>> cfg = FitConfig(arch=(784, 64, 10), epochs=2)
>>> cfg.optimizer, cfg.lr
('adam', 0.003)
>>> FitConfig.from_dict({"learning_rate": 0.1})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
fnn.training.config.ConfigError: unknown config key 'learning_rate'; did you mean 'lr'? (valid keys: arch, dataset, ...)
"""

from __future__ import annotations

import json
import os

import attrs

from fnn import optim
from fnn.layers import ACTIVATIONS
from fnn.serving.pipelines import KINDS

SCHEDULES = ("constant", "step", "exponential", "cosine")
MAX_PARAMS = 1 << 30  # 4 GB of float32 weights, about 16 GB with Adam's state: refused before anything is allocated


class ConfigError(ValueError):
    """A configuration value or file is invalid; the message names it."""


def _positive(kind):
    def check(inst, attr, value):
        if kind is int:
            _whole(1)(inst, attr, value)
        elif not isinstance(value, kind) or isinstance(value, bool) or not 0 < value < float("inf"):  # NaN fails too
            raise ConfigError(f"{attr.name} must be a positive {kind.__name__}, got {value!r}")

    return check


def _whole(minimum):
    """A whole number (a Python ``int``, not a bool, not ``1.5``) of at least ``minimum``."""

    def check(inst, attr, value):
        if type(value) is not int:
            raise ConfigError(f"{attr.name} must be a whole number, got {value!r}")
        if value < minimum:
            raise ConfigError(f"{attr.name} must be {'a positive whole number' if minimum == 1 else f'>= {minimum}'}, got {value!r}")

    return check


def _nonneg_float(inst, attr, value):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0 or value == float("inf"):
        raise ConfigError(f"{attr.name} must be a number >= 0, got {value!r}")


def _fraction(inst, attr, value):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < 1:
        raise ConfigError(f"{attr.name} must be in [0, 1), got {value!r}")


def _one_of(choices):
    def check(inst, attr, value):
        if value not in choices:
            raise ConfigError(f"unknown {attr.name} {value!r}; choose from {', '.join(choices)}")

    return check


def _optional(check):
    def wrapped(inst, attr, value):
        if value is not None:
            check(inst, attr, value)

    return wrapped


def _to_float(v):
    return float(v) if isinstance(v, int) and not isinstance(v, bool) else v


def parse_arch(value) -> tuple:
    """An architecture in its canonical tuple (:mod:`fnn.training.arch`): layer sizes ``"784,128,64,10"`` ->
    ``(784, 128, 64, 10)``; a layer list ``"conv32x3,pool2,dense128,10"`` -> ``('conv32x3', 'pool2', 'dense128', 10)``;
    a preset ``"lenet5"`` -> ``('lenet5',)``. A string with commas or a list; :class:`ConfigError` names a bad one."""
    from fnn.training import arch

    try:
        return arch.parse(value)
    except arch.ArchError as e:
        raise ConfigError(str(e)) from None


def parse_augment(value) -> dict | None:
    """The ``augment`` key (:func:`fnn.datasets.augment.parse`): None, ``"none"``, ``"digits"``, ``"photos"``,
    ``"shift=2,rotate=10"`` or a mapping -> the full mapping of options, or None (no augmentation)."""
    from fnn.datasets import augment

    try:
        return augment.parse(value)
    except augment.AugmentError as e:
        raise ConfigError(str(e)) from None


@attrs.frozen(kw_only=True)
class FitConfig:
    """Everything that determines a training run (and so its weights, bit for bit)."""

    arch: tuple = attrs.field(default=(784, 128, 64, 10), converter=parse_arch)
    dataset: str = attrs.field(default="mnist", validator=attrs.validators.instance_of(str))
    activation: str = attrs.field(default="relu", validator=_one_of(tuple(ACTIVATIONS)))
    init: str | None = attrs.field(default=None)
    dropout: float = attrs.field(default=0.0, validator=_fraction)
    #: Augmentation of each training batch (:mod:`fnn.datasets.augment`), stored as its full mapping of options.
    augment: dict | None = attrs.field(default=None, converter=parse_augment)
    optimizer: str = attrs.field(default="adam", validator=_one_of(tuple(optim.OPTIMIZERS)))
    lr: float = attrs.field(default=3e-3, validator=_positive(float), converter=lambda v: _to_float(v))
    schedule: str = attrs.field(default="cosine", validator=_one_of(SCHEDULES))
    #: The fraction of the peak ``lr`` the schedule decays to, in [0, 1): where the cosine ends (optax's ``alpha``),
    #: the least rate of ``step`` and ``exponential``; ``constant`` ignores it.
    lr_floor: float = attrs.field(default=0.01, validator=_fraction, converter=lambda v: _to_float(v))
    warmup: int = attrs.field(default=0, validator=_whole(0))
    batch_size: int = attrs.field(default=128, validator=_positive(int))
    epochs: int = attrs.field(default=10, validator=_positive(int))
    weight_decay: float | None = attrs.field(default=None, validator=_optional(_nonneg_float))
    l1: float = attrs.field(default=0.0, validator=_nonneg_float)
    l2: float = attrs.field(default=0.0, validator=_nonneg_float)
    clip_norm: float | None = attrs.field(default=None, validator=_optional(_positive(float)),
                                          converter=lambda v: _to_float(v) if v is not None else v)
    val_split: float = attrs.field(default=0.1, validator=_fraction)
    early_stopping: int | None = attrs.field(default=None, validator=_optional(_positive(int)))
    min_delta: float = attrs.field(default=0.0, validator=_nonneg_float)
    seed: int = attrs.field(default=0, validator=_whole(0))
    standardize: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    grayscale: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    #: How the pad and ``fnn-cli predict`` preprocess images for the model (:mod:`fnn.serving.pipelines`):
    #: digits, fashion, rgb32 or none; None: by the dataset (mnist, fashion-mnist, cifar10), else by the input size.
    preprocessing: str | None = attrs.field(default=None, validator=_optional(_one_of(KINDS)))
    diagnostics: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))

    @init.validator
    def _check_init(self, attribute, value):
        from fnn.initializers import INITIALIZERS

        if value is not None and value not in INITIALIZERS:
            raise ConfigError(f"unknown init {value!r}; choose from {', '.join(INITIALIZERS)}")

    @classmethod
    def keys(cls) -> list[str]:
        return [a.name for a in attrs.fields(cls)]

    @classmethod
    def from_dict(cls, data: dict) -> FitConfig:
        """Build from a mapping; an unknown key is an error naming it, the nearest valid key, and the valid ones."""
        if not isinstance(data, dict):
            raise ConfigError(f"a config must be a mapping of keys to values, got {type(data).__name__}")
        for k in data:
            if k not in cls.keys():
                near = suggest_key(k)
                hint = f"did you mean {near!r}? (valid keys: {', '.join(cls.keys())})" if near else f"valid keys: {', '.join(cls.keys())}"
                raise ConfigError(f"unknown config key {k!r}; {hint}")
        try:
            return cls(**{k.replace("-", "_"): v for k, v in data.items()})
        except TypeError as e:
            raise ConfigError(str(e)) from None

    def to_dict(self) -> dict:
        d = attrs.asdict(self)
        d["arch"] = list(self.arch)
        d["augment"] = None if self.augment is None else dict(self.augment)
        return d

    def replace(self, **changes) -> FitConfig:
        """A copy with ``changes`` applied (validated like the original)."""
        return FitConfig.from_dict({**self.to_dict(), **changes})

    @property
    def arch_name(self) -> str:
        from fnn.training import arch

        return arch.name(self.arch)


#: Names other libraries (Keras, PyTorch, scikit-learn, ...) use for a config key, where one key is meant.
ALIASES = {
    "learning_rate": "lr", "lr_rate": "lr", "eta": "lr",
    "lr_schedule": "schedule", "lr_scheduler": "schedule", "scheduler": "schedule",
    "num_epochs": "epochs", "n_epochs": "epochs", "max_epochs": "epochs", "nb_epoch": "epochs", "epoch": "epochs",
    "batchsize": "batch_size", "bs": "batch_size", "minibatch_size": "batch_size",
    "momentum": "optimizer",  # fnn's SGD with momentum is ``optimizer: momentum``
    "optim": "optimizer", "opt": "optimizer",
    "warmup_epochs": "warmup", "lr_warmup": "warmup",
    "decay": "weight_decay", "wd": "weight_decay",
    "clipnorm": "clip_norm", "max_norm": "clip_norm", "grad_clip": "clip_norm", "clip_grad_norm": "clip_norm",
    "gradient_clip_val": "clip_norm",
    "validation_split": "val_split", "valid_split": "val_split",
    "patience": "early_stopping", "early_stopping_patience": "early_stopping",
    "random_seed": "seed", "random_state": "seed", "rng_seed": "seed",
    "kernel_initializer": "init", "initializer": "init", "weight_init": "init",
    "dropout_rate": "dropout", "drop_rate": "dropout", "p_dropout": "dropout",
    "hidden_sizes": "arch", "layer_sizes": "arch", "layers": "arch", "architecture": "arch",
    "data": "dataset", "dataset_name": "dataset",
    "activation_fn": "activation", "act": "activation", "nonlinearity": "activation",
    "augmentation": "augment", "data_augmentation": "augment", "augmentations": "augment",
}


def suggest_key(key) -> str | None:
    """The valid config key nearest ``key`` (a known synonym, else a close spelling), or None.

    >>> suggest_key("learning_rate"), suggest_key("epoch"), suggest_key("batchsize"), suggest_key("zzz")
    ('lr', 'epochs', 'batch_size', None)
    """
    import difflib

    if not isinstance(key, str):
        return None
    keys = FitConfig.keys()
    norm = key.strip().lower().replace("-", "_").replace(" ", "_")
    if norm in keys:
        return norm
    if norm in ALIASES:
        return ALIASES[norm]
    near = difflib.get_close_matches(norm, keys, n=1, cutoff=0.6)
    return near[0] if near else None


def _parse_error(path, e, kind) -> str:
    """One line naming ``path``, the line and column of a YAML/JSON parse error ``e``, and the problem."""
    if isinstance(e, json.JSONDecodeError):
        return f"config file {path} is not valid JSON: line {e.lineno}, column {e.colno}: {e.msg}"
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    problem = getattr(e, "problem", None) or getattr(e, "context", None)
    if mark is not None:
        return f"config file {path} is not valid {kind}: line {mark.line + 1}, column {mark.column + 1}: {problem or type(e).__name__}"
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return f"config file {path} is not valid {kind}: {first}"


#: The largest config (or sweep) file read, refused before it is parsed: fnn's own are under 1 KiB, and the worst
#: YAML of this size (a flow list of 32,000 numbers) parses in about 3 s; one of 1 MiB took 41 s.
MAX_CONFIG_BYTES = 64 << 10


def read_mapping(path) -> dict:
    """Read a YAML (``.yaml``/``.yml``) or JSON file holding one mapping.

    Only a regular file of at most :data:`MAX_CONFIG_BYTES` of UTF-8 text is read (a pipe or a device is
    refused without blocking on it); anything else is a :class:`ConfigError` naming ``path``.
    """
    from fnn.serialization import read_regular

    path = os.fspath(path)
    try:
        raw = read_regular(path, MAX_CONFIG_BYTES, what="a config file")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory, not a file") from None
    except OSError as e:
        raise ConfigError(f"config file {path} cannot be read: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start})") from None
    try:
        if path.endswith(".json"):
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as e:  # yaml.MarkedYAMLError and json.JSONDecodeError carry positions
        raise ConfigError(_parse_error(path, e, "JSON" if path.endswith(".json") else "YAML")) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys to values")
    return data


def load_config(path, **overrides) -> FitConfig:
    """``FitConfig`` from a YAML/JSON file, with ``overrides`` applied on top."""
    data = read_mapping(path)
    try:
        return FitConfig.from_dict({**data, **overrides})
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def save_config(path, config: FitConfig) -> None:
    """Write ``config`` as YAML (fully resolved, enough to repeat the run)."""
    import yaml

    from fnn.serialization import atomic_write

    text = yaml.safe_dump(config.to_dict(), sort_keys=False)
    atomic_write(path, lambda f: f.write(text.encode()))
