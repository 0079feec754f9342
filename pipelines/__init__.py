"""Scrapy item pipelines, in order: verdict, evidence, store, enrich."""
