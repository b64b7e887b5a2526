"""Where audio comes from: sound devices, the sound server, WAV files and clips on disk."""
