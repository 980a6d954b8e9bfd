"""`geolocate serve`: a local page and a JSON API over one loaded model.

`app.create_app` builds the FastAPI application around a `model.ServedModel` (the model loads
once, requests share it); `upload` reads requests in memory within the size limit; `card` says
which model answers and how good it is; `page` renders the page, whose assets (Leaflet, the
Natural Earth outlines) are vendored under `static/`, so it works with no network.
FastAPI, uvicorn and python-multipart come with the optional extra `geolocate[serve]`.
"""
