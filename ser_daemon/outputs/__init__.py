"""What the daemon sends: OSC schemes and their sender, WebSocket states, console and JSON lines."""
