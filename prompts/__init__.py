"""The prompt templates (jinja2), installed with personasim as the package `personasim.prompt_templates`."""
