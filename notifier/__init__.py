"""The notifier: due selection, batching, rendering, sending, inbox and escalation."""
