"""One training loop for every model of the package (Accelerate).

:class:`BaseSolver` owns what every run needs: processes and devices, gradient accumulation,
mixed precision, crash-safe checkpoints with an exact resume, trackers, a progress bar, the
validation schedule and the export of the trained model with ``save_pretrained``. A solver for
one model family subclasses it and fills in three hooks: :meth:`~BaseSolver.build` (models,
optimizers, datasets), :meth:`~BaseSolver.train_step` (losses of one micro-batch) and, if it
validates, :meth:`~BaseSolver.validate`. Its options subclass :class:`BaseTrainingConfig`.

A complete solver (``TinyRegressor`` is any ``PreTrainedModel``; the test suite trains, resumes
and exports this one)::

    @dataclass
    class RegressionConfig(BaseTrainingConfig):
        width: int = 3

    class RegressionSolver(BaseSolver):
        config_class = RegressionConfig

        def build(self):
            self.add_model("model", TinyRegressor(TinyRegressorConfig(width=self.cfg.width)))
            x = torch.randn(64, self.cfg.width)
            self.train_set = TensorDataset(x, x.sum(1, keepdim=True))

        def train_step(self, batch):
            x, y = batch
            loss = F.mse_loss(self.model(x), y)
            self.backward(loss)
            return {"loss": loss}

    RegressionSolver(RegressionConfig(max_steps=100, output_dir="runs/regression")).fit()

``add_model`` gives the model an AdamW optimizer (``learning_rate``, ``betas``) and an
exponential learning-rate decay (``lr_decay`` per optimizer step) unless told otherwise; the base
steps every optimizer, clips its gradients and zeroes them at the end of each accumulation.
A command-line entry point is one call: ``command_line(RegressionSolver)``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import itertools
import json
import logging
import time
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
import yaml
from accelerate import DistributedDataParallelKwargs
from accelerate.utils import GradientAccumulationPlugin, set_seed
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm

from ..utils.files import atomic_save_folder
from ..utils.launch import new_accelerator
from .checkpoints import CheckpointManager, TrainState


def check_known(what: str, given: Iterable[str], known: Iterable[str]) -> None:
    """A misspelled option is an error, not silently dropped: one line naming it and its close matches."""
    known = sorted(known)
    unknown = sorted(set(given) - set(known))
    if unknown:
        named = []
        for key in unknown:
            close = difflib.get_close_matches(key, known, n=3)
            named.append(f"{key!r} (did you mean {' or '.join(map(repr, close))}?)" if close else repr(key))
        raise ValueError(f"unknown {what}: {', '.join(named)}")


def numbers_as_declared(config_class, values: dict) -> dict:
    """``values`` with each number-typed option a number: YAML 1.1 reads ``5e-4`` (no dot) as a string,
    which would otherwise reach the optimizer as one. A value that is not a number is a one-line error."""
    hints = typing.get_type_hints(config_class)
    converted = dict(values)
    for key, value in values.items():
        declared = set(typing.get_args(hints[key])) or {hints[key]}
        if float in declared and isinstance(value, (str, int)) and not isinstance(value, bool):
            try:
                converted[key] = float(value)
            except ValueError:
                raise ValueError(f"training option {key} must be a number, got {value!r}") from None
    return converted


@dataclass
class BaseTrainingConfig:
    """Options of every run; a model family's config subclasses it (and may change defaults)."""

    # --- run
    output_dir: str = "runs/train"
    seed: int = 0
    max_steps: int = 10_000                               # optimizer steps
    log_every: int = 25
    validate_every: int = 500                   # 0: only after the last step
    save_every: int = 250
    keep_checkpoints: int = 2
    report_to: str | None = "tensorboard"
    num_threads: int | None = None                        # torch CPU threads, applied by command_line only

    # --- data
    batch_size: int = 8                                   # per process and micro-batch
    num_workers: int = 0

    # --- optimisation
    learning_rate: float = 3e-4
    betas: tuple = (0.9, 0.999)
    lr_decay: float = 1.0                                 # exponential, per optimizer step
    gradient_accumulation_steps: int = 1                  # micro-batches per optimizer step
    max_grad_norm: float | None = None                    # None: no clipping
    mixed_precision: str = "no"                           # "no", "bf16" or "fp16" (where supported)

    @classmethod
    def load(cls, path: str | None = None, overrides: list[str] | None = None):
        """The config of a YAML or JSON file, with ``key=value`` overrides (values parsed as YAML)."""
        values = {}
        if path:
            text = Path(path).read_text()
            values = (json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)) or {}
        for item in overrides or []:
            key, sep, raw = item.partition("=")
            if not sep:
                raise ValueError(f"override {item!r} is not key=value")
            values[key.strip()] = yaml.safe_load(raw)
        check_known("training options", values, (f.name for f in dataclasses.fields(cls)))
        config = cls(**numbers_as_declared(cls, values))
        config.validate()
        return config

    def validate(self) -> None:
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise ValueError(f"mixed_precision must be no, bf16 or fp16, got {self.mixed_precision!r}")
        if self.gradient_accumulation_steps < 1 or self.batch_size < 1:
            raise ValueError("batch_size and gradient_accumulation_steps must be at least 1")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class EpochSampler(Sampler):
    """A shuffle that is a function of (seed, epoch) alone: the same on every process (Accelerate
    then gives each its shard of the batches) and in a resumed run, which a ``RandomSampler``
    drawing from a running generator would not be."""

    def __init__(self, size: int, seed: int):
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())


