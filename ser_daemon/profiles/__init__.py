"""Personal voice profiles: the store, enrollment (files, guided, microphone), calibration, their CLI."""
