"""Streamlit-side helpers shared by the pages (the library, medtl/, never imports Streamlit)."""