@dataclass
class _Trained:
    name: str
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    max_grad_norm: float | None


class BaseSolver:
    """The loop; see the module docstring for a complete subclass.

    Subclasses set ``config_class`` and implement :meth:`build` and :meth:`train_step`; optionally
    :meth:`validate` and :meth:`export_model`. Extra state that must survive a resume (say an EMA
    of statistics) is an object with ``state_dict``/``load_state_dict`` passed to
    ``self.accelerator.register_for_checkpointing`` in :meth:`build`.
    """

    config_class: type[BaseTrainingConfig] = BaseTrainingConfig
    name = "train"                    # tracker project and progress bar label
    progress_metric = "loss"          # the log shown on the progress bar
    find_unused_parameters = False    # DDP: True if some parameters may get no gradient in a step

    def __init__(self, cfg: BaseTrainingConfig):
        cfg.validate()
        self.cfg = cfg
        self.output_dir = Path(cfg.output_dir)
        self.accelerator = new_accelerator(
            # Accumulation counts micro-batches only (not epoch ends), so optimizer step n always
            # ends with micro-batch n * k: a resume knows where it is and k micro-batches always
            # make one step.
            gradient_accumulation_plugin=GradientAccumulationPlugin(
                num_steps=cfg.gradient_accumulation_steps, sync_with_dataloader=False),
            # lr_decay is per optimizer step whatever the number of processes (Accelerate would
            # step the schedule once per process).
            step_scheduler_with_optimizer=False,
            mixed_precision=cfg.mixed_precision, log_with=cfg.report_to, project_dir=str(self.output_dir),
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=self.find_unused_parameters)],
        )
        set_seed(cfg.seed)  # the same initial weights on every process and in every run of this config
        self.state = TrainState()
        self.accelerator.register_for_checkpointing(self.state)
        self.train_set = None
        self._trained: list[_Trained] = []
        self.build()
        if self.train_set is None or not self._trained:
            raise ValueError(f"{type(self).__name__}.build must set self.train_set and call add_model")
        self._prepare()
        self.checkpoints = CheckpointManager(self.output_dir / "checkpoints", cfg.keep_checkpoints)

    # ------------------------------------------------------------------ hooks
    def build(self) -> None:
        """Create the models (``add_model``), ``self.train_set`` and anything the steps need."""
        raise NotImplementedError

    def train_step(self, batch) -> dict:
        """Losses of one micro-batch: call ``self.backward(loss)`` for each loss to optimise and
        return the logs (tensors or numbers). Optimizer steps happen in the base."""
        raise NotImplementedError

    def validate(self) -> dict:
        """Metrics at each validation step; runs on the main process only (no collectives)."""
        return {}

    def after_optimizer_step(self) -> None:
        """Runs after every optimizer step, before logging and checkpoints (e.g. an EMA update)."""

    def export_model(self):
        """The model ``export`` saves (default: the first one added), unwrapped."""
        return self.accelerator.unwrap_model(self._trained[0].model)

    # ------------------------------------------------------------------ helpers for subclasses
    def add_model(self, name: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None,
                  scheduler=None, max_grad_norm: float | None = None) -> None:
        """Train ``model``, afterwards available (prepared) as ``self.<name>``. Defaults: AdamW with
        ``learning_rate`` and ``betas``, exponential decay ``lr_decay``, clipping at ``max_grad_norm``."""
        cfg = self.cfg
        optimizer = optimizer or torch.optim.AdamW(model.parameters(), cfg.learning_rate, betas=tuple(cfg.betas))
        scheduler = scheduler or torch.optim.lr_scheduler.ExponentialLR(optimizer, cfg.lr_decay)
        clip = cfg.max_grad_norm if max_grad_norm is None else max_grad_norm
        self._trained.append(_Trained(name, model, optimizer, scheduler, clip))
        setattr(self, name, model)

    def backward(self, loss: torch.Tensor) -> None:
        """Accumulate the gradient of ``loss`` (Accelerate divides it by the accumulation steps)."""
        self.accelerator.backward(loss)

    # ------------------------------------------------------------------ internals
    def _prepare(self) -> None:
        cfg = self.cfg
        sampler = EpochSampler(len(self.train_set), cfg.seed)
        loader = DataLoader(self.train_set, batch_size=cfg.batch_size, sampler=sampler, drop_last=True,
                            num_workers=cfg.num_workers)
        objects = [loader] + [o for t in self._trained for o in (t.model, t.optimizer, t.scheduler)]
        prepared = self.accelerator.prepare(*objects)
        self.loader = prepared[0]
        for i, trained in enumerate(self._trained):
            trained.model, trained.optimizer, trained.scheduler = prepared[1 + 3 * i: 4 + 3 * i]
            setattr(self, trained.name, trained.model)

    @contextlib.contextmanager
    def _model_rng(self):
        """Torch's random numbers for one micro-batch, drawn from (seed, micro-batch index).

        They are the same on every process, so random choices inside a model agree across ranks
        (e.g. the codec's quantizer dropout, which lives in the model, drops the same codebooks
        everywhere and DDP reduces gradients of the same parameters), while each process still
        gets its own data from the sampler. They are also what an uninterrupted run drew, so a
        resumed run continues exactly, and the caller's RNG state is restored afterwards.
        """
        device = self.accelerator.device
        with torch.random.fork_rng(devices=[] if device.type == "cpu" else [device], device_type=device.type):
            torch.manual_seed(int(np.random.SeedSequence([self.cfg.seed, self.state.batches]).generate_state(1)[0]))
            yield

    def _optimizer_steps(self) -> dict:
        logs = {}
        for trained in self._trained:
            params = list(trained.model.parameters())
            if all(p.grad is None for p in params):
                continue  # not trained in this step (a discriminator before its warm-up): its schedule waits
            if trained.max_grad_norm is not None:
                logs[f"grad_norm/{trained.name}"] = self.accelerator.clip_grad_norm_(params, trained.max_grad_norm)
            trained.optimizer.step()
            trained.scheduler.step()
            # After the step, never before backward: a zero_grad there would drop the micro-batches
            # accumulated so far.
            trained.optimizer.zero_grad(set_to_none=True)
        return logs

    def batches(self):
        """Endless micro-batches of this process, starting where a resumed run stopped."""
        per_epoch = len(self.loader)  # this process's share of an epoch
        if per_epoch == 0:
            raise ValueError(f"batch_size {self.cfg.batch_size} is larger than the {len(self.train_set)} training "
                             f"items (per process)")
        epoch, skip = divmod(self.state.batches, per_epoch)
        for epoch in itertools.count(epoch):
            if hasattr(self.train_set, "set_epoch"):
                self.train_set.set_epoch(epoch)
            self.loader.set_epoch(epoch)
            yield from (self.accelerator.skip_first_batches(self.loader, skip) if skip else self.loader)
            skip = 0

    def tracker_writer(self, name: str):
        """The writer of the active tracker ``name`` (tensorboard's ``SummaryWriter``, say), or
        ``None`` where it is not in use: not in ``report_to``, not installed (Accelerate then drops
        it with a warning) or not on this process."""
        return next((t.tracker for t in self.accelerator.trackers if getattr(t, "name", None) == name), None)

    def resume(self) -> None:
        latest = self.checkpoints.latest()
        if latest is not None:
            self.accelerator.load_state(str(latest))
            self.accelerator.print(f"resumed from {latest} at step {self.state.step}")

    def fit(self) -> Path:
        """Train to ``max_steps`` (resuming from the newest checkpoint) and return the export folder."""
        cfg, acc = self.cfg, self.accelerator
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if acc.is_main_process:
            (self.output_dir / "training_config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
        if cfg.report_to:
            acc.init_trackers(self.name, config={k: v for k, v in cfg.to_dict().items()
                                                 if isinstance(v, (int, float, str, bool))})
        self.resume()
        progress = tqdm(total=cfg.max_steps, initial=self.state.step, disable=not acc.is_local_main_process,
                        desc=self.name, dynamic_ncols=True)
        started, first_step = time.time(), self.state.step
        models = [t.model for t in self._trained]
        for batch in self.batches():
            if self.state.step >= cfg.max_steps:
                break
            for model in models:
                model.train()  # validation may have left them in eval mode
            with acc.accumulate(*models), self._model_rng():
                logs = self.train_step(batch)
            self.state.batches += 1
            if not acc.sync_gradients:
                continue
            logs.update(self._optimizer_steps())
            self.after_optimizer_step()
            self.state.step += 1
            progress.update(1)
            self._after_step(logs, started, first_step, progress)
        progress.close()
        acc.end_training()
        return self.output_dir / "model"

    def _after_step(self, logs: dict, started: float, first_step: int, progress) -> None:
        cfg, acc, step = self.cfg, self.accelerator, self.state.step
        last = step == cfg.max_steps
        if step % cfg.log_every == 0 or last:
            scalars = {k: float(acc.reduce(v.detach(), "mean")) if torch.is_tensor(v) else float(v)
                       for k, v in logs.items()}
            scalars["lr"] = self._trained[0].scheduler.get_last_lr()[0]
            scalars["steps_per_second"] = (step - first_step) / max(time.time() - started, 1e-9)
            acc.log(scalars, step=step)
            if self.progress_metric in scalars:
                progress.set_postfix({self.progress_metric: f"{scalars[self.progress_metric]:.3f}"})
            acc.print(json.dumps({"step": step, **{k: round(v, 5) for k, v in scalars.items()}}))
        if (cfg.validate_every and step % cfg.validate_every == 0) or last:
            if acc.is_main_process:
                metrics = self.validate()
                if metrics:
                    acc.log(metrics, step=step)
                    acc.print(json.dumps({"step": step, **{k: round(v, 4) for k, v in metrics.items()}}))
            acc.wait_for_everyone()
        if step % cfg.save_every == 0 or last:
            self.checkpoints.save(acc, step)
            self.export(self.output_dir / "model")

    def export(self, folder: Path) -> None:
        """``export_model()`` with ``save_pretrained``, swapped in atomically (a reader never sees half)."""
        if not self.accelerator.is_main_process:
            return
        def save(tmp: Path) -> None:
            self.export_model().save_pretrained(tmp)
            (tmp / "training_state.json").write_text(json.dumps({"step": self.state.step}))

        atomic_save_folder(folder, save)


def command_line(solver_class: type[BaseSolver], argv=None, prog: str | None = None,
                 description: str | None = None) -> Path:
    """The ``python -m`` entry point of a solver: ``--config FILE [--set key=value ...]``.

    It owns its process, so it alone applies process-wide settings: logging and ``num_threads``
    (the solver itself never changes them for its caller).
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", help=f"YAML or JSON file of {solver_class.config_class.__name__} fields")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override config fields")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    cfg = solver_class.config_class.load(args.config, args.set)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    folder = solver_class(cfg).fit()
    print(f"model saved to {folder}")
    return folder
