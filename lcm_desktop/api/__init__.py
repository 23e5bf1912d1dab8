"""The local API: AUTOMATIC1111's ``/sdapi/v1`` routes on the app's job queue (``lcm-desktop serve``; the app).

``service`` (what is served, no HTTP), ``translate`` (A1111 fields ⇄ our requests and results), ``schemas`` (the
JSON bodies), ``app`` (FastAPI routes and the safety middleware), ``server`` (uvicorn, the engine it builds).
No Qt here: the app hosts it through ``gui/api_server.py``.
"""
