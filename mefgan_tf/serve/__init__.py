"""`mefgan serve`: local fusion that speaks TensorFlow Serving's REST API, with a web page.

- ``protocol``: the REST protocol: parsing ``:predict`` bodies and writing answers (no web framework);
- ``app``: the FastAPI application: routes, the one-at-a-time fusion queue, limits, cancellation;
- ``server``: the process: the model, the socket, uvicorn and a graceful stop.
"""
