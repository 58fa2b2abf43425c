"""The self-service portal (FastAPI + Jinja2) — arrives with the portal issue.

Until then the product is driven through the ``firstline`` CLI and ``runner.api``.
"""
