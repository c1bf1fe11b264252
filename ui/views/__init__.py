"""Pure builders of figures and display images: no streamlit calls, easy to test."""
