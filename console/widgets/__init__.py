"""The panes: each renders snapshots and knows nothing of the network."""
