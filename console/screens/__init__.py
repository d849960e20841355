"""Modal screens: confirm, prompts, declare, status update."""
