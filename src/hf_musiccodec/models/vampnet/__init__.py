"""VampNet: masked acoustic token modeling. Importing this registers model type ``vampnet`` with
transformers' ``AutoConfig`` and ``AutoModel``."""

from transformers import AutoConfig, AutoModel

from .configuration_vampnet import VampNetConfig
from .modeling_vampnet import VampNetModel, VampNetOutput, VampNetPreTrainedModel

AutoConfig.register(VampNetConfig.model_type, VampNetConfig, exist_ok=True)
AutoModel.register(VampNetConfig, VampNetModel, exist_ok=True)

__all__ = ["VampNetConfig", "VampNetModel", "VampNetOutput", "VampNetPreTrainedModel"]
