"""The incident: its journal (one TinyDB file), the state computed from it,
status updates and the post-mortem. Headless: nothing here imports Textual."""
