"""MedTL: explore transfer learning for medical image classification.

A plain PyTorch/NumPy library behind the MedTL Studio dashboard; it never imports Streamlit.
"""

__version__ = "0.1.0"
