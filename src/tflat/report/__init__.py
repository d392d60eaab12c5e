"""Renderers: turn collected results into tables, CSV, JSON, HTML and overlays."""
