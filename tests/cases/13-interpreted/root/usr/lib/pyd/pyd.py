"""pyd: a daemon. import nothing_from_docstring"""
import os, sys
try:
    import pydhelper
except ImportError:
    pydhelper = None
from pydpkg import sub
