"""The web page: `ui` (the only module that imports gradio) and its gradio-free
helpers: `runner` (engine calls with a time limit), `compare` (each
transcript against the baseline and the reference), `history` (the session's
runs), `present` (words), `charts` (figures)."""
