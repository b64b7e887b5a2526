"""Network edges shared by the servers: endpoints, access rules, OSC reading, the ingest protocol."""
