"""Configuration: YAML + marshmallow schemas → frozen settings, and the composition root."""
