"""Image priors: networks that a Deep Image Prior fits (classic skip net, light CPU nets, deep decoder)."""

from engine.dip.priors.deep_decoder import DeepDecoder
from engine.dip.priors.skip import ShuffledSkipNet, SkipNet, classic_skip_net, light_skip_net

__all__ = ["DeepDecoder", "ShuffledSkipNet", "SkipNet", "classic_skip_net", "light_skip_net"]
