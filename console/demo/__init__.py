"""The local sandbox behind ``incident-console demo``: real servers, injectable faults."""
