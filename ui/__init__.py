"""Streamlit glue shared by the pages: session state, cached models and data, widgets.

The model package (`convae`) never imports Streamlit; everything that does lives here
or in `app.py` / `app_pages/`.
"""
