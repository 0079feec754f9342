"""The Scrapy project: settings, spiders, middlewares, browser instrumentation and signatures."""
