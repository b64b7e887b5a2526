"""The sans-I/O core: audio blocks in, emotion states out (no sockets, threads, event loop or sound card)."""
