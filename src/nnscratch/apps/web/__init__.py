"""The web page of ``nnscratch serve``: server.py and its static files."""
