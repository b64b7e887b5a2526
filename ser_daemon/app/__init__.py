"""The daemon process: options and config, the engine loop, wiring of sources and outputs, stop signals."""
