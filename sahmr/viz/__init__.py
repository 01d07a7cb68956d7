"""Plotting functions the notebooks call (so notebooks stay a few lines a cell): interactive plotly 3D
scenes, image overlays and matplotlib distribution plots."""
