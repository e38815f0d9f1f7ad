"""The shared training loop with a minimal non-codec solver: trains, checkpoints, resumes exactly, exports."""

import json
import shutil
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset
from transformers import PretrainedConfig, PreTrainedModel

from hf_musiccodec.training.base_solver import BaseSolver, BaseTrainingConfig, check_known


class TinyRegressorConfig(PretrainedConfig):
    model_type = "tiny_regressor"

    def __init__(self, width: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.width = width


class TinyRegressor(PreTrainedModel):
    config_class = TinyRegressorConfig

    def __init__(self, config):
        super().__init__(config)
        self.linear = torch.nn.Linear(config.width, 1)
        self.post_init()

    def forward(self, x):
        return torch.nn.functional.dropout(self.linear(x), 0.1, self.training)  # uses the solver's RNG


@dataclass
class RegressionConfig(BaseTrainingConfig):
    width: int = 3


class RegressionSolver(BaseSolver):
    config_class = RegressionConfig

    def build(self):
        self.add_model("model", TinyRegressor(TinyRegressorConfig(width=self.cfg.width)))
        x = torch.randn(20, self.cfg.width)
        self.train_set = TensorDataset(x, x.sum(1, keepdim=True))

    def train_step(self, batch):
        x, y = batch
        loss = F.mse_loss(self.model(x), y)
        self.backward(loss)
        return {"loss": loss}


def _run(tmp_path, name, **overrides):
    cfg = RegressionConfig(output_dir=str(tmp_path / name), batch_size=3, gradient_accumulation_steps=2,
                           learning_rate=0.05, lr_decay=0.9, report_to=None, log_every=100, validate_every=100,
                           save_every=2, keep_checkpoints=5, **overrides)
    solver = RegressionSolver(cfg)
    folder = solver.fit()
    return solver, folder


def test_a_minimal_solver_trains_resumes_exactly_and_exports(tmp_path):
    threads = torch.get_num_threads()
    whole, folder = _run(tmp_path, "whole", max_steps=8, num_threads=threads + 1)
    assert torch.get_num_threads() == threads  # only the command line applies num_threads
    model = TinyRegressor.from_pretrained(folder)
    assert json.loads((folder / "training_state.json").read_text())["step"] == 8
    assert whole.state.batches == 16

    # Killed after step 5 (checkpoint step_4 complete), resumed with a new solver: same weights.
    _run(tmp_path, "cut", max_steps=5)
    shutil.rmtree(tmp_path / "cut" / "checkpoints" / "step_5")
    resumed, _ = _run(tmp_path, "cut", max_steps=8)
    for name, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    assert torch.equal(model.linear.weight, resumed.model.linear.weight)
    assert resumed._trained[0].scheduler.get_last_lr() == whole._trained[0].scheduler.get_last_lr()


def test_build_must_add_a_model_and_a_training_set(tmp_path):
    class Empty(BaseSolver):
        def build(self):
            pass

    with pytest.raises(ValueError, match="add_model"):
        Empty(BaseTrainingConfig(output_dir=str(tmp_path), report_to=None))


def test_unknown_options_name_their_close_matches(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"learning_rat": 0.1}))
    with pytest.raises(ValueError, match=r"unknown training options: 'learning_rat' \(did you mean 'learning_rate'"):
        RegressionConfig.load(str(path))
    with pytest.raises(ValueError, match=r"unknown things: 'zzz'$"):
        check_known("things", ["zzz", "a"], ["a", "b"])


def test_numbers_written_without_a_dot_load_as_numbers(tmp_path):
    # YAML 1.1 reads 5e-4 as a string; the optimizer must still get a float
    path = tmp_path / "c.yaml"
    path.write_text("learning_rate: 1e-3\nmax_grad_norm: 2\n")
    cfg = BaseTrainingConfig.load(str(path), ["lr_decay=5e-1"])
    assert (cfg.learning_rate, cfg.max_grad_norm, cfg.lr_decay) == (1e-3, 2.0, 0.5)
    assert all(isinstance(v, float) for v in (cfg.learning_rate, cfg.max_grad_norm, cfg.lr_decay))
    assert BaseTrainingConfig.load(None, ["max_grad_norm=null"]).max_grad_norm is None
    with pytest.raises(ValueError, match=r"learning_rate must be a number, got 'fast'$"):
        BaseTrainingConfig.load(None, ["learning_rate=fast"])
