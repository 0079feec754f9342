"""The board: the campaign status pages, the HTTP API and the recipients portal."""
