"""Greengrass v2 components of Vigia: recipes, packaging, deployment."""
