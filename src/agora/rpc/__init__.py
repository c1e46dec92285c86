"""The gRPC services: thin like ``api.py``, they call the same domain services as HTTP."""
