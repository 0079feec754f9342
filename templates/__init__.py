"""Jinja2 templates (notices and board pages), shipped as package data."""
