"""NaN and infinity never become an image: one check, raised as ``NonFiniteError`` naming where it happened.

A NaN in a style's weights, an fp16 overflow in a UNet or VAE, or an absurd prompt weight turns every pixel
into NaN, which PIL writes as an all-black PNG with exit 0.  The sampler checks each step's latents, the
engine the decoded images, and the styles loader the weights of a style it just loaded.
"""

from __future__ import annotations

import torch

from ..core.errors import NonFiniteError


def check_finite(tensor: torch.Tensor, where: str, fix: str) -> None:
    """Raise ``NonFiniteError("… became NaN/infinite at {where}; {fix}.")`` unless every value is finite."""
    if tensor.dtype.is_floating_point and not bool(torch.isfinite(tensor).all()):
        kind = "NaN" if bool(torch.isnan(tensor).any()) else "infinite"
        raise NonFiniteError(f"The generation's numbers became {kind} at {where}, so no image was written; {fix}.")


def non_finite_parameters(module: torch.nn.Module, marker: str) -> list[str]:
    """Names of ``module``'s parameters containing ``marker`` (an adapter's name) that hold NaN or infinity."""
    return [name for name, param in module.named_parameters()
            if marker in name and param.dtype.is_floating_point and not bool(torch.isfinite(param).all())]
