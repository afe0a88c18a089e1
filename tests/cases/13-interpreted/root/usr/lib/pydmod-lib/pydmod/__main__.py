from . import worker
worker.run()
