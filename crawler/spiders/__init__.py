"""Scrapy spiders: ``check`` (triage, confirm, re-check) and the enrichment fetchers."""
