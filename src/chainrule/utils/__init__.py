"""``chainrule.utils``: tools around training that are not layers (PyTorch's
``torch.utils``): ``checkpoint`` trades compute for memory."""

from chainrule.utils import checkpoint

__all__ = ["checkpoint"]
