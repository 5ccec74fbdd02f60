"""leadpipe's shared library: models, settings, repositories, CSV import and publishing.

Shipped to Lambda as the ``SharedLayer``; every function imports it. Nothing here may import the local runtime
(``leadpipe_local``) or test-only packages.
"""

__version__ = "0.1.0"
