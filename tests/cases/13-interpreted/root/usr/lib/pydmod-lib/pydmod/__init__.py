from .worker import run
