"""transformers' Auto classes learn this package's models as soon as both packages are imported.

``AutoModel.from_pretrained(folder)`` (and MusicGen's ``audio_encoder``, ``AutoProcessor``, ...)
only knows a model type once its classes are registered, which happens when ``codecs`` and
``conditioning`` are imported. Importing them eagerly from the package root would make every
``import hf_musiccodec`` pay for torch and transformers' model code (seconds), which the command
line's ``--help`` and the audio helpers never need. So the root registers at once when
transformers is already imported, and otherwise right after transformers' own import finishes.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

# Importing each of these registers its configs, models and processors with the Auto classes.
REGISTERING_MODULES = ("hf_musiccodec.codecs", "hf_musiccodec.conditioning", "hf_musiccodec.models.vampnet")


def register_auto_classes() -> None:
    for name in REGISTERING_MODULES:
        importlib.import_module(name)


class _RegisterAfterTransformers(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the real loader of ``transformers`` so that registration runs
    once the module has executed, then steps out of ``sys.meta_path``. It stays in place until
    transformers really executes: a mere ``importlib.util.find_spec("transformers")`` (gradio
    makes one) also passes through here and must not use it up."""

    _searching = False

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "transformers" or self._searching:
            return None
        self._searching = True  # the search below comes back through this finder
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._searching = False
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module
        finder = self

        def exec_module(module):
            if finder in sys.meta_path:
                sys.meta_path.remove(finder)
            execute(module)
            # A module of ours that imported transformers is itself still executing: importing it
            # again returns it as it stands, and it registers its classes when it finishes.
            register_auto_classes()

        spec.loader.exec_module = exec_module
        return spec


def register_when_transformers_is_imported() -> None:
    if "transformers" in sys.modules:
        register_auto_classes()
    elif not any(isinstance(f, _RegisterAfterTransformers) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterTransformers())
