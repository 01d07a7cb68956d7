"""Networks: image backbones (timm), SPVCNN, RCNet."""
