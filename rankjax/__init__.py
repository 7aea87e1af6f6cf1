from rankjax.version import __version__
