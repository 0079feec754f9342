"""Networking shared by every fetcher: name resolution, the SSRF guard, capped bodies.

Both live here so that Scrapy, the browser and any other fetch resolve names
the same way (``network.hosts_file`` first) and refuse the same addresses.
"""
