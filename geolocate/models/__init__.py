"""Models: a timm-style registry of backbones with tiny twins, converters, fusion and the sniper.

`create_model(name, num_classes=..., pretrained=..., weights=..., **kwargs)` is the one way in;
`list_models(pattern)` and `model_info(name)` describe what is registered without building it.
Importing this package does not import torch (the CLI lists models without it).
"""

from geolocate.models.registry import BackboneSpec, create_model, get_spec, is_tiny, list_models, model_info, register_model

__all__ = ["BackboneSpec", "create_model", "get_spec", "is_tiny", "list_models", "model_info", "register_model"]
