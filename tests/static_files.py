"""WhiteNoise as production runs it, with its table of static files made once per test process.

WhiteNoise reads every file under STATIC_ROOT (the admin's and ours, with their hashed and
compressed copies: a few thousand) when its middleware is made, into a table it serves from. A
server makes its middleware once per process. Django's test Client makes the whole chain again for
every Client, and the suite makes thousands of them: about 35 ms of CPU each, three quarters of the
counter flood's 24 CPU-s (measured with py-spy: docs/decisions/0026). The files do not change during
a run (scripts/test.sh collects them before pytest starts), so each process makes the table once per
configuration (every setting the table's entries depend on) and each middleware serves from a copy
of it. What is served, with which headers, is WhiteNoise's own code on the same files.
"""

from django.conf import settings
from whitenoise.middleware import WhiteNoiseMiddleware
from whitenoise.storage import CompressedManifestStaticFilesStorage


class CompressedAsInProduction(CompressedManifestStaticFilesStorage):
    """Production's storage, compressing with gzip alone as production does.

    WhiteNoise adds a brotli copy of every file when the brotli package is installed. Production's
    requirements do not install it; the test tools do (locust's HTTP client needs it), and brotli at
    WhiteNoise's setting took 8 of the 9 CPU-seconds of `make test`'s collectstatic, which everything
    else waits for (scripts/test.sh).
    """

    def create_compressor(self, **kwargs):
        return super().create_compressor(use_brotli=False, **kwargs)


class WhiteNoiseMiddlewareTableOncePerProcess(WhiteNoiseMiddleware):
    _tables = {}

    def add_files(self, root, prefix=None):
        if self.autorefresh:  # nothing is read up front
            return super().add_files(root, prefix)
        key = (str(root), prefix, self.max_age, self.allow_all_origins, self.charset, self.index_file,
               self.add_headers_function, repr(getattr(settings, "WHITENOISE_MIMETYPES", None)),
               repr(getattr(settings, "WHITENOISE_IMMUTABLE_FILE_TEST", None)), self.static_prefix,
               repr(settings.STORAGES.get("staticfiles")), settings.STATIC_URL)
        table = self._tables.get(key)
        if table is None:
            mine, self.files = self.files, {}
            super().add_files(root, prefix)
            table, self.files = self.files, mine
            self._tables[key] = table
        self.files.update(table)
        return None
