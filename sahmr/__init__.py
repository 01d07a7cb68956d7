"""sahmr — scene-aware human mesh recovery: a reproducible research kit re-implementing SAHMR (CVPR 2023).

Layers (data flows one way): body → data → models → train → eval → viz; `geometry` and `sparse` are
leaves that every layer may use. See README.md and docs/DESIGN.md.
"""

__version__ = "0.1.0"
