"""Detection: YARA-X rules over content and Python checks over recorded behaviour."""
