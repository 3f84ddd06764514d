"""Shared dashboard components: ipywidgets/bqplot pieces for Voila (``widgets``) and Panel pieces."""
