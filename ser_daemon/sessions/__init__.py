"""Session logs (opt-in, never audio) and the report drawn from them: states, mood and events as JSON lines."""
