"""The model-randomisation sanity check (Adebayo et al. 2018, "Sanity Checks for Saliency
Maps"): re-initialise the network's weights and recompute the attributions. A method that
explains the *model* must change; one that mostly reflects the input (an edge detector)
barely does. Similarity is the Spearman rank correlation of the two maps per image.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from scipy.stats import rankdata
from torch import Tensor, nn

__all__ = ["randomized_copy", "rank_correlation"]


def randomized_copy(model: nn.Module, seed: int) -> nn.Module:
    """A deep copy of `model` with every layer re-initialised (`reset_parameters`, and
    running statistics reset) from torch seed `seed`; the original is untouched. Eval mode."""
    clone = copy.deepcopy(model)
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        n_reset = 0
        for m in clone.modules():
            if hasattr(m, "reset_parameters") and any(True for _ in m.parameters(recurse=False)):
                m.reset_parameters()
                n_reset += 1
            if hasattr(m, "reset_running_stats"):
                m.reset_running_stats()
    finally:
        torch.random.set_rng_state(state)
    if n_reset == 0:
        raise ValueError("the model has no layer with reset_parameters(): nothing to randomise")
    return clone.eval()


def rank_correlation(a: Tensor, b: Tensor) -> Tensor:
    """Spearman correlation of maps a and b (N, ...) per row -> (N,) float64, in [-1, 1].
    Tied values share their average rank (a ReLU'd map has many zeros); a constant map
    correlates 0 with anything."""
    if a.shape != b.shape or a.ndim < 2:
        raise ValueError(f"maps must share a batched shape (N, ...), got {tuple(a.shape)} and {tuple(b.shape)}")
    ra = rankdata(a.detach().flatten(1).cpu().double().numpy(), axis=1)
    rb = rankdata(b.detach().flatten(1).cpu().double().numpy(), axis=1)
    ra, rb = ra - ra.mean(1, keepdims=True), rb - rb.mean(1, keepdims=True)
    denom = np.linalg.norm(ra, axis=1) * np.linalg.norm(rb, axis=1)
    rho = np.where(denom > 0, (ra * rb).sum(1) / np.maximum(denom, 1e-300), 0.0)
    return torch.from_numpy(rho)
