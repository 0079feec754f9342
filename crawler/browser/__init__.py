"""Browser confirmation: scrapy-playwright driving Chromium behind the guard proxy."""
