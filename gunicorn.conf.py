"""gunicorn's settings, read from the working directory by the Docker image's web process (and by
any `gunicorn robodash.wsgi` started from the repository's root).

The one long request is an upload: the file is read into the database as it arrives, and an
Excel workbook at the 200,000-row cap takes openpyxl about 13 s on a quiet two-core machine
(a CSV file of the same rows: 3 s). The default 30 s worker timeout would kill such an upload
on a busy machine, so the limit is 120 s. A launch of many rows runs in the worker, not here.
"""

timeout = 120
